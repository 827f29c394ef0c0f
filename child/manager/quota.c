/* quota: see quota.h. The loop owns the schedules and the notification state and is the
 * only caller of mreport; the worker (its jobs in quota_store.c) owns the walks. Both meet under
 * q->mu: requests (want_*), parameters, figures for health, and the result queue. */
#include "manager/quota.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "log.h"
#include "manager/purge_plan.h"
#include "manager/quota_int.h"
#include "util.h"

/* --- results -------------------------------------------------------------------------------- */

static void s_push(quota_t *q, struct result *r)
{
    pthread_mutex_lock(&q->mu);
    if (r->type == RES_REMOVED) /* what a run now reports */
        q->tally[r->kind == q->d[1].kind][strcmp(r->reason, "retention") == 0]++;
    /* Bounded so a purge of millions does not hold millions of records in memory; never
     * dropped, so when stopping the bound gives way (what was deleted must be recorded). */
    while (q->nresults >= QUOTA_RESULTS_MAX && !q->stop)
        pthread_cond_wait(&q->space, &q->mu);
    if (q->tail != NULL)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->nresults++;
    pthread_mutex_unlock(&q->mu);
}

void quota_push_removed(quota_t *q, const char *kind, const char *file_id, const char *reason)
{
    struct result *r = xcalloc(1, sizeof *r);

    r->type = RES_REMOVED;
    r->kind = kind;
    r->reason = reason;
    strlcpy_p(r->file_id, file_id, sizeof r->file_id);
    s_push(q, r);
}

void quota_push_event(quota_t *q, const char *severity, bool notify, const char *subject,
                         const char *text)
{
    struct result *r = xcalloc(1, sizeof *r);

    r->type = RES_EVENT;
    r->severity = severity;
    r->notify = notify;
    r->subject = subject != NULL ? xstrdup(subject) : NULL;
    r->text = xstrdup(text);
    s_push(q, r);
}

/* Loop: a run now has ended and what it removed is recorded (it came before in the queue). */
static void s_answer_now(quota_t *q, const char *detail)
{
    if (q->now_req == 0 || q->cmd == NULL)
        return;
    mreport_sync(q->mrep);
    log_info("command id=%" PRIu64 " purge: done %s", q->now_req, detail);
    command_reply(q->cmd, q->now_req, true, NULL, detail);
    q->now_req = 0;
}

/* Loop: records up to max results (all with max 0); one spool sync for the lot. */
static void s_drain(quota_t *q, size_t max)
{
    struct result *list, *r;
    size_t n = 0;

    pthread_mutex_lock(&q->mu);
    list = q->head;
    for (r = list; r != NULL && (max == 0 || n + 1 < max); r = r->next)
        n++;
    if (r != NULL) { /* cut after r */
        q->head = r->next;
        r->next = NULL;
        n++;
    } else {
        q->head = NULL;
    }
    if (q->head == NULL)
        q->tail = NULL;
    q->nresults -= n;
    pthread_cond_broadcast(&q->space);
    pthread_mutex_unlock(&q->mu);
    if (list == NULL)
        return;
    for (r = list; r != NULL; r = list) {
        list = r->next;
        if (r->type == RES_REMOVED)
            mreport_removed(q->mrep, r->kind, r->file_id, r->reason);
        else if (r->type == RES_DONE)
            s_answer_now(q, r->text);
        else
            mreport_event(q->mrep, "quota", r->severity, r->notify, r->subject, "%s", r->text);
        free(r->subject);
        free(r->text);
        free(r);
    }
    mreport_sync(q->mrep);
}

/* --- walking the store ---------------------------------------------------------------------- */

bool quota_stopping(quota_t *q)
{
    bool s;

    pthread_mutex_lock(&q->mu);
    s = q->stop;
    pthread_mutex_unlock(&q->mu);
    return s;
}

static time_t s_now(const quota_t *q) { return time(NULL) + q->clock_offset_s; }

