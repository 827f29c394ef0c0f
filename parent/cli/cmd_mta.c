/* cmd_mta: `portcullis mta timetable [--failure-at HH:MM] [--first-run-after TIME] [--json]`.
 * Shows when a message deferred at the given time is retried and when it bounces, for the
 * mta.* settings in force — the table of seed 003 for the defaults (R4.3). */
#include "cli/cmd_mta.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "mta_retry.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define DAY 86400

void cmd_mta_usage(FILE *f)
{
    fprintf(f,
        "  mta timetable [--failure-at HH:MM] [--first-run-after TIME] [--json]\n"
        "                                       retry timetable of the upstream MTA (default: a\n"
        "                                       failure at 09:15, first queue run 5m later)\n");
}

static void s_clock(int64_t t, char *buf, size_t n)
{
    int64_t day = t / DAY, sec = t % DAY;

    if (day == 0)
        snprintf(buf, n, "%02lld:%02lld", (long long)(sec / 3600), (long long)(sec % 3600 / 60));
    else
        snprintf(buf, n, "day %lld %02lld:%02lld", (long long)day + 1, (long long)(sec / 3600),
                 (long long)(sec % 3600 / 60));
}

static void s_duration(int64_t s, char *buf, size_t n)
{
    if (s > 0 && s % DAY == 0)
        snprintf(buf, n, "%lldd", (long long)(s / DAY));
    else if (s > 0 && s % 3600 == 0)
        snprintf(buf, n, "%lldh", (long long)(s / 3600));
    else if (s > 0 && s % 60 == 0)
        snprintf(buf, n, "%lldm", (long long)(s / 60));
    else
        snprintf(buf, n, "%llds", (long long)s);
}

static int s_parse_hhmm(const char *s, int64_t *out)
{
    int h, m;
    char extra;

    if (sscanf(s, "%d:%d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    *out = (int64_t)h * 3600 + m * 60;
    return 0;
}

static void s_print(const struct mta_retry *r, int64_t failure_at, int64_t first_run,
                    const struct mta_attempt *a, size_t n, uint64_t version)
{
    char t[48], d1[32], d2[32], d3[32], d4[32], d5[32];

    s_duration(r->queue_run_delay, d1, sizeof d1);
    s_duration(r->minimal_backoff_time, d2, sizeof d2);
    s_duration(r->maximal_backoff_time, d3, sizeof d3);
    s_duration(r->maximal_queue_lifetime, d4, sizeof d4);
    s_duration(r->bounce_queue_lifetime, d5, sizeof d5);
    printf("upstream MTA retry settings (configuration version %llu): queue_run_delay %s, "
           "minimal_backoff_time %s, maximal_backoff_time %s, maximal_queue_lifetime %s, "
           "bounce_queue_lifetime %s\n\n", (unsigned long long)version, d1, d2, d3, d4, d5);
    s_clock(failure_at, t, sizeof t);
    printf("%-12s delivery failed: the message waits in the deferred queue\n", t);
    s_clock(failure_at + first_run, t, sizeof t);
    s_duration(r->queue_run_delay, d1, sizeof d1);
    printf("%-12s first queue run (then every %s)\n", t, d1);
    for (size_t i = 0; i < n; i++) {
        s_clock(failure_at + a[i].at, t, sizeof t);
        s_duration(a[i].backoff, d1, sizeof d1);
        printf("%-12s retry %-3u (backoff %s)%s\n", t, a[i].retry, d1,
               a[i].bounce ? ": past maximal_queue_lifetime, bounced to the sender if it fails"
                           : "");
    }
    if (r->bounce_queue_lifetime == 0)
        printf("\nbounces (null sender) are not retried: bounce_queue_lifetime is 0\n");
    else
        printf("\nbounces (null sender) are retried for %s\n", d5);
}

static int s_timetable(PGconn *db, int argc, char **argv, bool json)
{
    static const struct option opts[] = {
        { "failure-at", required_argument, NULL, 'f' },
        { "first-run-after", required_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 },
    };
    int64_t failure_at = 9 * 3600 + 15 * 60, first_run = 5 * 60;
    struct mta_attempt a[MTA_RETRY_ATTEMPTS_MAX];
    struct mta_retry r;
    char err[1024];
    settings_t *s;
    uint64_t version;
    size_t n;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'f' && s_parse_hhmm(optarg, &failure_at) == 0)
            continue;
        if (opt == 'r' && mta_retry_parse_time(optarg, &first_run) == 0)
            continue;
        fprintf(stderr, "portcullis: mta timetable: --failure-at takes HH:MM, --first-run-after "
                        "a time like 5m or 300s\n");
        return EXIT_USAGE;
    }
    if (optind != argc) {
        cmd_mta_usage(stderr);
        return EXIT_USAGE;
    }
    if (json) {
        /* the same object the API's GET /mta answers */
        json_t *o = admin_mta_timetable(db, failure_at, first_run, err, sizeof err);
        if (o == NULL) {
            fprintf(stderr, "portcullis: %s\n", err);
            return strncmp(err, "database", 8) == 0 ? EXIT_FAILED : EXIT_USAGE;
        }
        char *txt = json_dumps(o, JSON_INDENT(2));
        puts(txt);
        free(txt);
        json_decref(o);
        return 0;
    }
    if ((s = admin_settings_effective(db, err, sizeof err)) == NULL) {
        fprintf(stderr, "portcullis: %s\n", err);
        return EXIT_FAILED;
    }
    admin_mta_retry(s, &r);
    version = settings_version(s);
    settings_free(&s);
    if (first_run > r.queue_run_delay) {
        fprintf(stderr, "portcullis: --first-run-after must not exceed mta.queue_run_delay\n");
        return EXIT_USAGE;
    }
    n = mta_retry_timetable(&r, first_run, a, MTA_RETRY_ATTEMPTS_MAX);
    s_print(&r, failure_at, first_run, a, n, version);
    return 0;
}

int cmd_mta(PGconn *db, int argc, char **argv, bool json)
{
    if (argc >= 1 && strcmp(argv[0], "timetable") == 0)
        return s_timetable(db, argc, argv, json);
    cmd_mta_usage(stderr);
    return EXIT_USAGE;
}
