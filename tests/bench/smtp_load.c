/* smtp_load: SMTP load generator for the benchmarks (tests/bench/scan_bench.sh). C worker
 * threads, one connection each, send N messages of SIZE bytes in all and time every
 * transaction from MAIL FROM to the final reply after DATA; prints throughput and latency
 * percentiles (one key=value line) so that runs through the scan service can be compared with
 * runs straight into smtp-sink. smtp-source gives throughput only.
 *
 *   smtp_load -p PORT [-h 127.0.0.1] [-c CONCURRENCY] [-n MESSAGES] [-s SIZE]
 *             [-i INFECTED_EVERY] [-f FROM] [-t TO] [-m MESSAGE_FILE]
 *
 * -m FILE: send this message (LF or CRLF line ends; dot-stuffed here) instead of a generated
 * one; -s and -i are then ignored.
 *
 * -i K: every K-th message carries the EICAR test string as a base64 attachment (0: none).
 * Replies: 2xx counts as done (delivered or quarantined alike); 4xx/5xx are counted as errors.
 * Not a test: it never judges a number. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX 4096
#define THREADS_MAX 1024

static const char *g_host = "127.0.0.1";
static int g_port;
static unsigned g_conc = 1, g_n = 1000, g_size = 20000, g_infected_every;
static const char *g_from = "bench@origin.test", *g_to = "sink@sink.test";
static char *g_clean, *g_infected;         /* DATA contents, dot-stuffed, ending "\r\n.\r\n" */
static size_t g_clean_len, g_infected_len;
static atomic_uint g_next;
static double *g_lat;                      /* per message, ms; -1 when it failed */
static atomic_uint g_errors, g_conn_errors;
static char g_last_error[256];
static pthread_mutex_t g_err_lock = PTHREAD_MUTEX_INITIALIZER;

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void s_note_error(const char *what, const char *reply)
{
    atomic_fetch_add(&g_errors, 1);
    pthread_mutex_lock(&g_err_lock);
    snprintf(g_last_error, sizeof g_last_error, "%s: %.200s", what, reply);
    pthread_mutex_unlock(&g_err_lock);
}

/* Message text of about size bytes; lines of 76 characters, none starting with '.'. */
/* The message in path, CRLF line ends, dot-stuffed, ending "\r\n.\r\n"; NULL on error. */
static char *s_load_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *out = NULL;
    size_t n = 0, cap = 0;
    int c, bol = 1;

    if (f == NULL)
        return NULL;
    while ((c = getc(f)) != EOF) {
        if (n + 4 >= cap) {
            cap = cap ? cap * 2 : 65536;
            if ((out = realloc(out, cap)) == NULL)
                abort();
        }
        if (c == '\r')
            continue;
        if (bol && c == '.')
            out[n++] = '.';
        if (c == '\n')
            out[n++] = '\r';
        out[n++] = (char)c;
        bol = c == '\n';
    }
    fclose(f);
    if ((out = realloc(out, n + 8)) == NULL)
        abort();
    if (!bol) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    memcpy(out + n, ".\r\n", 3);
    *len = n + 3;
    return out;
}

static char *s_make(unsigned size, int infected, size_t *len)
{
    static const char eicar[] =
        "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=";
    size_t cap = (size_t)size + 4096, n = 0;
    char *m = malloc(cap);
    unsigned line = 0;

    if (m == NULL)
        abort();
    n += (size_t)snprintf(m + n, cap - n,
                          "From: <%s>\r\nTo: <%s>\r\nSubject: bench message\r\n"
                          "Message-ID: <bench@origin.test>\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: multipart/mixed; boundary=\"=_bench\"\r\n\r\n"
                          "--=_bench\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
                          g_from, g_to);
    while (n + 80 < (size_t)size && n + 600 < cap) {
        n += (size_t)snprintf(m + n, cap - n,
                              "%06u bench body line: the quick brown fox jumps over the lazy dog\r\n",
                              line++);
    }
    if (infected)
        n += (size_t)snprintf(m + n, cap - n,
                              "--=_bench\r\nContent-Type: application/octet-stream; name=\"e.com\"\r\n"
                              "Content-Transfer-Encoding: base64\r\n"
                              "Content-Disposition: attachment; filename=\"e.com\"\r\n\r\n%s\r\n",
                              eicar);
    n += (size_t)snprintf(m + n, cap - n, "--=_bench--\r\n.\r\n");
    *len = n;
    return m;
}

static int s_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

struct conn {
    int fd;
    char buf[REPLY_MAX];
    size_t have;
};

/* Reads one (possibly multi-line) reply; returns its code, -1 on error. */
static int s_reply(struct conn *c, char *text, size_t textlen)
{
    for (int guard = 0; guard < 1000; guard++) {
        char *eol;
        /* consume complete lines */
        while ((eol = memchr(c->buf, '\n', c->have)) != NULL) {
            size_t l = (size_t)(eol - c->buf) + 1;
            int last = l >= 4 && c->buf[3] == ' ';
            int code = l >= 3 ? atoi(c->buf) : -1;
            if (text != NULL) {
                size_t k = l < textlen ? l : textlen - 1;
                memcpy(text, c->buf, k);
                text[k] = '\0';
            }
            memmove(c->buf, c->buf + l, c->have - l);
            c->have -= l;
            if (last || l < 4)
                return code;
        }
        if (c->have == sizeof c->buf)
            return -1;
        ssize_t r = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
    }
    return -1;
}

static int s_cmd(struct conn *c, const char *cmd, char *text, size_t textlen)
{
    if (s_write_all(c->fd, cmd, strlen(cmd)) != 0)
        return -1;
    return s_reply(c, text, textlen);
}