/* Worker: the end of a run now, with what it removed and the usage after it. */
static void s_push_done(quota_t *q)
{
    struct result *r = xcalloc(1, sizeof *r);
    json_t *d = json_object();
    uint64_t total = 0;

    for (unsigned i = 0; i < QUOTA_DIRS; i++) {
        uint64_t bytes, files, byquota, byret, quota_bytes;

        usage_get(q->d[i].usage, &bytes, &files);
        pthread_mutex_lock(&q->mu);
        byquota = q->tally[i][0];
        byret = q->tally[i][1];
        quota_bytes = q->d[i].quota_bytes;
        pthread_mutex_unlock(&q->mu);
        total += byquota + byret;
        json_object_set_new(d, q->d[i].kind,
                            json_pack("{s:I, s:I, s:I, s:I, s:I}",
                                      "deleted_quota", (json_int_t)byquota,
                                      "deleted_retention", (json_int_t)byret,
                                      "files_now", (json_int_t)files,
                                      "bytes_now", (json_int_t)bytes,
                                      "quota_bytes", (json_int_t)quota_bytes));
    }
    json_object_set_new(d, "deleted", json_integer((json_int_t)total));
    json_object_set_new(d, "stopped", json_boolean(quota_stopping(q)));
    r->type = RES_DONE;
    r->text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(d);
    s_push(q, r);
}

/* --- worker ------------------------------------------------------------------------------------ */

