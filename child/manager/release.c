/* release: see release.h. The worker reads the whole file, then runs one SMTP transaction
 * (EHLO, MAIL FROM with the original sender, every original recipient, DATA) on a private
 * event base. Every recipient must be accepted: a partial release would leave the file kept
 * for some and delivered to others, so any refusal fails the whole job (retry later). */
#include "manager/release.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "smtp_client.h"
#include "util.h"

struct releaser {
    char downstream[256], helo[256];
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct release_job *queue, *running, *done; /* queue and done: FIFO lists */
    size_t nqueue;
};

/* One transaction's progress on the worker's event base. */
struct dialogue {
    struct release_job *job;
    struct event_base *base;
    struct evbuffer *body;
    size_t next_rcpt;
    bool finished;
};

void release_job_free(struct release_job **jp)
{
    struct release_job *j;

    if (jp == NULL || (j = *jp) == NULL)
        return;
    free(j->sender);
    for (size_t i = 0; i < j->nrcpts; i++)
        free(j->rcpts[i]);
    free(j->rcpts);
    free(j);
    *jp = NULL;
}

static void s_end(struct dialogue *d, bool ok, const char *what, const struct smtp_reply *r)
{
    d->job->ok = ok;
    if (!ok)
        snprintf(d->job->error, sizeof d->job->error, "downstream %.560s: %s%d %.300s", what,
                 r->code != 0 ? "" : "no answer, ", r->code, r->text);
    d->finished = true;
    event_base_loopbreak(d->base);
}

static void s_body_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    (void)c;
    s_end(arg, r->code == 250, "refused the message", r);
}

static void s_data_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct dialogue *d = arg;

    if (r->code != 354 || smtp_client_body(c, d->body, s_body_cb, d) != 0)
        s_end(d, false, "refused DATA", r);
}

static void s_rcpt_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct dialogue *d = arg;
    char line[SMTP_CLIENT_LINE_MAX];

    if (r->code != 250 && r->code != 251) {
        char what[600];
        snprintf(what, sizeof what, "refused recipient <%.520s>", d->job->rcpts[d->next_rcpt - 1]);
        s_end(d, false, what, r);
        return;
    }
    if (d->next_rcpt < d->job->nrcpts) {
        snprintf(line, sizeof line, "RCPT TO:<%s>", d->job->rcpts[d->next_rcpt++]);
        smtp_client_command(c, line, s_rcpt_cb, d);
        return;
    }
    smtp_client_command(c, "DATA", s_data_cb, d);
}

static void s_mail_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct dialogue *d = arg;
    char line[SMTP_CLIENT_LINE_MAX];

    if (r->code != 250) {
        s_end(d, false, "refused the sender", r);
        return;
    }
    snprintf(line, sizeof line, "RCPT TO:<%s>", d->job->rcpts[d->next_rcpt++]);
    smtp_client_command(c, line, s_rcpt_cb, d);
}

static void s_open_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct dialogue *d = arg;
    char line[SMTP_CLIENT_LINE_MAX];

    if (r->code < 200 || r->code > 299) {
        s_end(d, false, "did not greet", r);
        return;
    }
    snprintf(line, sizeof line, "MAIL FROM:<%s>%s", d->job->sender,
             (smtp_client_extensions(c) & SMTP_EXT_8BITMIME) ? " BODY=8BITMIME" : "");
    smtp_client_command(c, line, s_mail_cb, d);
}

static void s_quit_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    (void)c;
    (void)r;
    event_base_loopbreak(arg);
}

