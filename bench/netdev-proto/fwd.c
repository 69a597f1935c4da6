// fwd.c (bench/netdev-proto, see eval.sh) — prototype one-way forwarder IN -> OUT for issue 7 item 3: AF_XDP copy mode vs AF_PACKET rings.
// Usage: fwd MODE IN OUT SECONDS      MODE = xdp-skb | xdp-drv | tp3 | tp2
// RX: xdp-*: AF_XDP socket (XDP_COPY) on IN queue 0 with libxdp's default redirect program, generic (skb)
//     or driver (native) XDP; tp3: TPACKET_V3 ring (32 x 128 KiB, 1 ms); tp2: TPACKET_V2 ring (2048 x 2 KiB).
// TX: xdp-*: AF_XDP socket on OUT (copy mode), one sendto() kick per batch; tp*: TPACKET_V2 TX ring, qdisc
//     bypass, one sendto() per batch (as vswitchd). Every frame is copied once into a 64-frame batch buffer
//     and once into the TX ring / UMEM (as vswitchd does). Waits with poll() when idle.
// Prints frames forwarded, CPU (utime+stime of the process), ns/frame.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_link.h>
#include <xdp/xsk.h>
#include <xdp/libxdp.h>
#include <bpf/libbpf.h>

#define BATCH 64
#define NFRAMES 4096
#define FSIZE XSK_UMEM__DEFAULT_FRAME_SIZE
static volatile int stop;
static void onsig(int s) { (void)s; stop = 1; }
static unsigned char batch[BATCH][2048];
static unsigned blen[BATCH];

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double cpu(void) { struct rusage r; getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6; }

// ---- AF_PACKET
static int tp_rx(int ifi, int ver, void **map, unsigned *bs, unsigned *bn, unsigned *fs) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
    int v = ver == 2 ? TPACKET_V2 : TPACKET_V3, one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v);
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    if (ver == 3) {
        struct tpacket_req3 r = {0};
        r.tp_block_size = *bs = 1 << 17; r.tp_block_nr = *bn = getenv("BLOCKS") ? atoi(getenv("BLOCKS")) : 32; r.tp_frame_size = 2048;
        r.tp_frame_nr = 64 * *bn; r.tp_retire_blk_tov = 1;
        if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &r, sizeof r)) { perror("rx ring"); exit(1); }
    } else {
        struct tpacket_req r = {0};
        r.tp_block_size = *bs = 1 << 16; r.tp_block_nr = *bn = 64; r.tp_frame_size = *fs = 2048;
        r.tp_frame_nr = 32 * 64;
        if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &r, sizeof r)) { perror("rx ring"); exit(1); }
    }
    *map = mmap(0, (size_t)*bs * *bn, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    struct sockaddr_ll s = {0}; s.sll_family = AF_PACKET; s.sll_protocol = htons(ETH_P_ALL); s.sll_ifindex = ifi;
    if (bind(fd, (void *)&s, sizeof s)) { perror("bind"); exit(1); }
    struct packet_mreq mr = {0}; mr.mr_ifindex = ifi; mr.mr_type = PACKET_MR_PROMISC;
    setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
    return fd;
}
static int tx_fd; static unsigned char *tx_map; static unsigned tx_head, tx_n = 256, tx_pending;
static void tp_tx_open(int ifi) {
    tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
    int v = TPACKET_V2, one = 1;
    setsockopt(tx_fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v);
    setsockopt(tx_fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    struct tpacket_req r = {0}; r.tp_frame_size = 2048; r.tp_block_size = 2048 * 16; r.tp_block_nr = 16; r.tp_frame_nr = 256;
    if (setsockopt(tx_fd, SOL_PACKET, PACKET_TX_RING, &r, sizeof r)) { perror("tx ring"); exit(1); }
    tx_map = mmap(0, 2048 * 256, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, tx_fd, 0);
    struct sockaddr_ll s = {0}; s.sll_family = AF_PACKET; s.sll_ifindex = ifi;
    bind(tx_fd, (void *)&s, sizeof s);
}
static unsigned long txdrop;
static void tp_tx(unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        struct tpacket2_hdr *h = (void *)(tx_map + tx_head * 2048);
        if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) { txdrop++; continue; }
        memcpy((unsigned char *)h + 32, batch[i], blen[i]);
        h->tp_len = blen[i];
        __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
        tx_head = (tx_head + 1) % tx_n; tx_pending++;
    }
    if (tx_pending) { sendto(tx_fd, 0, 0, MSG_DONTWAIT, 0, 0); tx_pending = 0; }
}

