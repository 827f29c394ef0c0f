/* scanpool: a fixed set of scan threads fed by a bounded queue. Each job: MIME parse, ClamAV
 * scan (unless av.enabled is off), web-reputation rating of its URLs, policy evaluation with
 * the policy and block-lists in force when the scan started (reference-counted, swapped like
 * the engine), the delivered copy, and the quarantine/archive files. Finished jobs go back
 * to the event loop through a pipe. */
#include "scan/scanpool.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "scan/digest.h"
#include "scan/edit.h"
#include "scan/smartscan.h"
#include "util.h"

#define SCANPOOL_THREADS_MAX 256

struct pool_policy {
    policy_t *p;
    wrs_t *wrs;                 /* the block-lists of the same configuration */
    unsigned refs;              /* the pool's while in force, plus each scan's */
};

struct scanpool {
    struct event_base *base;
    av_t *av;
    av_t *light;                /* smart scan's light pattern; NULL: none */
    char quarantine_dir[STORE_PATH_MAX / 2], archive_dir[STORE_PATH_MAX / 2];
    scanpool_done_fn *done;
    void *done_arg;
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct scan_job *waiting, *waiting_tail;   /* FIFO */
    struct scan_job *finished;                 /* LIFO, reversed on delivery */
    unsigned nwaiting, queue_max, nthreads;
    bool stop;
    struct pool_policy *policy;
    pthread_t threads[SCANPOOL_THREADS_MAX];
    int pipe_rd, pipe_wr;
    struct event *pipe_ev;
};

struct scan_job *scan_job_new(void) { return xcalloc(1, sizeof(struct scan_job)); }

void scan_job_free(struct scan_job **jp)
{
    struct scan_job *j;

    if (jp == NULL || *jp == NULL)
        return;
    j = *jp;
    if (j->body != NULL)
        evbuffer_free(j->body);
    if (j->out != NULL)
        evbuffer_free(j->out);
    free(j->sender);
    for (size_t i = 0; i < j->nrcpts; i++)
        free(j->rcpts[i]);
    free(j->rcpts);
    mime_result_free(&j->mime);
    free(j->digests);
    free(j);
    *jp = NULL;
}

static struct pool_policy *s_policy_acquire(scanpool_t *p)
{
    struct pool_policy *pp;

    pthread_mutex_lock(&p->mu);
    pp = p->policy;
    if (pp != NULL)
        pp->refs++;
    pthread_mutex_unlock(&p->mu);
    return pp;
}

/* Called with p->mu held. */
static void s_policy_unref(struct pool_policy *pp)
{
    if (pp == NULL || --pp->refs > 0)
        return;
    policy_free(&pp->p);
    wrs_free(&pp->wrs);
    free(pp);
}

void scanpool_set_policy(scanpool_t *p, policy_t **pol, wrs_t **wp)
{
    struct pool_policy *pp = xcalloc(1, sizeof *pp), *old;

    pp->p = *pol;
    pp->refs = 1;
    *pol = NULL;
    if (wp != NULL) {
        pp->wrs = *wp;
        *wp = NULL;
    }
    pthread_mutex_lock(&p->mu);
    old = p->policy;
    p->policy = pp;
    s_policy_unref(old);
    pthread_mutex_unlock(&p->mu);
}

/* Quarantine file first (the reply names it), then one per archive area. */
static void s_store(scanpool_t *p, struct scan_job *j)
{
    const struct evbuffer *copy = j->out;
    const char *cdata = j->data;
    size_t clen = j->len;
    char err[512];

    if (copy != NULL) { /* archives get the modified message */
        clen = evbuffer_get_length(j->out);
        cdata = (const char *)evbuffer_pullup(j->out, -1);
    }
    if (j->dec.fate == POLICY_QUARANTINE) {
        if (store_write(p->quarantine_dir, j->dec.quarantine_area, "quarantine", j->data, j->len,
                        j->received_ms, &j->files[j->nfiles], err, sizeof err) != 0)
            goto failed;
        j->nfiles++;
    }
    for (size_t i = 0; i < j->dec.narchives && j->nfiles < SCANPOOL_FILES_MAX; i++) {
        if (store_write(p->archive_dir, j->dec.archives[i], "archive", cdata, clen,
                        j->received_ms, &j->files[j->nfiles], err, sizeof err) != 0)
            goto failed;
        j->nfiles++;
    }
    return;
failed:
    log_err("id=%s store: %s", j->id, err);
    snprintf(j->error, sizeof j->error, "store: %.240s", err);
    j->store_failed = true;
    for (size_t i = 0; i < j->nfiles; i++)
        store_remove(&j->files[i]);
    j->nfiles = 0;
}

