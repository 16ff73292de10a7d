/* libusb-bench: the libusb 1.0 column of `cargo xtask bench` (run inside the VM by
 * usbdf-bench, one process per run). Same access patterns as the usbdf and nusb runs:
 *
 *   libusb-bench in|out <size> <depth> <warmup_ms> <window_ms>
 *       SourceSink (0525:a4a0) bulk throughput: <depth> async transfers of <size> bytes,
 *       each resubmitted from its callback; prints
 *       "result <MB/s> <user µs/req> <sys µs/req> <context switches/req>" (getrusage over
 *       the measured window).
 *   libusb-bench echo-tp <size> <depth> <warmup_ms> <window_ms>
 *       Loopback (0525:a4a9) echo throughput: <depth> writes and <depth> reads of <size>
 *       bytes in flight, each resubmitted from its callback; MB/s of echoed data read back.
 *   libusb-bench echo <samples>   sync 64 B Loopback (0525:a4a9) echo, "result <median> <p99>" µs
 *   libusb-bench ctrl <samples>   GET_DESCRIPTOR(device) 18 B on Loopback, same output
 *
 * Invoked with only libtest's --test-threads=1 (the VM agent runs every packed binary that
 * way) it does nothing. */
#include <libusb-1.0/libusb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *sorted, int n, double p) {
    int rank = (int)(p * n + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

static libusb_device_handle *open_dev(uint16_t vid, uint16_t pid, int claim) {
    libusb_device_handle *h = libusb_open_device_with_vid_pid(NULL, vid, pid);
    if (!h) {
        fprintf(stderr, "libusb: %04x:%04x not found\n", vid, pid);
        exit(2);
    }
    /* The previous run (another implementation) may still be letting go of the interface:
     * retry a busy claim for up to a second. */
    int rc = claim ? libusb_claim_interface(h, 0) : 0;
    for (int i = 0; claim && rc == LIBUSB_ERROR_BUSY && i < 200; i++) {
        struct timespec ms5 = {0, 5000000};
        nanosleep(&ms5, NULL);
        rc = libusb_claim_interface(h, 0);
    }
    if (rc != 0) {
        fprintf(stderr, "libusb: claim failed (%s)\n", libusb_error_name(rc));
        exit(2);
    }
    return h;
}

static unsigned char find_ep(libusb_device_handle *h, int dir_in) {
    struct libusb_config_descriptor *cfg;
    unsigned char addr = 0;
    if (libusb_get_active_config_descriptor(libusb_get_device(h), &cfg) != 0) exit(2);
    const struct libusb_interface_descriptor *alt = &cfg->interface[0].altsetting[0];
    for (int i = 0; i < alt->bNumEndpoints; i++) {
        const struct libusb_endpoint_descriptor *e = &alt->endpoint[i];
        if ((e->bmAttributes & 3) == LIBUSB_TRANSFER_TYPE_BULK &&
            ((e->bEndpointAddress & 0x80) != 0) == dir_in) {
            addr = e->bEndpointAddress;
            break;
        }
    }
    libusb_free_config_descriptor(cfg);
    if (!addr) exit(2);
    return addr;
}

struct state {
    double window_start, window_end, t0, t1;
    int measuring, stop, outstanding, failed, counts;
    unsigned long long bytes, requests;
    struct rusage ru0, ru1;
};

static void LIBUSB_CALL on_done(struct libusb_transfer *t) {
    struct state *s = t->user_data;
    if (s->stop) {
        s->outstanding--;
        return;
    }
    if (t->status != LIBUSB_TRANSFER_COMPLETED) {
        s->failed = 1;
        s->outstanding--;
        return;
    }
    if (s->counts) {
        double now = now_s();
        if (!s->measuring && now >= s->window_start) {
            s->measuring = 1;
            s->t0 = now;
            getrusage(RUSAGE_SELF, &s->ru0);
        } else if (s->measuring) {
            s->bytes += t->actual_length;
            s->requests++;
            if (now >= s->window_end) {
                s->t1 = now;
                getrusage(RUSAGE_SELF, &s->ru1);
                s->stop = 1;
                s->outstanding--;
                return;
            }
        }
    }
    if (libusb_submit_transfer(t) != 0) {
        s->failed = 1;
        s->outstanding--;
    }
}

static int queue(struct state *s, libusb_device_handle *h, unsigned char ep, int size,
                 int depth, struct libusb_transfer **xfers) {
    for (int i = 0; i < depth; i++) {
        /* Zero-copy (usbfs mmap) buffers, like Endpoint::allocate; falls back to malloc. */
        unsigned char *buf = libusb_dev_mem_alloc(h, size);
        if (!buf) buf = calloc(1, size);
        memset(buf, 0, size);
        xfers[i] = libusb_alloc_transfer(0);
        libusb_fill_bulk_transfer(xfers[i], h, ep, buf, size, on_done, s, 0);
        if (libusb_submit_transfer(xfers[i]) != 0) {
            fprintf(stderr, "submit failed\n");
            return -1;
        }
        s->outstanding++;
    }
    return 0;
}

static double us(struct timeval t) { return t.tv_sec * 1e6 + t.tv_usec; }

/* mode 0: SourceSink OUT, 1: SourceSink IN, 2: Loopback echo. */
static int throughput(int mode, int size, int depth, int warmup_ms, int window_ms) {
    libusb_device_handle *h = open_dev(0x0525, mode == 2 ? 0xa4a9 : 0xa4a0, 1);
    struct state s = {0}, w = {0};
    struct libusb_transfer **xfers = calloc(depth, sizeof *xfers);
    struct libusb_transfer **wxfers = calloc(depth, sizeof *wxfers);
    double start = now_s();
    s.window_start = start + warmup_ms / 1000.0;
    s.window_end = s.window_start + window_ms / 1000.0;
    s.counts = 1;
    /* Echo: reads first, so every echo finds a read waiting; only the reads are counted. */
    if (queue(&s, h, find_ep(h, mode != 0), size, depth, xfers) != 0) return 2;
    if (mode == 2 && queue(&w, h, find_ep(h, 0), size, depth, wxfers) != 0) return 2;
    while (!s.stop && !s.failed && !w.failed) libusb_handle_events(NULL);
    w.stop = s.stop = 1;
    for (int i = 0; i < depth; i++) {
        libusb_cancel_transfer(xfers[i]);
        if (mode == 2) libusb_cancel_transfer(wxfers[i]);
    }
    while (s.outstanding > 0 || w.outstanding > 0) libusb_handle_events(NULL);
    if (s.failed || w.failed || !s.t1) {
        fprintf(stderr, "transfer failed\n");
        return 2;
    }
    double n = s.requests ? (double)s.requests : 1.0;
    printf("result %.3f %.3f %.3f %.4f\n", s.bytes / (s.t1 - s.t0) / 1e6,
           (us(s.ru1.ru_utime) - us(s.ru0.ru_utime)) / n,
           (us(s.ru1.ru_stime) - us(s.ru0.ru_stime)) / n,
           ((s.ru1.ru_nvcsw + s.ru1.ru_nivcsw) - (s.ru0.ru_nvcsw + s.ru0.ru_nivcsw)) / n);
    libusb_release_interface(h, 0);
    libusb_close(h);
    return 0;
}

static int latency(int control, int samples) {
    libusb_device_handle *h = open_dev(0x0525, 0xa4a9, !control);
    unsigned char out = 0, in = 0, wbuf[64], rbuf[512];
    if (!control) {
        out = find_ep(h, 0);
        in = find_ep(h, 1);
    }
    memset(wbuf, 7, sizeof wbuf);
    double *times = calloc(samples, sizeof *times);
    int n = 0, warm = samples / 10;
    for (int i = 0; i < samples + warm; i++) {
        double t = now_s();
        if (control) {
            int r = libusb_control_transfer(h, 0x80, 6, 0x0100, 0, rbuf, 18, 2000);
            if (r != 18) return 2;
        } else {
            int done = 0;
            if (libusb_bulk_transfer(h, out, wbuf, 64, &done, 2000) != 0 || done != 64) return 2;
            if (libusb_bulk_transfer(h, in, rbuf, 512, &done, 2000) != 0 || done != 64) return 2;
        }
        if (i >= warm) times[n++] = (now_s() - t) * 1e6;
    }
    qsort(times, n, sizeof *times, cmp_double);
    printf("result %.3f %.3f\n", percentile(times, n, 0.5), percentile(times, n, 0.99));
    if (!control) libusb_release_interface(h, 0);
    libusb_close(h);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2 || strncmp(argv[1], "--test-threads", 14) == 0) {
        /* Run by the VM agent as a "test": satisfy its report and do nothing. */
        printf("test result: ok. 0 passed; 0 failed; 0 ignored\n");
        return 0;
    }
    if (libusb_init(NULL) != 0) return 2;
    int rc = 2;
    int mode = !strcmp(argv[1], "out") ? 0 : !strcmp(argv[1], "in") ? 1
               : !strcmp(argv[1], "echo-tp") ? 2 : -1;
    if (mode >= 0 && argc == 6)
        rc = throughput(mode, atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    else if (!strcmp(argv[1], "echo") && argc == 3)
        rc = latency(0, atoi(argv[2]));
    else if (!strcmp(argv[1], "ctrl") && argc == 3)
        rc = latency(1, atoi(argv[2]));
    else
        fprintf(stderr, "usage: see the comment at the top of libusb_bench.c\n");
    libusb_exit(NULL);
    return rc;
}