// ---- AF_XDP
struct xs { struct xsk_ring_cons rx, cq; struct xsk_ring_prod fq, tx; struct xsk_umem *umem; struct xsk_socket *xsk; void *buf; unsigned next_tx; };
static void xs_open(struct xs *x, const char *ifn, int rx, unsigned xdp_flags) {
    x->buf = mmap(0, NFRAMES * FSIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    struct xsk_umem_config uc = { .fill_size = 2048, .comp_size = 2048, .frame_size = FSIZE, .frame_headroom = 0 };
    if (xsk_umem__create(&x->umem, x->buf, NFRAMES * FSIZE, &x->fq, &x->cq, &uc)) { perror("umem"); exit(1); }
    struct xsk_socket_config sc = { .rx_size = 2048, .tx_size = 2048, .bind_flags = XDP_COPY, .xdp_flags = xdp_flags,
                                    .libxdp_flags = rx ? 0 : XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD };
    int e = xsk_socket__create(&x->xsk, ifn, 0, x->umem, rx ? &x->rx : NULL, rx ? NULL : &x->tx, &sc);
    if (e) { fprintf(stderr, "xsk_socket__create %s: %s\n", ifn, strerror(-e)); exit(1); }
    if (rx) {
        unsigned idx; xsk_ring_prod__reserve(&x->fq, 2048, &idx);
        for (unsigned i = 0; i < 2048; i++) *xsk_ring_prod__fill_addr(&x->fq, idx + i) = (unsigned long)i * FSIZE;
        xsk_ring_prod__submit(&x->fq, 2048);
    }
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: fwd xdp-skb|xdp-drv|tp3|tp2 IN OUT SECONDS\n"); return 2; }
    const char *mode = argv[1]; int in = if_nametoindex(argv[2]), out = if_nametoindex(argv[3]); double secs = atof(argv[4]);
    signal(SIGINT, onsig); signal(SIGTERM, onsig);
    unsigned long frames = 0, wakes = 0;
    double t0 = now(), c0 = cpu(), tfirst = 0, cfirst = 0;
    if (!strncmp(mode, "xdp", 3)) {
        struct xs r = {0}, t = {0};
        unsigned fl = !strcmp(mode, "xdp-drv") ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
        xs_open(&r, argv[2], 1, fl);
        xs_open(&t, argv[3], 0, fl);
        struct pollfd p = { .fd = xsk_socket__fd(r.xsk), .events = POLLIN };
        unsigned tx_free = 2048, tx_next = 0;
        while (!stop && now() - t0 < secs) {
            unsigned idx, n = xsk_ring_cons__peek(&r.rx, BATCH, &idx);
            if (!n) { wakes++; poll(&p, 1, 100); continue; }
            if (!frames) { tfirst = now(); cfirst = cpu(); }
            for (unsigned i = 0; i < n; i++) {
                const struct xdp_desc *d = xsk_ring_cons__rx_desc(&r.rx, idx + i);
                blen[i] = d->len; memcpy(batch[i], xsk_umem__get_data(r.buf, d->addr), d->len);
            }
            // give the RX frames back to the fill ring
            unsigned fidx; xsk_ring_prod__reserve(&r.fq, n, &fidx);
            for (unsigned i = 0; i < n; i++) *xsk_ring_prod__fill_addr(&r.fq, fidx + i) = xsk_ring_cons__rx_desc(&r.rx, idx + i)->addr;
            xsk_ring_prod__submit(&r.fq, n);
            xsk_ring_cons__release(&r.rx, n);
            // completions
            unsigned cidx, c = xsk_ring_cons__peek(&t.cq, 2048, &cidx);
            if (c) { xsk_ring_cons__release(&t.cq, c); tx_free += c; }
            unsigned m = n < tx_free ? n : tx_free, tidx;
            if (m && xsk_ring_prod__reserve(&t.tx, m, &tidx) == m) {
                for (unsigned i = 0; i < m; i++) {
                    struct xdp_desc *d = xsk_ring_prod__tx_desc(&t.tx, tidx + i);
                    d->addr = (unsigned long)(tx_next % NFRAMES) * FSIZE; tx_next++;
                    memcpy(xsk_umem__get_data(t.buf, d->addr), batch[i], blen[i]); d->len = blen[i];
                }
                xsk_ring_prod__submit(&t.tx, m); tx_free -= m;
                sendto(xsk_socket__fd(t.xsk), 0, 0, MSG_DONTWAIT, 0, 0);
            }
            txdrop += n - m;
            frames += n;
        }
        struct xdp_statistics st; socklen_t sl = sizeof st;
        if (!getsockopt(xsk_socket__fd(r.xsk), SOL_XDP, XDP_STATISTICS, &st, &sl))
            printf("xdp stats: rx_dropped %llu rx_invalid %llu rx_ring_full %llu fill_empty %llu\n", (unsigned long long)st.rx_dropped,
                   (unsigned long long)st.rx_invalid_descs, (unsigned long long)st.rx_ring_full, (unsigned long long)st.rx_fill_ring_empty_descs);
        xsk_socket__delete(r.xsk); xsk_socket__delete(t.xsk);
        bpf_xdp_detach(in, fl, NULL);
    } else {
        int v2 = !strcmp(mode, "tp2");
        void *map; unsigned bs, bn, fs = 0;
        int fd = tp_rx(in, v2 ? 2 : 3, &map, &bs, &bn, &fs);
        tp_tx_open(out);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        long coalesce = getenv("COALESCE_US") ? atol(getenv("COALESCE_US")) : 0; unsigned last = 0; unsigned long naps = 0;
        unsigned blk = 0, pkt = 0, off = 0, fr = 0, nfr = v2 ? bs / fs * bn : 0;
        while (!stop && now() - t0 < secs) {
            unsigned n = 0;
            if (v2) {
                while (n < BATCH) {
                    struct tpacket2_hdr *h = (void *)((char *)map + (size_t)fr * fs);
                    if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
                    blen[n] = h->tp_snaplen; memcpy(batch[n], (char *)h + h->tp_mac, h->tp_snaplen); n++;
                    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
                    fr = fr + 1 == nfr ? 0 : fr + 1;
                }
            } else {
                while (n < BATCH) {
                    struct tpacket_block_desc *b = (void *)((char *)map + (size_t)blk * bs);
                    if (!(__atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
                    unsigned num = b->hdr.bh1.num_pkts;
                    if (!pkt) off = b->hdr.bh1.offset_to_first_pkt;
                    if (pkt < num) {
                        struct tpacket3_hdr *h = (void *)((char *)b + off);
                        blen[n] = h->tp_snaplen; memcpy(batch[n], (char *)h + h->tp_mac, h->tp_snaplen); n++;
                        pkt++; off += h->tp_next_offset;
                    }
                    if (pkt >= num) { __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE); pkt = 0; blk = (blk + 1) % bn; }
                }
            }
            if (!n) {
                if (coalesce && last) { last = 0; struct timespec ts = {0, coalesce * 1000}; nanosleep(&ts, 0); naps++; continue; }
                wakes++; poll(&p, 1, 100); continue;
            }
            last = n;
            if (!frames) { tfirst = now(); cfirst = cpu(); }
            tp_tx(n);
            frames += n;
        }
        struct tpacket_stats_v3 st; socklen_t sl = sizeof st;
        printf("naps %lu\n", naps);
        if (!getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl)) printf("ring stats: packets %u drops %u freeze %u\n", st.tp_packets, st.tp_drops, st.tp_freeze_q_cnt);
    }
    double t1 = now(), c1 = cpu();
    (void)t0; (void)c0;
    printf("%s frames %lu txdrop %lu wakes %lu wall %.2f s cpu %.3f s ns/frame %.0f\n", mode, frames, txdrop, wakes,
           t1 - tfirst, c1 - cfirst, frames ? (c1 - cfirst) * 1e9 / frames : 0.0);
    return 0;
}