static void *s_worker(void *arg)
{
    quota_t *q = arg;

    pthread_mutex_lock(&q->mu);
    while (!q->stop) {
        bool did = false;

        if (q->want_now) { /* the administrator's "purge" (R7.4): all of it, now */
            uint64_t quota_bytes[QUOTA_DIRS];
            unsigned low = q->low_water;
            time_t now = s_now(q);

            q->want_now = false;
            memset(q->tally, 0, sizeof q->tally);
            for (unsigned i = 0; i < QUOTA_DIRS; i++) {
                quota_bytes[i] = q->d[i].quota_bytes;
                q->d[i].want_check = false;
                q->d[i].busy = true;
            }
            pthread_mutex_unlock(&q->mu);
            for (unsigned i = 0; i < QUOTA_DIRS && !quota_stopping(q); i++)
                quota_run_check(q, i, quota_bytes[i], low);
            if (!quota_stopping(q))
                quota_run_retention(q, now);
            s_push_done(q);
            pthread_mutex_lock(&q->mu);
            for (unsigned i = 0; i < QUOTA_DIRS; i++)
                q->d[i].busy = false;
            did = true;
        }

        for (unsigned i = 0; i < QUOTA_DIRS && !q->stop; i++) {
            struct qdir *d = &q->d[i];
            if (d->want_check) {
                uint64_t quota_bytes = d->quota_bytes;
                unsigned low = q->low_water;
                d->want_check = false;
                d->busy = true;
                pthread_mutex_unlock(&q->mu);
                quota_run_check(q, i, quota_bytes, low);
                pthread_mutex_lock(&q->mu);
                d->busy = false;
                did = true;
            }
        }
        if (q->want_retention && !q->stop) {
            time_t now = s_now(q);
            q->want_retention = false;
            pthread_mutex_unlock(&q->mu);
            quota_run_retention(q, now);
            pthread_mutex_lock(&q->mu);
            did = true;
        }
        for (unsigned i = 0; i < QUOTA_DIRS && !q->stop; i++) {
            struct qdir *d = &q->d[i];
            if (d->want_verify) {
                d->want_verify = false;
                pthread_mutex_unlock(&q->mu);
                quota_run_verify(q, i);
                pthread_mutex_lock(&q->mu);
                did = true;
            }
        }
        if (!did && !q->stop)
            pthread_cond_wait(&q->work, &q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

/* --- loop side ---------------------------------------------------------------------------------- */

quota_t *quota_new(const char *quarantine_dir, const char *archive_dir, const char *state_dir,
                   mreport_t *mrep, char *err, size_t errlen)
{
    quota_t *q = xcalloc(1, sizeof *q);
    const char *bases[QUOTA_DIRS] = { quarantine_dir, archive_dir };
    const char *env = getenv(QUOTA_CLOCK_ENV);
    char *text = NULL;
    size_t len;
    int64_t v;

    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->space, NULL);
    q->mrep = mrep;
    q->low_water = 80;
    q->d[0].kind = "quarantine";
    q->d[0].title = "Quarantine";
    q->d[1].kind = "archive";
    q->d[1].title = "Archive";
    for (unsigned i = 0; i < QUOTA_DIRS; i++) {
        strlcpy_p(q->d[i].base, bases[i], sizeof q->d[i].base);
        if ((q->d[i].usage = usage_open(bases[i], err, errlen)) == NULL) {
            quota_destroy(&q);
            return NULL;
        }
        q->d[i].next_verify_ms = now_ms(); /* a first walk at start: finds drift of a crash */
    }
    if (env != NULL && parse_int64(env, &v) == 0) {
        q->clock_offset_s = v;
        log_warn("%s=%" PRId64 ": the purge clock is shifted (tests only)", QUOTA_CLOCK_ENV, v);
    }
    snprintf(q->last_path, sizeof q->last_path, "%s/retention.last", state_dir);
    if (fs_read_file(q->last_path, 64, &text, &len, err, errlen) == 0 &&
        (text[strcspn(text, "\n")] = '\0', parse_int64(text, &v) == 0))
        q->last_retention = (time_t)v;
    else /* first start: the next scheduled time, not at once */
        q->last_retention = s_now(q);
    if (q->last_retention > s_now(q) + PURGE_SECONDS_PER_DAY) {
        /* the clock went back (or a test clock ran ahead): do not wait for that date */
        log_warn("retention purge: last run %lld is in the future; counting from now",
                 (long long)q->last_retention);
        q->last_retention = s_now(q);
    }
    free(text);
    err[0] = '\0';
    if (pthread_create(&q->th, NULL, s_worker, q) != 0) {
        snprintf(err, errlen, "quota worker thread: %s", strerror(errno));
        quota_destroy(&q);
        return NULL;
    }
    q->started = true;
    return q;
}

void quota_destroy(quota_t **qp)
{
    quota_t *q;

    if (qp == NULL || *qp == NULL)
        return;
    q = *qp;
    if (q->started) {
        pthread_mutex_lock(&q->mu);
        q->stop = true;
        pthread_cond_broadcast(&q->work);
        pthread_cond_broadcast(&q->space);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->th, NULL);
    }
    s_drain(q, 0);
    for (unsigned i = 0; i < QUOTA_DIRS; i++)
        usage_close(&q->d[i].usage);
    free(q->areas);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->space);
    free(q);
    *qp = NULL;
}

void quota_set_areas(quota_t *q, Portcullis__Area *const *areas, size_t n)
{
    struct area_ret *v;
    size_t k = 0;

    if (n > QUOTA_AREAS_MAX)
        n = QUOTA_AREAS_MAX;
    v = xcalloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        if (areas[i]->name == NULL || areas[i]->name[0] == '\0')
            continue;
        storepath_area_dir(areas[i]->name, v[k].dir, sizeof v[k].dir);
        v[k].days = areas[i]->retention_days >= 1 ? areas[i]->retention_days
                                                   : QUOTA_DEFAULT_RETENTION_DAYS;
        k++;
    }
    pthread_mutex_lock(&q->mu);
    free(q->areas);
    q->areas = v;
    q->nareas = k;
    pthread_mutex_unlock(&q->mu);
}

void quota_load_areas(quota_t *q, const char *snapshot_path)
{
    Portcullis__ConfigSnapshot *snap;
    char *data = NULL, err[256];
    size_t len;

    if (fs_read_file(snapshot_path, QUOTA_SNAPSHOT_MAX, &data, &len, err, sizeof err) != 0)
        return;
    snap = portcullis__config_snapshot__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (snap == NULL) {
        log_warn("quota: cached configuration unreadable: areas take the default retention");
        return;
    }
    quota_set_areas(q, snap->areas, snap->n_areas);
    portcullis__config_snapshot__free_unpacked(snap, NULL);
}

