/* The benchmark's flood sender: junk UDP packets at a set rate, and valid ones on a timer.
 *
 *   flood DST_IP PORT RATE SECONDS JUNK_FILE VALID_FILE INTERVAL_MS
 *
 * JUNK_FILE and VALID_FILE hold one packet per line (SPA packets are
 * base64 text, so a newline never occurs inside one). Junk goes out with
 * sendmmsg() in batches, paced against CLOCK_MONOTONIC; the i-th valid
 * packet goes out at start + i * INTERVAL_MS, between batches. The socket
 * blocks, so nothing is dropped on the sending side.
 *
 * Prints, one per line: "junk N", "seconds S" (from the first packet to the
 * last), "errors N", and "valid I T" for each valid packet, T being its send
 * time on CLOCK_MONOTONIC in seconds (Python's time.monotonic() on Linux).
 *
 * PORT "raw": both files hold whole IPv4 packets in hex, one a line, sent as
 * they are from a raw socket (IP_HDRINCL): the knock benchmark's junk SYNs
 * from many sources, and its valid SPA datagrams.
 *
 * Written in C because a Python sender costs more CPU per packet than the
 * daemon under test: on a two-core machine it could not reach 100,000
 * packets a second, and its valid packets went out late.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BATCH 64
#define TICK_NS 100000L /* wake every 100 us to keep the rate even */
#define MAX_LINE 2048

struct packets {
    char **data;
    size_t *len;
    size_t count;
};

static size_t unhex(char *text, size_t n) {
    size_t out = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned int byte;
        if (sscanf(text + i, "%2x", &byte) != 1)
            break;
        text[out++] = (char)byte;
    }
    return out;
}

static int load(const char *path, struct packets *out, int hex) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1024;
    out->data = malloc(cap * sizeof(char *));
    out->len = malloc(cap * sizeof(size_t));
    out->count = 0;
    char line[MAX_LINE];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        if (n == 0)
            continue;
        if (out->count == cap) {
            cap *= 2;
            out->data = realloc(out->data, cap * sizeof(char *));
            out->len = realloc(out->len, cap * sizeof(size_t));
        }
        out->data[out->count] = strndup(line, n);
        out->len[out->count] = hex ? unhex(out->data[out->count], n) : n;
        out->count++;
    }
    fclose(f);
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s DST_IP PORT RATE SECONDS JUNK_FILE VALID_FILE INTERVAL_MS\n",
                argv[0]);
        return 2;
    }
    int raw = strcmp(argv[2], "raw") == 0;
    struct sockaddr_in dst = {.sin_family = AF_INET,
                              .sin_port = raw ? 0 : htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
        fprintf(stderr, "bad address %s\n", argv[1]);
        return 2;
    }
    double rate = atof(argv[3]), seconds = atof(argv[4]), interval = atof(argv[7]) / 1000.0;
    struct packets junk, valid;
    if (load(argv[5], &junk, raw) || load(argv[6], &valid, raw) || junk.count == 0)
        return 2;
    int sock = raw ? socket(AF_INET, SOCK_RAW, IPPROTO_RAW) : socket(AF_INET, SOCK_DGRAM, 0);
    int sndbuf = 8 << 20;
    setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
    if (connect(sock, (struct sockaddr *)&dst, sizeof dst) != 0) {
        perror("connect");
        return 1;
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    double *valid_at = calloc(valid.count + 1, sizeof(double));
    unsigned long long sent = 0, errors = 0;
    size_t next_valid = 0;
    double start = now(), last = start;
    struct timespec tick;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    for (;;) {
        double t = now();
        if (t - start >= seconds)
            break;
        while (next_valid < valid.count && t >= start + next_valid * interval) {
            if (send(sock, valid.data[next_valid], valid.len[next_valid], 0) < 0)
                errors++;
            valid_at[next_valid++] = now();
        }
        unsigned long long due = (unsigned long long)((t - start) * rate);
        while (sent < due) {
            int n = due - sent < BATCH ? (int)(due - sent) : BATCH;
            for (int i = 0; i < n; i++) {
                size_t k = (sent + i) % junk.count;
                iov[i].iov_base = junk.data[k];
                iov[i].iov_len = junk.len[k];
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            int done = sendmmsg(sock, msgs, n, 0);
            if (done < 0) {
                if (errno != EINTR)
                    errors++;
                continue;
            }
            sent += done;
            last = now();
            if (next_valid < valid.count && last >= start + next_valid * interval)
                break; /* behind on junk: a valid packet that is due goes out first */
        }
        if (now() - ((double)tick.tv_sec + (double)tick.tv_nsec / 1e9) > 0.001)
            clock_gettime(CLOCK_MONOTONIC, &tick); /* fell behind: skip the missed ticks */
        tick.tv_nsec += TICK_NS;
        if (tick.tv_nsec >= 1000000000L) {
            tick.tv_nsec -= 1000000000L;
            tick.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
    }
    printf("junk %llu\nseconds %.6f\nerrors %llu\n", sent, last - start, errors);
    for (size_t i = 0; i < next_valid; i++)
        printf("valid %zu %.9f\n", i, valid_at[i]);
    return 0;
}