static int s_connect(struct conn *c)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g_port) };
    char text[512];
    int one = 1;

    c->have = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || inet_pton(AF_INET, g_host, &sa.sin_addr) != 1 ||
        connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s_reply(c, text, sizeof text) != 220 ||
        s_cmd(c, "EHLO load.portcullis.test\r\n", text, sizeof text) != 250)
        return -1;
    return 0;
}

static void *s_worker(void *arg)
{
    struct conn c = { .fd = -1 };
    char cmd[600], text[512];
    (void)arg;

    for (;;) {
        unsigned i = atomic_fetch_add(&g_next, 1);
        int infected;
        double t0;
        int code;

        if (i >= g_n)
            break;
        g_lat[i] = -1;
        if (c.fd < 0 && s_connect(&c) != 0) {
            atomic_fetch_add(&g_conn_errors, 1);
            s_note_error("connect", strerror(errno));
            if (c.fd >= 0)
                close(c.fd);
            c.fd = -1;
            continue;
        }
        infected = g_infected_every > 0 && i % g_infected_every == g_infected_every / 2;
        t0 = s_now_ms();
        snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\n", g_from);
        if ((code = s_cmd(&c, cmd, text, sizeof text)) != 250)
            goto fail;
        snprintf(cmd, sizeof cmd, "RCPT TO:<%s>\r\n", g_to);
        if ((code = s_cmd(&c, cmd, text, sizeof text)) != 250)
            goto fail;
        if ((code = s_cmd(&c, "DATA\r\n", text, sizeof text)) != 354)
            goto fail;
        if (s_write_all(c.fd, infected ? g_infected : g_clean,
                        infected ? g_infected_len : g_clean_len) != 0)
            goto fail;
        code = s_reply(&c, text, sizeof text);
        if (code < 200 || code > 299)
            goto fail;
        g_lat[i] = s_now_ms() - t0;
        continue;
fail:
        s_note_error(code < 0 ? "connection" : "reply", code < 0 ? "lost" : text);
        close(c.fd);
        c.fd = -1;
    }
    if (c.fd >= 0) {
        s_cmd(&c, "QUIT\r\n", text, sizeof text);
        close(c.fd);
    }
    return NULL;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    pthread_t th[THREADS_MAX];
    double t0, wall, *ok;
    unsigned nok = 0;
    const char *file = NULL;
    int opt;

    while ((opt = getopt(argc, argv, "h:p:c:n:s:i:f:t:m:")) != -1) {
        switch (opt) {
        case 'h': g_host = optarg; break;
        case 'p': g_port = atoi(optarg); break;
        case 'c': g_conc = (unsigned)atoi(optarg); break;
        case 'n': g_n = (unsigned)atoi(optarg); break;
        case 's': g_size = (unsigned)atoi(optarg); break;
        case 'i': g_infected_every = (unsigned)atoi(optarg); break;
        case 'f': g_from = optarg; break;
        case 't': g_to = optarg; break;
        case 'm': file = optarg; break;
        default:
            fprintf(stderr, "usage: smtp_load -p PORT [-h HOST] [-c CONC] [-n N] [-s SIZE] "
                            "[-i INFECTED_EVERY] [-f FROM] [-t TO] [-m FILE]\n");
            return 2;
        }
    }
    if (g_port <= 0 || g_conc < 1 || g_conc > THREADS_MAX || g_n < 1 || g_size < 512) {
        fprintf(stderr, "smtp_load: need -p PORT, 1 <= -c <= %d, -n >= 1, -s >= 512\n",
                THREADS_MAX);
        return 2;
    }
    if (file != NULL) {
        if ((g_clean = s_load_file(file, &g_clean_len)) == NULL) {
            fprintf(stderr, "smtp_load: %s: cannot read\n", file);
            return 2;
        }
        g_infected_every = 0;
        g_infected = NULL;
    } else {
        g_clean = s_make(g_size, 0, &g_clean_len);
        g_infected = s_make(g_size, 1, &g_infected_len);
    }
    g_lat = calloc(g_n, sizeof *g_lat);
    ok = calloc(g_n, sizeof *ok);
    if (g_lat == NULL || ok == NULL)
        abort();

    t0 = s_now_ms();
    for (unsigned i = 0; i < g_conc; i++)
        if (pthread_create(&th[i], NULL, s_worker, NULL) != 0) {
            perror("pthread_create");
            return 1;
        }
    for (unsigned i = 0; i < g_conc; i++)
        pthread_join(th[i], NULL);
    wall = s_now_ms() - t0;

    for (unsigned i = 0; i < g_n; i++)
        if (g_lat[i] >= 0)
            ok[nok++] = g_lat[i];
    qsort(ok, nok, sizeof *ok, s_cmp);
#define PCT(p) (nok ? ok[(size_t)((p) / 100.0 * (nok - 1) + 0.5)] : 0.0)
    printf("sent=%u ok=%u errors=%u conn_errors=%u conc=%u size=%u wall_s=%.3f msg_per_s=%.1f "
           "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
           g_n, nok, atomic_load(&g_errors), atomic_load(&g_conn_errors), g_conc,
           (unsigned)g_clean_len, wall / 1e3, nok / (wall / 1e3), PCT(50), PCT(90), PCT(99),
           nok ? ok[nok - 1] : 0.0);
    if (g_last_error[0] != '\0')
        fprintf(stderr, "smtp_load: last error: %s\n", g_last_error);
    free(g_clean);
    free(g_infected);
    free(g_lat);
    free(ok);
    return nok == g_n ? 0 : 1;
}