/* Loop: notification once per crossing of the threshold (R5.11), cleared below it. */
static void s_notify_check(quota_t *q, struct qdir *d, uint64_t bytes, uint64_t quota_bytes,
                           unsigned thr)
{
    double pct = quota_bytes ? 100.0 * (double)bytes / (double)quota_bytes : 0;
    char subject[96];

    if (thr == 0 || pct < (double)thr) {
        if (d->notified)
            log_info("quota %s: usage %.1f %% back under the %u %% notification threshold",
                     d->kind, pct, thr);
        d->notified = false;
        return;
    }
    if (d->notified)
        return;
    d->notified = true;
    snprintf(subject, sizeof subject, "%s area disk usage notification", d->title);
    log_warn("quota notify %s: size %.2f MB of %.2f MB (%.1f %%) exceeds the %u %% "
             "notification threshold; administrator notified", d->kind, QUOTA_MB(bytes),
             QUOTA_MB(quota_bytes), pct, thr);
    mreport_event(q->mrep, "quota", "warning", true, subject,
                  "%s area disk usage exceeded %u %% of its quota: %.2f MB of %.2f MB (%.1f %%). "
                  "Raise the %s quota (%s.quota_mb) or delete old %s messages.%s",
                  d->title, thr, QUOTA_MB(bytes), QUOTA_MB(quota_bytes), pct, d->kind, d->kind,
                  strcmp(d->kind, "quarantine") == 0 ? "quarantined" : "archived",
                  bytes > quota_bytes ? " Over the quota: the oldest messages are being "
                                        "deleted down to the low-water mark." : "");
}

static void s_tick_dir(quota_t *q, struct qdir *d, const settings_t *s, enum setting_id quota_id,
                       enum setting_id thr_id, uint64_t now)
{
    uint64_t quota_bytes = (uint64_t)settings_int(s, quota_id) << 20, bytes, files;
    uint64_t check_ms = 1000u * (uint64_t)settings_int(s, SETTING_QUOTA_CHECK_INTERVAL_S);
    uint64_t verify_ms = 1000u * (uint64_t)settings_int(s, SETTING_QUOTA_VERIFY_INTERVAL_S);
    bool wake = false;

    usage_get(d->usage, &bytes, &files);
    if (quota_bytes < QUOTA_FLAG_BYTES && !d->flag_logged)
        log_warn("quota %s: %.2f MB is under 1 GB: allowed, but notifications may fire often "
                 "(R5.13)", d->kind, QUOTA_MB(quota_bytes));
    d->flag_logged = quota_bytes < QUOTA_FLAG_BYTES;
    s_notify_check(q, d, bytes, quota_bytes, (unsigned)settings_int(s, thr_id));

    pthread_mutex_lock(&q->mu);
    d->quota_bytes = quota_bytes;
    /* A first check at start; a shorter interval takes effect now, not after the old one. */
    if (d->check_interval_ms == 0)
        d->next_check_ms = now;
    else if (d->next_check_ms > now + check_ms)
        d->next_check_ms = now + check_ms;
    d->check_interval_ms = check_ms;
    if (d->next_verify_ms > now + verify_ms)
        d->next_verify_ms = now + verify_ms;
    /* every check_interval_s, and at once when a write takes usage over the quota (not
     * again while the purge that deals with it runs) */
    if (now >= d->next_check_ms ||
        (bytes > quota_bytes && !d->want_check && !d->busy && now >= d->hold_check_ms)) {
        if (now >= d->next_check_ms)
            d->next_check_ms = now + check_ms;
        wake = !d->want_check;
        d->want_check = true;
    }
    if (now >= d->next_verify_ms) {
        d->next_verify_ms = now + verify_ms;
        wake = wake || !d->want_verify;
        d->want_verify = true;
    }
    if (wake)
        pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
}

