/* dbthread: see dbthread.h. A mutex-protected FIFO of jobs, a second of finished ones, and an
 * eventfd the thread bumps when it finishes one. */
#include "cluster/dbthread.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "log.h"
#include "util.h"

#define DBTHREAD_BACKOFF_MIN_MS 500
#define DBTHREAD_BACKOFF_MAX_MS 8000

struct job {
    dbthread_run_fn run;
    dbthread_done_fn done;
    void *arg;
    bool ok;
    struct job *next;
};

struct dbthread {
    char *dsn;
    char name[32];
    size_t queue_max;
    bool retry;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;   /* waiting */
    struct job *fin, *fin_tail; /* finished, for the loop */
    size_t pending;            /* waiting + running */
    bool stopping;
    int efd;
    PGconn *db;
};

static void s_sleep_ms(dbthread_t *t, unsigned ms)
{
    struct timespec ts;

    deadline_after_ms(&ts, ms);
    pthread_mutex_lock(&t->mu);
    if (!t->stopping)
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    pthread_mutex_unlock(&t->mu);
}

static bool s_stopping(dbthread_t *t)
{
    bool s;

    pthread_mutex_lock(&t->mu);
    s = t->stopping;
    pthread_mutex_unlock(&t->mu);
    return s;
}

/* A usable connection, made again if broken; NULL once stopping with no database. */
static PGconn *s_db(dbthread_t *t, unsigned *backoff)
{
    char err[512];

    for (;;) {
        if (t->db != NULL && PQstatus(t->db) == CONNECTION_OK)
            return t->db;
        db_close(&t->db);
        if ((t->db = db_connect(t->dsn, err, sizeof err)) != NULL) {
            if (*backoff > DBTHREAD_BACKOFF_MIN_MS)
                log_info("%s: database connected", t->name);
            *backoff = DBTHREAD_BACKOFF_MIN_MS;
            return t->db;
        }
        if (*backoff == DBTHREAD_BACKOFF_MIN_MS)
            log_err("%s: %s (retrying)", t->name, err);
        if (s_stopping(t))
            return NULL;
        s_sleep_ms(t, *backoff);
        *backoff = *backoff * 2 > DBTHREAD_BACKOFF_MAX_MS ? DBTHREAD_BACKOFF_MAX_MS : *backoff * 2;
    }
}

static void s_run(dbthread_t *t, struct job *j)
{
    unsigned backoff = DBTHREAD_BACKOFF_MIN_MS;

    for (;;) {
        PGconn *db = s_db(t, &backoff);
        if (db == NULL) {
            j->ok = false;
            return;
        }
        if ((j->ok = j->run(db, j->arg)))
            return;
        if (PQstatus(db) != CONNECTION_OK)
            db_close(&t->db);
        if (!t->retry || s_stopping(t))
            return;
        s_sleep_ms(t, backoff);
        backoff = backoff * 2 > DBTHREAD_BACKOFF_MAX_MS ? DBTHREAD_BACKOFF_MAX_MS : backoff * 2;
    }
}

static void *s_thread(void *arg)
{
    dbthread_t *t = arg;
    uint64_t one = 1;

    pthread_mutex_lock(&t->mu);
    for (;;) {
        struct job *j;
        while (t->head == NULL && !t->stopping)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->head == NULL)
            break; /* stopping with nothing left */
        j = t->head;
        t->head = j->next;
        if (t->head == NULL)
            t->tail = NULL;
        pthread_mutex_unlock(&t->mu);
        s_run(t, j);
        pthread_mutex_lock(&t->mu);
        j->next = NULL;
        if (t->fin_tail != NULL)
            t->fin_tail->next = j;
        else
            t->fin = j;
        t->fin_tail = j;
        t->pending--;
        if (write(t->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_err("%s: eventfd: %s", t->name, strerror(errno));
    }
    pthread_mutex_unlock(&t->mu);
    db_close(&t->db);
    return NULL;
}

dbthread_t *dbthread_start(const char *dsn, const char *name, size_t queue_max, bool retry,
                           char *err, size_t errlen)
{
    dbthread_t *t = xcalloc(1, sizeof *t);
    sigset_t all, old;
    int rc;

    t->dsn = xstrdup(dsn);
    strlcpy_p(t->name, name, sizeof t->name);
    t->queue_max = queue_max;
    t->retry = retry;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    if ((t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "%s: eventfd: %s", name, strerror(errno));
        goto fail;
    }
    sigfillset(&all); /* signals are the main thread's */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&t->thread, NULL, s_thread, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot start its thread: %s", name, strerror(rc));
        close(t->efd);
        goto fail;
    }
    return t;
fail:
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->dsn);
    free(t);
    return NULL;
}

int dbthread_fd(const dbthread_t *t) { return t->efd; }

bool dbthread_post(dbthread_t *t, dbthread_run_fn run, dbthread_done_fn done, void *arg)
{
    struct job *j;

    pthread_mutex_lock(&t->mu);
    if (t->pending >= t->queue_max || t->stopping) {
        pthread_mutex_unlock(&t->mu);
        return false;
    }
    j = xcalloc(1, sizeof *j);
    j->run = run;
    j->done = done;
    j->arg = arg;
    if (t->tail != NULL)
        t->tail->next = j;
    else
        t->head = j;
    t->tail = j;
    t->pending++;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return true;
}

void dbthread_complete(dbthread_t *t)
{
    struct job *j;
    uint64_t n;

    if (read(t->efd, &n, sizeof n) < 0 && errno != EAGAIN)
        log_err("%s: eventfd: %s", t->name, strerror(errno));
    pthread_mutex_lock(&t->mu);
    j = t->fin;
    t->fin = t->fin_tail = NULL;
    pthread_mutex_unlock(&t->mu);
    while (j != NULL) {
        struct job *next = j->next;
        j->done(j->arg, j->ok);
        free(j);
        j = next;
    }
}

void dbthread_stop(dbthread_t **tp)
{
    dbthread_t *t;

    if (tp == NULL || (t = *tp) == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    dbthread_complete(t);
    close(t->efd);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->dsn);
    free(t);
    *tp = NULL;
}
