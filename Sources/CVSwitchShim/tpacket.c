// tpacket.c — AF_PACKET ring set-up for netdev ports (see include/vswitch_shim.h). Kept apart from
// vswitch_shim.c because <linux/if_packet.h>, which has the ring structs, clashes with glibc's
// <netpacket/packet.h> that the shim header includes.
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

int vsw_tpacket_rx_open(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map);
int vsw_tpacket_rx_open_vnet(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map,
                             int *vnet_out);
static int rx_open(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map, int *vnet_out);
int vsw_tpacket_tx_open(int ifindex, unsigned frame_size, unsigned frame_count, void **map);
long vsw_tpacket_tx_kick(int fd);
int vsw_tpacket_rx_open_ring(int ifindex, int version, unsigned block_size, unsigned block_count, unsigned frame_size,
                             unsigned retire_ms, int flags, int rcvbuf, void **map, int *vnet_out);
int vsw_tpacket_stats(int fd, unsigned *packets, unsigned *drops);

_Static_assert(offsetof(struct tpacket_block_desc, hdr.bh1.block_status) == 8, "block_status");
_Static_assert(offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts) == 12, "num_pkts");
_Static_assert(offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt) == 16, "first");
_Static_assert(offsetof(struct tpacket3_hdr, tp_next_offset) == 0, "next");
_Static_assert(offsetof(struct tpacket3_hdr, tp_snaplen) == 12, "snaplen");
_Static_assert(offsetof(struct tpacket3_hdr, tp_status) == 20, "status");
_Static_assert(offsetof(struct tpacket3_hdr, tp_mac) == 24, "mac");
_Static_assert(offsetof(struct tpacket3_hdr, hv1.tp_vlan_tci) == 32, "tci");
_Static_assert(offsetof(struct tpacket3_hdr, hv1.tp_vlan_tpid) == 36, "tpid");
_Static_assert(offsetof(struct tpacket2_hdr, tp_status) == 0, "v2 status");
_Static_assert(offsetof(struct tpacket2_hdr, tp_len) == 4, "v2 len");
_Static_assert(TPACKET2_HDRLEN - sizeof(struct sockaddr_ll) == 32, "v2 data");
_Static_assert(offsetof(struct tpacket2_hdr, tp_snaplen) == 8, "v2 snaplen");
_Static_assert(offsetof(struct tpacket2_hdr, tp_mac) == 12, "v2 mac");
_Static_assert(offsetof(struct tpacket2_hdr, tp_vlan_tci) == 24, "v2 tci");
_Static_assert(offsetof(struct tpacket2_hdr, tp_vlan_tpid) == 26, "v2 tpid");
_Static_assert(TP_STATUS_COPY == 2, "copy");
_Static_assert(TP_STATUS_VLAN_VALID == 0x10 && TP_STATUS_VLAN_TPID_VALID == 0x40, "vlan status");

static int fail(int fd, void *map, size_t len) {
    int e = errno;
    if (map && map != MAP_FAILED) munmap(map, len);
    if (fd >= 0) close(fd);
    errno = e;
    return -1;
}

int vsw_tpacket_rx_open(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map) {
    return rx_open(ifindex, block_size, block_count, retire_ms, map, NULL);
}

int vsw_tpacket_rx_open_vnet(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map,
                             int *vnet_out) {
    *vnet_out = 0;
    return rx_open(ifindex, block_size, block_count, retire_ms, map, vnet_out);
}

static int rx_open(int ifindex, unsigned block_size, unsigned block_count, unsigned retire_ms, void **map, int *vnet_out) {
    return vsw_tpacket_rx_open_ring(ifindex, 3, block_size, block_count, 2048, retire_ms, vnet_out ? 1 : 0, 0, map, vnet_out);
}

