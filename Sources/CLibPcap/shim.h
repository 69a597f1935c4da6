// libpcap (pkg-config libpcap) for VSwitchCapture (BPF on dead handles, pcap dump files) and VSwitchIO pcap ports.
#include <stdio.h>
#include <pcap/pcap.h>

// PCAP_NETMASK_UNKNOWN is a macro Swift sees; the tstamp constants are enums. Nothing else needed.
static inline int vsw_pcap_offline_filter(const struct bpf_program *prog, const struct pcap_pkthdr *h, const unsigned char *pkt) {
    return pcap_offline_filter(prog, h, pkt);
}
