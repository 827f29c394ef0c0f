/* quota_store: the quota worker's work on disk (R5.5, R5.8, R5.9) — the check and purge,
 * the verification walk, the retention purge — over <base>/<area-dir>/<YYYYMMDDHH>/
 * <file_id>.eml (store.c). Only names storepath accepts are deleted, so a temp file the scan
 * service is still writing (".<id>.tmp") never is, nor anything outside the layout. Runs in the
 * worker thread (or a benchmark's caller); what it removes goes to the loop's queue. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "manager/purge_plan.h"
#include "manager/quota_int.h"
#include "util.h"

static void s_hour_text(uint32_t hour, char *out, size_t n)
{
    snprintf(out, n, "%04u-%02u-%02uT%02u:00Z", hour / 1000000, hour / 10000 % 100,
             hour / 100 % 100, hour % 100);
}

/* Subdirectories of path whose names pass ok(); NULL-terminated, caller frees each. */
static char **s_subdirs(const char *path, bool (*ok)(const char *), size_t *np)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char **v = NULL;
    size_t n = 0, cap = 0;

    *np = 0;
    if (d == NULL) {
        if (errno != ENOENT)
            log_warn("quota: cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        if (!ok(e->d_name) || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN))
            continue;
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 64;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (v != NULL)
        v[n] = NULL;
    *np = n;
    return v;
}

static void s_free_names(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool s_bucket_name(const char *s) { return storepath_bucket_valid(s); }

/* One bucket directory of one area, as the purge sees it. */
struct bucket_ref {
    uint32_t hour;
    time_t start;
    size_t area;                     /* index in the area-dir table */
};

static int s_bucket_cmp(const void *a, const void *b)
{
    const struct bucket_ref *x = a, *y = b;
    return x->hour < y->hour ? -1 : x->hour > y->hour;
}

/* Files of one bucket hour across areas: items and their (area, file id). */
struct hour_files {
    struct purge_item *items;
    struct { size_t area; char id[STOREPATH_FILE_ID_LEN + 1]; } *names;
    size_t n, cap;
};

static void s_hour_add(struct hour_files *h, uint32_t hour, size_t area, const char *id,
                       const struct stat *st)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->items = xrealloc(h->items, h->cap * sizeof *h->items);
        h->names = xrealloc(h->names, h->cap * sizeof *h->names);
    }
    h->items[h->n] = (struct purge_item){ .hour = hour, .size = (uint64_t)st->st_size,
                                          .mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
                                                      st->st_mtim.tv_nsec,
                                          .idx = (uint32_t)h->n };
    h->names[h->n].area = area;
    strlcpy_p(h->names[h->n].id, id, sizeof h->names[h->n].id);
    h->n++;
}

/* Calls fn for every stored file (<id>.eml, regular) of one bucket. Returns -1 if the
 * directory could not be read. */
static int s_bucket_files(const char *path, void (*fn)(void *, const char *id,
                                                       const struct stat *), void *arg)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char id[STOREPATH_FILE_ID_LEN + 1];
    struct stat st;

    if (d == NULL) {
        if (errno != ENOENT)
            log_warn("quota: cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (!storepath_file_name(e->d_name, id))
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        fn(arg, id, &st);
    }
    closedir(d);
    return 0;
}

/* The bucket directory goes when it is empty and its hour long past (never the one the scan
 * service may be about to write into: its mkdir and open are not atomic together). */