// flags: 1 = ask for PACKET_VNET_HDR (best effort, *vnet_out says whether the kernel took it);
//        2 = PACKET_COPY_THRESH (TPACKET_V2: a frame too large for a ring frame is also queued whole to the
//            socket, its ring frame flagged TP_STATUS_COPY, and read with recv()).
// rcvbuf > 0: SO_RCVBUF (bounds the copies queued by PACKET_COPY_THRESH; SO_RCVBUFFORCE first, as root).
int vsw_tpacket_rx_open_ring(int ifindex, int version, unsigned block_size, unsigned block_count, unsigned frame_size,
                             unsigned retire_ms, int flags, int rcvbuf, void **map, int *vnet_out) {
    if (vnet_out) *vnet_out = 0;
    // Protocol 0 until the ring exists: nothing is queued outside it.
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int v = version == 2 ? TPACKET_V2 : TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0) return fail(fd, 0, 0);
    int one = 1;
#ifdef PACKET_IGNORE_OUTGOING
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) return fail(fd, 0, 0);
#endif
    // PACKET_VNET_HDR must precede the ring (EBUSY after). Best effort: without it GSO frames arrive
    // as oversize frames and partial checksums cannot be completed.
    if ((flags & 1) && vnet_out && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) == 0) *vnet_out = 1;
    if ((flags & 2) && setsockopt(fd, SOL_PACKET, PACKET_COPY_THRESH, &one, sizeof one) < 0) return fail(fd, 0, 0);
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    size_t len = (size_t)block_size * block_count;
    if (v == TPACKET_V3) {
        struct tpacket_req3 req;
        memset(&req, 0, sizeof req);
        req.tp_block_size = block_size;
        req.tp_block_nr = block_count;
        req.tp_frame_size = frame_size;
        req.tp_frame_nr = (block_size / frame_size) * block_count;
        req.tp_retire_blk_tov = retire_ms;
        if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return fail(fd, 0, 0);
    } else {
        if (frame_size == 0 || block_size % frame_size != 0) { errno = EINVAL; return fail(fd, 0, 0); }
        struct tpacket_req req;
        memset(&req, 0, sizeof req);
        req.tp_block_size = block_size;
        req.tp_block_nr = block_count;
        req.tp_frame_size = frame_size;
        req.tp_frame_nr = (block_size / frame_size) * block_count;
        if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return fail(fd, 0, 0);
    }
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED) return fail(fd, 0, 0);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) return fail(fd, m, len);
    struct packet_mreq mr;
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) return fail(fd, m, len);
    *map = m;
    return fd;
}

// PACKET_STATISTICS (the kernel resets them on every read): frames received and frames dropped (ring full).
int vsw_tpacket_stats(int fd, unsigned *packets, unsigned *drops) {
    struct tpacket_stats_v3 st;
    memset(&st, 0, sizeof st);
    socklen_t l = sizeof st;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &l) < 0) return -1;
    *packets = st.tp_packets;
    *drops = st.tp_drops;
    return 0;
}

int vsw_tpacket_tx_open(int ifindex, unsigned frame_size, unsigned frame_count, void **map) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int v = TPACKET_V2;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0) return fail(fd, 0, 0);
    int one = 1;
    (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);   // best effort
    // A frame the kernel refuses (longer than the interface takes: EMSGSIZE) is skipped, its slot handed back.
    // Without it the slot stays TP_STATUS_WRONG_FORMAT and the ring sends nothing again (session 8 review).
    if (setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one) < 0) return fail(fd, 0, 0);
    struct tpacket_req req;
    memset(&req, 0, sizeof req);
    unsigned per_block = 16;                       // frames per block (block = 16 frames)
    req.tp_frame_size = frame_size;
    req.tp_block_size = frame_size * per_block;
    req.tp_block_nr = (frame_count + per_block - 1) / per_block;
    req.tp_frame_nr = req.tp_block_nr * per_block;
    if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req) < 0) return fail(fd, 0, 0);
    size_t len = (size_t)req.tp_block_size * req.tp_block_nr;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (m == MAP_FAILED) return fail(fd, 0, 0);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;                          // transmit only: no frame is ever queued to it
    sll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) return fail(fd, m, len);
    *map = m;
    return fd;
}

long vsw_tpacket_tx_kick(int fd) { return (long)sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0); }
