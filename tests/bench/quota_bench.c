/* quota_bench: the quota check, verification walk and purge of the child manager (R5.8, R5.9)
 * on a large tree of small stored files, for tests/bench/quota_bench.sh. Not a test.
 *   quota_bench make DIR N SIZE PER_BUCKET   N files of SIZE bytes, PER_BUCKET per hourly bucket
 *   quota_bench run DIR STATE                check, walk, then purge down to half the usage
 * Prints one `key=value` line per measurement. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "manager/mreport.h"
#include "manager/quota.h"
#include "storepath.h"
#include "usage.h"
#include "util.h"

#define BENCH_CHECKS 1000000 /* counter reads timed together: one is below the clock's grain */

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_make(const char *dir, long n, long size, long per_bucket)
{
    char adir[STOREPATH_AREA_DIR_MAX + 1], path[4096], id[STOREPATH_FILE_ID_LEN + 1], err[256];
    char *buf = calloc(1, (size_t)size);
    time_t start = time(NULL) - (time_t)(n / per_bucket + 2) * 3600;
    usage_t *u = usage_open(dir, err, sizeof err);
    double t0 = s_now();

    if (u == NULL || buf == NULL) {
        fprintf(stderr, "quota_bench: %s\n", u == NULL ? err : "out of memory");
        return 1;
    }
    memset(buf, 'x', (size_t)size);
    storepath_area_dir("Default quarantine", adir, sizeof adir);
    snprintf(path, sizeof path, "%s/%s", dir, adir);
    mkdir(path, 0700);
    for (long i = 0; i < n; i++) {
        char bucket[16];
        time_t h = start + (time_t)(i / per_bucket) * 3600;
        struct tm tm;
        int fd;

        gmtime_r(&h, &tm);
        strftime(bucket, sizeof bucket, "%Y%m%d%H", &tm);
        if (i % per_bucket == 0) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, adir, bucket);
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                perror(path);
                return 1;
            }
        }
        snprintf(id, sizeof id, "%016lx%016lx", (unsigned long)i, (unsigned long)random());
        snprintf(path, sizeof path, "%s/%s/%s/%s.eml", dir, adir, bucket, id);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, buf, (size_t)size) != (ssize_t)size) {
            perror(path);
            return 1;
        }
        close(fd);
        usage_add(u, size, 1);
    }
    printf("make_files=%ld make_s=%.1f\n", n, s_now() - t0);
    usage_close(&u);
    free(buf);
    return 0;
}

struct purge_arg {
    quota_t *q;
    uint64_t quota_bytes;
    volatile int done;
};

static void *s_purge_thread(void *arg)
{
    struct purge_arg *a = arg;
    quota_run_check(a->q, 0, a->quota_bytes, 80);
    __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static int s_run(const char *dir, const char *state)
{
    char err[256], mspool[4096], archive[4096];
    mreport_t *mrep;
    quota_t *q;
    usage_t *u;
    uint64_t bytes, files, b2, f2, sink = 0;
    double t0;
    pthread_t th;
    struct purge_arg pa;

    snprintf(mspool, sizeof mspool, "%s/mspool", state);
    snprintf(archive, sizeof archive, "%s/archive", state);
    if ((mrep = mreport_open(mspool, err, sizeof err)) == NULL ||
        (q = quota_new(dir, archive, state, mrep, err, sizeof err)) == NULL ||
        (u = usage_open(dir, err, sizeof err)) == NULL) {
        fprintf(stderr, "quota_bench: %s\n", err);
        return 1;
    }
    t0 = s_now();
    for (int i = 0; i < BENCH_CHECKS; i++) {
        usage_get(u, &bytes, &files);
        sink += bytes;
    }
    printf("check_ns=%.1f (usage counter read, mean of %d) files=%" PRIu64 " bytes=%" PRIu64
           "%s\n", (s_now() - t0) / BENCH_CHECKS * 1e9, BENCH_CHECKS, files, bytes,
           sink == 1 ? " " : "");

    t0 = s_now();
    quota_run_verify(q, 0);
    usage_get(u, &b2, &f2);
    printf("verify_s=%.2f files=%" PRIu64 " (exact: %s)\n", s_now() - t0, f2,
           b2 == bytes && f2 == files ? "yes" : "no");

    /* a quota whose 80 % low-water mark is half the usage: the purge deletes half the files */
    pa.q = q;
    pa.quota_bytes = bytes / 8 * 5;
    pa.done = 0;
    t0 = s_now();
    if (pthread_create(&th, NULL, s_purge_thread, &pa) != 0)
        return 1;
    while (!__atomic_load_n(&pa.done, __ATOMIC_SEQ_CST)) {
        quota_record(q); /* the manager loop's part: removals into the report spool */
        usleep(1000);
    }
    pthread_join(th, NULL);
    quota_record(q);
    {
        double s = s_now() - t0;
        usage_get(u, &b2, &f2);
        printf("purge_s=%.2f deleted=%" PRIu64 " files_per_s=%.0f (each recorded in the "
               "manager's report spool)\n", s, files - f2, (double)(files - f2) / s);
    }
    quota_destroy(&q);
    usage_close(&u);
    mreport_close(&mrep);
    return 0;
}

int main(int argc, char **argv)
{
    log_init("quota_bench", LOG_LEVEL_WARN);
    if (argc == 6 && strcmp(argv[1], "make") == 0)
        return s_make(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]));
    if (argc == 4 && strcmp(argv[1], "run") == 0)
        return s_run(argv[2], argv[3]);
    fprintf(stderr, "usage: quota_bench make DIR N SIZE PER_BUCKET | run DIR STATE\n");
    return 2;
}