static void s_rmdir_bucket(const char *path, time_t start)
{
    if (start + QUOTA_BUCKET_QUIET_S > time(NULL))
        return;
    if (rmdir(path) != 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
        log_warn("quota: cannot remove %s: %s", path, strerror(errno));
}


/* --- check and purge (R5.8, R5.10) ------------------------------------------------------------ */

struct hour_ctx {
    struct hour_files *h;
    uint32_t hour;
    size_t area;
};

static void s_collect(void *arg, const char *id, const struct stat *st)
{
    struct hour_ctx *c = arg;
    s_hour_add(c->h, c->hour, c->area, id, st);
}

struct purge_tally {
    uint64_t files, bytes;
    uint32_t oldest, newest;
};

/* Deletes the oldest files of d until its counter is at or below target. */
static void s_purge(quota_t *q, struct qdir *d, uint64_t target, struct purge_tally *t)
{
    size_t nareas = 0, nb = 0, cap = 0;
    char **areas = s_subdirs(d->base, storepath_area_dir_valid, &nareas);
    struct bucket_ref *b = NULL;
    struct hour_files h = { 0 };
    char path[4096];

    for (size_t a = 0; a < nareas; a++) {
        size_t nbk = 0;
        char **bk;

        snprintf(path, sizeof path, "%s/%s", d->base, areas[a]);
        bk = s_subdirs(path, s_bucket_name, &nbk);
        for (size_t i = 0; i < nbk; i++) {
            if (nb == cap) {
                cap = cap ? cap * 2 : 256;
                b = xrealloc(b, cap * sizeof *b);
            }
            if (purge_bucket_parse(bk[i], &b[nb].hour, &b[nb].start) == 0) {
                b[nb].area = a;
                nb++;
            }
        }
        s_free_names(bk, nbk);
    }
    if (nb > 1)
        qsort(b, nb, sizeof *b, s_bucket_cmp);
    for (size_t i = 0; i < nb && !quota_stopping(q);) {
        uint64_t bytes, files, freed;
        size_t j = i, k;

        usage_get(d->usage, &bytes, &files);
        if (bytes <= target)
            break;
        h.n = 0;
        for (; j < nb && b[j].hour == b[i].hour; j++) { /* the hour in every area */
            struct hour_ctx c = { &h, b[j].hour, b[j].area };
            snprintf(path, sizeof path, "%s/%s/%010u", d->base, areas[b[j].area], b[j].hour);
            s_bucket_files(path, s_collect, &c);
        }
        purge_sort(h.items, h.n);
        k = purge_select(h.items, h.n, bytes, target, &freed);
        for (size_t x = 0; x < k; x++) {
            const struct purge_item *it = &h.items[x];
            const char *id = h.names[it->idx].id;

            snprintf(path, sizeof path, "%s/%s/%010u/%s.eml", d->base,
                     areas[h.names[it->idx].area], it->hour, id);
            if (unlink(path) != 0) {
                if (errno != ENOENT) /* ENOENT: deleted meanwhile, counted by its deleter */
                    log_warn("quota purge %s: cannot remove %s: %s", d->kind, path,
                             strerror(errno));
                continue;
            }
            usage_add(d->usage, -(int64_t)it->size, -1);
            quota_push_removed(q, d->kind, id, "quota");
            if (t->files++ == 0)
                t->oldest = it->hour;
            t->newest = it->hour;
            t->bytes += it->size;
        }
        if (k == h.n) /* the hour is empty now: its directories go */
            for (size_t y = i; y < j; y++) {
                snprintf(path, sizeof path, "%s/%s/%010u", d->base, areas[b[y].area], b[y].hour);
                s_rmdir_bucket(path, b[y].start);
            }
        i = j;
    }
    free(h.items);
    free(h.names);
    free(b);
    s_free_names(areas, nareas);
}

void quota_run_check(quota_t *q, unsigned dir, uint64_t quota_bytes, unsigned low_water)
{
    struct qdir *d = &q->d[dir];
    struct purge_tally t = { 0 };
    uint64_t bytes, files, target = purge_target(quota_bytes, low_water);
    double pct;
    char text[768], oldest[32], newest[32];

    usage_get(d->usage, &bytes, &files);
    pct = quota_bytes ? 100.0 * (double)bytes / (double)quota_bytes : 0;
    log_info("quota check %s: size %.2f MB of %.2f MB (%.1f %%), %" PRIu64 " files; action: %s",
             d->kind, QUOTA_MB(bytes), QUOTA_MB(quota_bytes), pct, files,
             bytes > quota_bytes ? "purge oldest first to the low-water mark" : "none");
    pthread_mutex_lock(&q->mu);
    d->last_check_ms = wall_ms();
    pthread_mutex_unlock(&q->mu);
    if (bytes <= quota_bytes)
        return;
    s_purge(q, d, target, &t);
    usage_get(d->usage, &bytes, &files);
    pthread_mutex_lock(&q->mu);
    d->last_purge_ms = wall_ms();
    pthread_mutex_unlock(&q->mu);
    s_hour_text(t.oldest, oldest, sizeof oldest);
    s_hour_text(t.newest, newest, sizeof newest);
    if (t.files > 0)
        snprintf(text, sizeof text,
                 "quota purge %s: deleted %" PRIu64 " messages, %.2f MB, oldest %s, newest %s; "
                 "size now %.2f MB of %.2f MB (%.1f %%), low-water mark %.2f MB",
                 d->kind, t.files, QUOTA_MB(t.bytes), oldest, newest, QUOTA_MB(bytes), QUOTA_MB(quota_bytes),
                 quota_bytes ? 100.0 * (double)bytes / (double)quota_bytes : 0, QUOTA_MB(target));
    else
        snprintf(text, sizeof text,
                 "quota purge %s: deleted 0 messages, 0.00 MB; size %.2f MB of %.2f MB: "
                 "nothing left to delete (a verification walk will check the counters)",
                 d->kind, QUOTA_MB(bytes), QUOTA_MB(quota_bytes));
    log_info("%s", text);
    quota_push_event(q, t.files > 0 ? "info" : "warning", false, NULL, text);
    if (bytes > target) { /* files gone but counters still high: drift, verify now, and no
                           * new purge at once (it would find nothing again) */
        pthread_mutex_lock(&q->mu);
        d->want_verify = true;
        d->hold_check_ms = now_ms() + QUOTA_PURGE_HOLD_MS;
        pthread_mutex_unlock(&q->mu);
    }
}

/* --- verification walk (R5.9) ----------------------------------------------------------------- */

struct walk_sum {
    uint64_t bytes, files;
};

static void s_sum(void *arg, const char *id, const struct stat *st)
{
    struct walk_sum *w = arg;
    (void)id;
    w->bytes += (uint64_t)st->st_size;
    w->files++;
}

static void s_walk(const struct qdir *d, struct walk_sum *w)
{
    size_t nareas = 0;
    char **areas = s_subdirs(d->base, storepath_area_dir_valid, &nareas);
    char path[4096];

    for (size_t a = 0; a < nareas; a++) {
        size_t nbk = 0;
        char **bk;

        snprintf(path, sizeof path, "%s/%s", d->base, areas[a]);
        bk = s_subdirs(path, s_bucket_name, &nbk);
        for (size_t i = 0; i < nbk; i++) {
            snprintf(path, sizeof path, "%s/%s/%s", d->base, areas[a], bk[i]);
            s_bucket_files(path, s_sum, w);
        }
        s_free_names(bk, nbk);
    }
    s_free_names(areas, nareas);
}

void quota_run_verify(quota_t *q, unsigned dir)
{
    struct qdir *d = &q->d[dir];
    struct walk_sum w = { 0 };
    uint64_t b0, f0, b1, f1, t0 = now_ms();
    int64_t db, df;
    unsigned tries;
    char text[768];

    usage_get(d->usage, &b0, &f0);
    s_walk(d, &w);
    usage_get(d->usage, &b1, &f1);
    pthread_mutex_lock(&q->mu);
    tries = ++d->verify_tries;
    pthread_mutex_unlock(&q->mu);
    /* A file stored or removed during the walk may or may not have been seen: the result is
     * exact only if the counters did not move. Otherwise try again soon; after a few tries
     * correct anyway, the error bounded by what moved. */
    if ((b0 != b1 || f0 != f1) && tries < QUOTA_VERIFY_TRIES) {
        log_info("quota verify %s: counters moved during the walk (%" PRIu64 " ms); again in "
                 "%d s", d->kind, now_ms() - t0, QUOTA_VERIFY_RETRY_MS / 1000);
        pthread_mutex_lock(&q->mu);
        d->next_verify_ms = now_ms() + QUOTA_VERIFY_RETRY_MS;
        pthread_mutex_unlock(&q->mu);
        return;
    }
    db = (int64_t)w.bytes - (int64_t)b1;
    df = (int64_t)w.files - (int64_t)f1;
    if (db != 0 || df != 0)
        usage_add(d->usage, db, df); /* an add, not a set: keeps what landed since */
    pthread_mutex_lock(&q->mu);
    d->verify_tries = 0;
    d->last_drift = db;
    pthread_mutex_unlock(&q->mu);
    if (db == 0 && df == 0) {
        log_info("quota verify %s: counters exact, %.2f MB in %" PRIu64 " files (walk %" PRIu64
                 " ms)", d->kind, QUOTA_MB(w.bytes), w.files, now_ms() - t0);
        return;
    }
    snprintf(text, sizeof text,
             "quota verify %s: counters were off by %+" PRId64 " bytes and %+" PRId64
             " files (files changed on disk behind the counters); corrected to %.2f MB in %"
             PRIu64 " files%s",
             d->kind, db, df, QUOTA_MB(w.bytes), w.files,
             b0 != b1 || f0 != f1 ? " (the directory was busy: exact within what was written "
                                    "during the walk)" : "");
    log_warn("%s", text);
    quota_push_event(q, "warning", false, NULL, text);
}

/* --- retention purge (R5.5) -------------------------------------------------------------------- */

static unsigned s_days_of(quota_t *q, const char *area_dir)
{
    unsigned days = QUOTA_DEFAULT_RETENTION_DAYS;

    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < q->nareas; i++)
        if (strcmp(q->areas[i].dir, area_dir) == 0)
            days = q->areas[i].days;
    pthread_mutex_unlock(&q->mu);
    return days;
}