/* Reads the file into body; 0 ok, -1 with job->error filled. */
static int s_read(struct release_job *j, struct evbuffer *body)
{
    int fd = open(j->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;

    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > RELEASE_FILE_MAX) {
        snprintf(j->error, sizeof j->error, "cannot read %s: %s", j->file_id,
                 fd < 0 ? strerror(errno) : "not a regular file of a releasable size");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    j->size = (uint64_t)st.st_size;
    /* Read into memory: the dot-stuffing pass needs the bytes, not a sendfile segment. */
    for (;;) {
        int n = evbuffer_read(body, fd, 1 << 16);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(j->error, sizeof j->error, "cannot read %s: %s", j->file_id, strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

static void s_run(struct releaser *rl, struct release_job *j)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    struct dialogue d = { .job = j };
    smtp_client_t *c;

    j->ok = false;
    if (smtp_client_resolve(rl->downstream, &ss, &sslen, j->error, sizeof j->error) != 0)
        return;
    d.base = event_base_new();
    d.body = evbuffer_new();
    if (s_read(j, d.body) == 0) {
        c = smtp_client_new(d.base, (struct sockaddr *)&ss, sslen, rl->helo, j->timeout_s);
        smtp_client_open(c, s_open_cb, &d);
        event_base_dispatch(d.base);
        if (!d.finished)
            snprintf(j->error, sizeof j->error, "downstream dialogue ended without an answer");
        /* QUIT politely after a delivery; a failed dialogue just closes. */
        if (j->ok && smtp_client_ready(c) && smtp_client_command(c, "QUIT", s_quit_cb, d.base) == 0)
            event_base_dispatch(d.base);
        smtp_client_free(&c);
    }
    evbuffer_free(d.body);
    event_base_free(d.base);
}

static void *s_worker(void *arg)
{
    struct releaser *rl = arg;

    pthread_mutex_lock(&rl->mu);
    for (;;) {
        struct release_job *j, **tail;
        while (!rl->stop && rl->queue == NULL)
            pthread_cond_wait(&rl->cv, &rl->mu);
        if (rl->stop)
            break;
        j = rl->queue;
        rl->queue = j->next;
        rl->nqueue--;
        j->next = NULL;
        rl->running = j;
        pthread_mutex_unlock(&rl->mu);
        s_run(rl, j);
        pthread_mutex_lock(&rl->mu);
        rl->running = NULL;
        for (tail = &rl->done; *tail != NULL; tail = &(*tail)->next)
            ;
        *tail = j;
    }
    pthread_mutex_unlock(&rl->mu);
    return NULL;
}

releaser_t *releaser_new(const char *downstream, const char *helo)
{
    struct releaser *rl = xcalloc(1, sizeof *rl);

    strlcpy_p(rl->downstream, downstream, sizeof rl->downstream);
    strlcpy_p(rl->helo, helo, sizeof rl->helo);
    pthread_mutex_init(&rl->mu, NULL);
    pthread_cond_init(&rl->cv, NULL);
    return rl;
}

static void s_free_list(struct release_job *j)
{
    while (j != NULL) {
        struct release_job *next = j->next;
        release_job_free(&j);
        j = next;
    }
}

void releaser_destroy(releaser_t **rp)
{
    struct releaser *rl;

    if (rp == NULL || (rl = *rp) == NULL)
        return;
    if (rl->started) {
        pthread_mutex_lock(&rl->mu);
        rl->stop = true;
        pthread_cond_signal(&rl->cv);
        pthread_mutex_unlock(&rl->mu);
        pthread_join(rl->thread, NULL);
    }
    s_free_list(rl->queue);
    s_free_list(rl->done);
    pthread_mutex_destroy(&rl->mu);
    pthread_cond_destroy(&rl->cv);
    free(rl);
    *rp = NULL;
}

int releaser_submit(releaser_t *rl, struct release_job *job, size_t queue_max)
{
    struct release_job **tail;

    if (!rl->started) {
        int e = pthread_create(&rl->thread, NULL, s_worker, rl);
        if (e != 0) {
            log_err("release worker not started: %s", strerror(e));
            return -1;
        }
        rl->started = true;
    }
    pthread_mutex_lock(&rl->mu);
    if (rl->nqueue >= queue_max) {
        pthread_mutex_unlock(&rl->mu);
        return -1;
    }
    job->next = NULL;
    for (tail = &rl->queue; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = job;
    rl->nqueue++;
    pthread_cond_signal(&rl->cv);
    pthread_mutex_unlock(&rl->mu);
    return 0;
}

struct release_job *releaser_done(releaser_t *rl)
{
    struct release_job *j;

    pthread_mutex_lock(&rl->mu);
    j = rl->done;
    if (j != NULL) {
        rl->done = j->next;
        j->next = NULL;
    }
    pthread_mutex_unlock(&rl->mu);
    return j;
}

bool releaser_busy(releaser_t *rl, const char *path)
{
    bool busy = false;

    pthread_mutex_lock(&rl->mu);
    if (rl->running != NULL && strcmp(rl->running->path, path) == 0)
        busy = true;
    for (struct release_job *j = rl->queue; j != NULL && !busy; j = j->next)
        busy = strcmp(j->path, path) == 0;
    for (struct release_job *j = rl->done; j != NULL && !busy; j = j->next)
        busy = strcmp(j->path, path) == 0;
    pthread_mutex_unlock(&rl->mu);
    return busy;
}