/* Smart scan: the SHA-256 of the whole message and of each decoded part, in that order. */
static void s_digests(struct scan_job *j)
{
    size_t cap = 1 + j->mime->nparts;

    if (cap > SMARTSCAN_DIGESTS_MAX)
        cap = SMARTSCAN_DIGESTS_MAX;
    j->digests = xcalloc(cap, sizeof *j->digests);
    digest_sha256(j->data, j->len, j->digests[0]);
    j->ndigests = 1;
    for (size_t i = 0; i < j->mime->nparts && j->ndigests < cap; i++)
        if (j->mime->parts[i].hashed)
            memcpy(j->digests[j->ndigests++], j->mime->parts[i].sha256, 32);
}

/* A decoded part, scanned while GMime holds it: the first virus (or exception) is kept. */
struct part_scan {
    av_t *av;
    av_engine_t *e;
    bool virus;
    unsigned exceptions;
    char name[AV_NAME_MAX];
};

static void s_part_scan(void *arg, const unsigned char *data, size_t len, const char *filename)
{
    struct part_scan *ps = arg;
    struct av_result r;

    (void)filename;
    if (ps->virus || len == 0)
        return;
    av_engine_scan(ps->e, ps->av, data, len, &r);
    if (r.status == AV_VIRUS) {
        ps->virus = true;
        strlcpy_p(ps->name, r.name, sizeof ps->name);
    } else if (r.status == AV_EXCEPTION && ps->exceptions == 0) {
        ps->exceptions = r.exceptions;
        strlcpy_p(ps->name, r.name, sizeof ps->name);
    }
}

/* Smart scan's light pattern (R2.1): a small local engine beside the look-ups. None loaded
 * (missing or empty directory): the look-ups alone decide. Only a virus counts; what the
 * light engine cannot scan is left to the look-ups, not made a scan exception. */
static void s_light_scan(scanpool_t *p, struct scan_job *j)
{
    av_engine_t *e = p->light != NULL ? av_engine_acquire(p->light) : NULL;

    if (e == NULL)
        return;
    av_engine_scan(e, p->light, j->data, j->len, &j->light);
    av_engine_release(p->light, &e);
    j->light_scanned = true;
}

/* Web reputation: the block-lists, then the service's ratings when it answered (R3.2: when
 * it did not, its ratings are skipped and the lists alone count). */
static void s_wrs_rate(const struct pool_policy *pp, struct scan_job *j, struct policy_facts *f)
{
    wrs_rate_urls(pp->wrs, j->mime->urls, j->mime->nurls, &j->wrs);
    if (j->wrs_remote && j->wrs_asked && j->wrs_skipped[0] == '\0')
        wrs_rating_merge(&j->wrs, j->wrs_service.level, j->wrs_service.category,
                         j->wrs_service.url);
    if (j->wrs.level > 0)
        snprintf(j->wrs_detail, sizeof j->wrs_detail, "%u:%s:%s", j->wrs.level,
                 j->wrs.category, j->wrs.url);
    f->wrs_level = j->wrs.level;
    f->wrs_category = j->wrs.level > 0 ? j->wrs.category : NULL;
}