struct ret_ctx {
    quota_t *q;
    struct qdir *d;
    uint64_t files, bytes;
};

/* Removes everything in an expired bucket: its stored files (recorded), and any temp file a
 * crash left behind there long ago (never counted, never indexed). */
static void s_expire_bucket(struct ret_ctx *c, const char *path)
{
    DIR *dd = opendir(path);
    struct dirent *e;
    char id[STOREPATH_FILE_ID_LEN + 1];
    struct stat st;

    if (dd == NULL)
        return;
    while ((e = readdir(dd)) != NULL) {
        bool stored = storepath_file_name(e->d_name, id);

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd(dd), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!stored && e->d_name[0] != '.')
            continue; /* not ours: left alone */
        if (unlinkat(dirfd(dd), e->d_name, 0) != 0) {
            if (errno != ENOENT)
                log_warn("retention purge %s: cannot remove %s/%s: %s", c->d->kind, path,
                         e->d_name, strerror(errno));
            continue;
        }
        if (!stored)
            continue;
        usage_add(c->d->usage, -(int64_t)st.st_size, -1);
        quota_push_removed(c->q, c->d->kind, id, "retention");
        c->files++;
        c->bytes += (uint64_t)st.st_size;
    }
    closedir(dd);
}

static void s_retention_dir(quota_t *q, struct qdir *d, time_t now)
{
    size_t nareas = 0;
    char **areas = s_subdirs(d->base, storepath_area_dir_valid, &nareas);
    char path[4096], text[768], cut[32];

    for (size_t a = 0; a < nareas && !quota_stopping(q); a++) {
        unsigned days = s_days_of(q, areas[a]);
        struct ret_ctx c = { q, d, 0, 0 };
        uint32_t oldest = 0, newest = 0;
        size_t nbk = 0;
        char **bk;
        time_t cutoff = now - (time_t)days * PURGE_SECONDS_PER_DAY;
        struct tm tm;

        snprintf(path, sizeof path, "%s/%s", d->base, areas[a]);
        bk = s_subdirs(path, s_bucket_name, &nbk);
        for (size_t i = 0; i < nbk && !quota_stopping(q); i++) {
            uint32_t hour;
            time_t start;

            if (purge_bucket_parse(bk[i], &hour, &start) != 0 ||
                !purge_retention_expired(start, now, days))
                continue;
            snprintf(path, sizeof path, "%s/%s/%s", d->base, areas[a], bk[i]);
            s_expire_bucket(&c, path);
            s_rmdir_bucket(path, start);
            if (oldest == 0 || hour < oldest)
                oldest = hour;
            if (hour > newest)
                newest = hour;
        }
        s_free_names(bk, nbk);
        if (c.files == 0)
            continue;
        gmtime_r(&cutoff, &tm);
        strftime(cut, sizeof cut, "%Y-%m-%dT%H:%MZ", &tm);
        {
            char o[32], n[32];
            s_hour_text(oldest, o, sizeof o);
            s_hour_text(newest, n, sizeof n);
            snprintf(text, sizeof text,
                     "retention purge %s: area dir %s (%u days): deleted %" PRIu64
                     " messages, %.2f MB, received before %s (buckets %s to %s)",
                     d->kind, areas[a], days, c.files, QUOTA_MB(c.bytes), cut, o, n);
        }
        log_info("%s", text);
        quota_push_event(q, "info", false, NULL, text);
    }
    s_free_names(areas, nareas);
}

void quota_run_retention(quota_t *q, time_t now)
{
    char buf[32], err[256];
    int n;

    log_info("retention purge: started (clock %ld)", (long)now);
    for (unsigned i = 0; i < QUOTA_DIRS; i++) {
        s_retention_dir(q, &q->d[i], now);
        pthread_mutex_lock(&q->mu);
        q->d[i].last_purge_ms = wall_ms();
        pthread_mutex_unlock(&q->mu);
    }
    n = snprintf(buf, sizeof buf, "%lld\n", (long long)now);
    if (fs_write_atomic(q->last_path, buf, (size_t)n, 0600, err, sizeof err) != 0)
        log_warn("retention purge: last run time not kept (runs again at the next start): %s",
                 err);
    log_info("retention purge: done");
}