void quota_tick(quota_t *q, const settings_t *s)
{
    uint64_t now = now_ms();
    int hh, mm;

    if (q == NULL)
        return;
    s_drain(q, QUOTA_DRAIN_PER_TICK);
    if (now < q->next_poll_ms)
        return;
    q->next_poll_ms = now + QUOTA_POLL_MS;
    pthread_mutex_lock(&q->mu);
    q->low_water = (unsigned)settings_int(s, SETTING_QUOTA_LOW_WATER_PERCENT);
    pthread_mutex_unlock(&q->mu);
    s_tick_dir(q, &q->d[0], s, SETTING_QUARANTINE_QUOTA_MB, SETTING_QUARANTINE_NOTIFY_THRESHOLD,
               now);
    s_tick_dir(q, &q->d[1], s, SETTING_ARCHIVE_QUOTA_MB, SETTING_ARCHIVE_NOTIFY_THRESHOLD, now);
    if (purge_time_parse(settings_str(s, SETTING_RETENTION_PURGE_TIME), &hh, &mm) == 0 &&
        purge_retention_due(s_now(q), q->last_retention, hh, mm)) {
        q->last_retention = s_now(q);
        pthread_mutex_lock(&q->mu);
        q->want_retention = true;
        pthread_cond_signal(&q->work);
        pthread_mutex_unlock(&q->mu);
    }
}

void quota_record(quota_t *q)
{
    if (q != NULL)
        s_drain(q, QUOTA_DRAIN_PER_TICK);
}

size_t quota_health(quota_t *q, Portcullis__StoreUsage *su, Portcullis__StoreUsage **ptrs)
{
    if (q == NULL)
        return 0;
    for (unsigned i = 0; i < QUOTA_DIRS; i++) {
        struct qdir *d = &q->d[i];
        Portcullis__StoreUsage init = PORTCULLIS__STORE_USAGE__INIT;

        su[i] = init;
        su[i].kind = (char *)d->kind;
        usage_get(d->usage, &su[i].bytes, &su[i].files);
        pthread_mutex_lock(&q->mu);
        su[i].quota_bytes = d->quota_bytes;
        su[i].last_check_ms = d->last_check_ms;
        su[i].last_purge_ms = d->last_purge_ms;
        su[i].last_drift_bytes = d->last_drift;
        pthread_mutex_unlock(&q->mu);
        ptrs[i] = &su[i];
    }
    return QUOTA_DIRS;
}

/* --- the parent's command (R7.4) --------------------------------------------------------------- */

static int s_cmd_purge(void *arg, const Portcullis__Command *cmd, Portcullis__CommandReply *reply)
{
    quota_t *q = arg;
    const settings_t *s = *q->settings;

    if (q->now_req == cmd->id && cmd->id != 0)
        return 1; /* sent again while it runs: the one answer comes when it ends */
    if (q->now_req != 0) {
        reply->ok = false;
        reply->error = "a purge asked for earlier is still running; retry when it has ended";
        return 0;
    }
    pthread_mutex_lock(&q->mu);
    /* the settings in force now, not those of the last poll */
    q->low_water = (unsigned)settings_int(s, SETTING_QUOTA_LOW_WATER_PERCENT);
    q->d[0].quota_bytes = (uint64_t)settings_int(s, SETTING_QUARANTINE_QUOTA_MB) << 20;
    q->d[1].quota_bytes = (uint64_t)settings_int(s, SETTING_ARCHIVE_QUOTA_MB) << 20;
    q->want_now = true;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    q->now_req = cmd->id;
    log_info("command id=%" PRIu64 " purge: quota check and purge, retention purge now",
             cmd->id);
    return 1;
}

void quota_commands(quota_t *q, command_t *cmd, settings_t *const *settings)
{
    q->cmd = cmd;
    q->settings = settings;
    if (command_register(cmd, "purge", s_cmd_purge, q) != 0)
        fatal("quota: cannot register the purge command");
}