void scanpool_run_job(scanpool_t *p, struct scan_job *j)
{
    struct policy_facts f = { 0 };
    const char *listings[ERS_HITS_MAX];
    struct pool_policy *pp;
    uint64_t t0 = now_ms();

    if (j->parsed)
        goto decide; /* second pass: the loop has the look-up answers */
    if (j->av_enabled) {
        /* Both readings are scanned (issue 11 point 5): the parts as GMime decoded them, from
         * memory, and the whole message through ClamAV's own mail parser. Either hit counts. */
        struct part_scan ps = { .av = p->av, .e = av_engine_acquire(p->av) };
        j->mime = mime_parse_scan(j->data, j->len, &j->mlim, ps.e != NULL ? s_part_scan : NULL,
                                  &ps);
        av_engine_scan(ps.e, p->av, j->data, j->len, &j->av);
        if (ps.e != NULL)
            av_engine_release(p->av, &ps.e);
        if (ps.virus && j->av.status != AV_VIRUS) {
            j->av.status = AV_VIRUS;
            strlcpy_p(j->av.name, ps.name, sizeof j->av.name);
        } else if (j->av.status == AV_CLEAN && ps.exceptions != 0) {
            j->av.status = AV_EXCEPTION;
            strlcpy_p(j->av.name, ps.name, sizeof j->av.name);
        }
        if (j->av.status != AV_VIRUS)
            j->av.exceptions |= ps.exceptions;
    } else {
        j->mime = mime_parse(j->data, j->len, &j->mlim);
        j->av.status = AV_SKIPPED;
    }
    j->exceptions = j->mime->exceptions | j->av.exceptions;
    if (j->smart) {
        s_light_scan(p, j);
        s_digests(j);
    }
    if (j->wrs_remote && j->mime->nurls == 0)
        j->wrs_remote = false; /* nothing to ask about */
    if (j->smart || j->wrs_remote) { /* look-ups run on the loop: no thread waits on them */
        j->parsed = true;
        j->ms_scan = now_ms() - t0;
        return;
    }
decide:
    f.sender = j->sender;
    f.recipients = (const char *const *)j->rcpts;
    f.nrecipients = j->nrcpts;
    f.size = j->len;
    f.virus = j->av.status == AV_VIRUS ? j->av.name : NULL;
    if (j->light_scanned && j->light.status == AV_VIRUS)
        f.virus = j->light.name;
    if (j->smart && j->smart_virus[0] != '\0')
        f.virus = j->smart_virus; /* the "Viruses" rule sees the server's verdict */
    f.spam_enabled = j->spam_on;
    f.exceptions = j->av.exceptions;
    for (size_t i = 0; j->ers_on && i < j->ers.nhits; i++)
        listings[f.ners_listings++] = j->ers.listings[i];
    f.ers_listings = listings;
    mime_facts_fill(j->mime, &f);
    pp = s_policy_acquire(p);
    if (pp != NULL && j->wrs_on)
        s_wrs_rate(pp, j, &f);
    if (pp != NULL) {
        policy_eval(pp->p, &f, &j->dec);
        j->decided = true;
        if (j->dec.floor)
            log_warn("policy floor (R8.9): %s%s%s with no rule delivering it by name: "
                     "quarantined in '%s' (rules matched: %s)",
                     f.virus != NULL ? "virus " : "", f.virus != NULL ? f.virus : "",
                     f.virus == NULL ? "a scan exception" : "", j->dec.quarantine_area,
                     j->dec.matched[0] != '\0' ? j->dec.matched : "none");
        if (j->dec.spam_scored) {
            char score[32];
            policy_score_format(j->dec.spam_score, score, sizeof score);
            snprintf(j->spam_detail, sizeof j->spam_detail, "%s rules=%s", score,
                     j->dec.spam_rules);
        }
        pthread_mutex_lock(&p->mu);
        s_policy_unref(pp);
        pthread_mutex_unlock(&p->mu);
    } else {
        snprintf(j->error, sizeof j->error, "no policy in force");
    }
    if (j->decided) {
        if (j->dec.fate == POLICY_DELIVER || j->dec.narchives > 0)
            j->out = edit_message(j->data, j->len, &j->dec);
        s_store(p, j);
    }
    j->ms_scan += now_ms() - t0;
}

static void *s_thread(void *arg)
{
    scanpool_t *p = arg;
    struct scan_job *j;
    char one = 1;

    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->waiting == NULL && !p->stop)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        j = p->waiting;
        p->waiting = j->next;
        if (p->waiting == NULL)
            p->waiting_tail = NULL;
        p->nwaiting--;
        pthread_mutex_unlock(&p->mu);

        scanpool_run_job(p, j);

        pthread_mutex_lock(&p->mu);
        j->next = p->finished;
        p->finished = j;
        pthread_mutex_unlock(&p->mu);
        /* A full pipe already has a wake-up pending: EAGAIN is fine. */
        if (write(p->pipe_wr, &one, 1) < 0 && errno != EAGAIN)
            log_err("scanpool: wake-up pipe: %s", strerror(errno));
    }
}

