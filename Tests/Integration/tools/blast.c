// blast: sends frames fast from inside a namespace (the hostile-traffic tests; python is too slow
// for a million frames). Frames are read as hex lines from FRAMES and sent in turn, COUNT in all,
// through an AF_PACKET socket bound to IFACE, in sendmmsg batches of 64, paced at PPS (0 = as fast
// as possible). --random-src rewrites bytes 6..11 of each frame with a random locally administered
// unicast MAC (02:xx:xx:xx:xx:xx). Prints "sent N errors E seconds S" on stdout.
// Build: cc -O2 -o blast blast.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXF 4096
#define MAXLEN 9216

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: blast IFACE FRAMES COUNT [--random-src] [--pps N] [--seed N]\n"); return 2; }
    const char *iface = argv[1];
    long long count = atoll(argv[3]);
    int random_src = 0;
    double pps = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--random-src")) random_src = 1;
        else if (!strcmp(argv[i], "--pps") && i + 1 < argc) pps = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rng ^= (uint64_t)atoll(argv[++i]) * 0x2545F4914F6CDD1Dull;
    }
    static unsigned char frames[MAXF][MAXLEN];
    static int lens[MAXF];
    int nf = 0;
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); return 1; }
    static char line[2 * MAXLEN + 4];
    while (nf < MAXF && fgets(line, sizeof line, f)) {
        int n = 0;
        for (char *p = line; p[0] && p[1] && p[0] != '\n' && n < MAXLEN; p += 2) {
            unsigned v; if (sscanf(p, "%2x", &v) != 1) break; frames[nf][n++] = (unsigned char)v;
        }
        if (n > 0) lens[nf++] = n;
    }
    fclose(f);
    if (nf == 0) { fprintf(stderr, "no frames in %s\n", argv[2]); return 1; }

    int s = socket(AF_PACKET, SOCK_RAW, 0);
    if (s < 0) { perror("socket"); return 1; }
    int sndbuf = 4 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_ll sll = {0};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = (int)if_nametoindex(iface);
    if (!sll.sll_ifindex) { perror(iface); return 1; }
    if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); return 1; }

    static unsigned char buf[BATCH][MAXLEN];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    long long sent = 0, errors = 0, k = 0;
    uint64_t t0 = now_ns();
    while (sent + errors < count) {
        int n = 0;
        while (n < BATCH && sent + errors + n < count) {
            int fi = (int)(k++ % nf);
            memcpy(buf[n], frames[fi], lens[fi]);
            if (random_src) {
                uint64_t r = next_rand();
                buf[n][6] = 0x02; buf[n][7] = r; buf[n][8] = r >> 8; buf[n][9] = r >> 16; buf[n][10] = r >> 24; buf[n][11] = r >> 32;
            }
            iov[n].iov_base = buf[n];
            iov[n].iov_len = lens[fi];
            memset(&msgs[n], 0, sizeof msgs[n]);
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
            n++;
        }
        if (pps > 0) {
            uint64_t due = t0 + (uint64_t)((double)(sent + errors) * 1e9 / pps);
            uint64_t t;
            while ((t = now_ns()) < due) { if (due - t > 200000) usleep((useconds_t)((due - t) / 1000 - 100)); }
        }
        int done = 0;
        while (done < n) {
            int r = sendmmsg(s, msgs + done, (unsigned)(n - done), 0);
            if (r < 0) {
                if (errno == ENOBUFS || errno == EAGAIN) { usleep(50); continue; }
                errors++; done++;   // this frame refused (e.g. EMSGSIZE); go on with the rest
                continue;
            }
            done += r; sent += r;
        }
    }
    printf("sent %lld errors %lld seconds %.3f\n", sent, errors, (now_ns() - t0) / 1e9);
    return 0;
}
