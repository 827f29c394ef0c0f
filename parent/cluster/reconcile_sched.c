/* reconcile_sched: see reconcile_sched.h. */
#include "cluster/reconcile_sched.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "admin/admin_command.h"
#include "admin/admin_quarantine.h"
#include "db/db.h"
#include "log.h"
#include "util.h"

struct reconcile_sched {
    char *dsn;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

/* Sleeps up to ms; true if asked to stop. */
static bool s_sleep(struct reconcile_sched *s, unsigned ms)
{
    struct timespec ts;
    bool stop;

    deadline_after_ms(&ts, ms);
    pthread_mutex_lock(&s->mu);
    while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
        ;
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* Seconds since the last scheduled run (from the audit log), or -1 if there was none. */
static int64_t s_since_last(PGconn *db)
{
    char err[256];
    int64_t v = -1;
    PGresult *r = db_query(db, "SELECT extract(epoch FROM now() - max(at))::bigint FROM audit_log "
                               "WHERE actor = '" RECONCILE_SCHED_ACTOR "' "
                               "AND action LIKE '% reconcile'", 0, NULL, err, sizeof err);

    if (r != NULL && !PQgetisnull(r, 0, 0))
        parse_int64(PQgetvalue(r, 0, 0), &v);
    PQclear(r);
    return v;
}

static void *s_main(void *arg)
{
    struct reconcile_sched *s = arg;
    PGconn *db = NULL;
    uint64_t started = now_ms();
    char err[1024];

    while (!s_sleep(s, RECONCILE_SCHED_CHECK_MS)) {
        settings_t *set;
        int64_t interval, since;
        struct admin_reconcile_totals t;
        if (db == NULL || PQstatus(db) != CONNECTION_OK) {
            db_close(&db);
            if ((db = db_connect(s->dsn, err, sizeof err)) == NULL) {
                log_warn("reconcile scheduler: %s", err);
                if (s_sleep(s, RECONCILE_SCHED_DB_RETRY_MS))
                    break;
                continue;
            }
        }
        if ((set = admin_settings_effective(db, err, sizeof err)) == NULL)
            continue;
        interval = settings_int(set, SETTING_RECONCILE_INTERVAL_S);
        settings_free(&set);
        since = s_since_last(db);
        /* never run before: the first run comes one interval after this parent started */
        if (since < 0)
            since = (int64_t)((now_ms() - started) / 1000);
        if (since < interval)
            continue;
        log_info("reconcile scheduled run: every connected child, both stores");
        if (admin_reconcile(db, RECONCILE_SCHED_ACTOR, NULL, NULL, true, NULL, NULL, &t, err,
                            sizeof err) != 0)
            log_warn("reconcile scheduled run: %s", err);
        log_info("reconcile scheduled run done children=%u files=%" PRIu64 " no_file=%" PRIu64
                 " no_row=%" PRIu64 " restored=%" PRIu64 " failed=%u", t.children, t.files,
                 t.no_file, t.no_row, t.restored, t.failed);
        if (t.children == 0) /* nothing connected: nothing recorded, do not retry every second */
            admin_audit(db, RECONCILE_SCHED_ACTOR, "all reconcile", "", true, "no child connected");
    }
    db_close(&db);
    return NULL;
}

reconcile_sched_t *reconcile_sched_start(const char *dsn, char *err, size_t errlen)
{
    struct reconcile_sched *s = xcalloc(1, sizeof *s);
    int e;

    s->dsn = xstrdup(dsn);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if ((e = pthread_create(&s->thread, NULL, s_main, s)) != 0) {
        snprintf(err, errlen, "reconcile scheduler thread: %s", strerror(e));
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s->dsn);
        free(s);
        return NULL;
    }
    return s;
}

void reconcile_sched_stop(reconcile_sched_t **sp)
{
    struct reconcile_sched *s;

    if (sp == NULL || (s = *sp) == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->dsn);
    free(s);
    *sp = NULL;
}