static void s_pipe_cb(evutil_socket_t fd, short what, void *arg)
{
    scanpool_t *p = arg;
    struct scan_job *list, *rev = NULL, *j;
    char buf[256];

    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&p->mu);
    list = p->finished;
    p->finished = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list != NULL) { /* oldest first */
        j = list;
        list = j->next;
        j->next = rev;
        rev = j;
    }
    while (rev != NULL) {
        j = rev;
        rev = j->next;
        j->next = NULL;
        p->done(j, p->done_arg);
    }
}

scanpool_t *scanpool_new(struct event_base *base, unsigned nthreads, av_t *av,
                         const char *quarantine_dir, const char *archive_dir,
                         scanpool_done_fn *done, void *arg)
{
    scanpool_t *p = xcalloc(1, sizeof *p);
    pthread_attr_t attr;
    int fds[2];

    if (nthreads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (unsigned)n : 1;
    }
    if (nthreads > SCANPOOL_THREADS_MAX)
        nthreads = SCANPOOL_THREADS_MAX;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        log_err("scanpool: pipe: %s", strerror(errno));
        free(p);
        return NULL;
    }
    p->base = base;
    p->av = av;
    strlcpy_p(p->quarantine_dir, quarantine_dir, sizeof p->quarantine_dir);
    strlcpy_p(p->archive_dir, archive_dir, sizeof p->archive_dir);
    p->done = done;
    p->done_arg = arg;
    p->pipe_rd = fds[0];
    p->pipe_wr = fds[1];
    p->queue_max = nthreads * SCANPOOL_QUEUE_PER_THREAD;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    if (base != NULL) {
        p->pipe_ev = event_new(base, p->pipe_rd, EV_READ | EV_PERSIST, s_pipe_cb, p);
        event_add(p->pipe_ev, NULL);
    }
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, MIME_STACK_BYTES);
    for (unsigned i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], &attr, s_thread, p) != 0) {
            log_err("scanpool: cannot start scan thread %u", i);
            break;
        }
        p->nthreads++;
    }
    pthread_attr_destroy(&attr);
    if (p->nthreads == 0) {
        scanpool_free(&p);
        return NULL;
    }
    log_info("scan threads started threads=%u queue_max=%u", p->nthreads, p->queue_max);
    return p;
}

void scanpool_free(scanpool_t **pp)
{
    scanpool_t *p;
    struct scan_job *j;

    if (pp == NULL || *pp == NULL)
        return;
    p = *pp;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    while ((j = p->waiting) != NULL) {
        p->waiting = j->next;
        scan_job_free(&j);
    }
    while ((j = p->finished) != NULL) {
        p->finished = j->next;
        for (size_t i = 0; i < j->nfiles; i++)
            store_remove(&j->files[i]); /* never acknowledged */
        scan_job_free(&j);
    }
    if (p->pipe_ev != NULL)
        event_free(p->pipe_ev);
    close(p->pipe_rd);
    close(p->pipe_wr);
    s_policy_unref(p->policy);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p);
    *pp = NULL;
}

void scanpool_submit(scanpool_t *p, struct scan_job *j)
{
    pthread_mutex_lock(&p->mu);
    j->next = NULL;
    if (p->waiting_tail != NULL)
        p->waiting_tail->next = j;
    else
        p->waiting = j;
    p->waiting_tail = j;
    p->nwaiting++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

bool scanpool_full(const scanpool_t *p)
{
    scanpool_t *mp = (scanpool_t *)p; /* the mutex, not the pool, changes */
    bool full;

    pthread_mutex_lock(&mp->mu);
    full = p->nwaiting >= p->queue_max;
    pthread_mutex_unlock(&mp->mu);
    return full;
}

unsigned scanpool_threads(const scanpool_t *p) { return p->nthreads; }

void scanpool_set_light(scanpool_t *p, av_t *light) { p->light = light; }
