/* av: libclamav behind a reference-counted engine pointer. Scan threads take a reference for
 * the length of one scan; a reload builds a whole new engine in its own thread (the old one
 * keeps scanning meanwhile), swaps the pointer under the mutex and drops the old engine's
 * reference; the last scan to let go frees it. Nothing waits for a reload (R0.4, R1.4).
 * The scan service has two holders: the full pattern set (conventional scan) and smart scan's
 * small light pattern (R2.1, av_new_optional), each with its own directory, watch and engine. */
#include "scan/av.h"

#include <clamav.h>
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "policy.h"
#include "util.h"

struct av_engine {
    struct cl_engine *cl;
    unsigned refs;              /* the av's own reference while in force, plus each scan's */
    unsigned sigs;
    char version[128];
};

struct av {
    char dir[PATH_MAX];
    const char *what, *what1;   /* in logs: "signatures"/"signature", "light pattern" (both) */
    bool optional;              /* no engine is a normal state, said once (said_none) */
    bool said_none;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    struct av_engine *cur;      /* NULL: none loaded */
    struct av_limits lim;
    bool loading, again, thread_started;
    char reason[32];            /* of the reload asked for last */
    pthread_t thread;
    uint64_t loads, swaps;
    int ifd;                    /* inotify */
    struct event *iev, *debounce;
};

static atomic_uint s_live;

/* What one scan saw: libclamav reports deferred heuristic alerts (limits exceeded, …) through
 * the virus-found callback and not always through the scan's virname. */
struct scan_ctx {
    char name[AV_NAME_MAX];
};

static void s_virus_found_cb(int fd, const char *virname, void *context)
{
    struct scan_ctx *c = context;

    (void)fd;
    if (c == NULL || virname == NULL)
        return;
    /* a real detection wins over a heuristic one */
    if (c->name[0] == '\0' ||
        (strncmp(c->name, "Heuristics.", 11) == 0 && strncmp(virname, "Heuristics.", 11) != 0))
        strlcpy_p(c->name, virname, sizeof c->name);
}

static void s_clamav_msg(enum cl_msg severity, const char *fullmsg, const char *msg, void *ctx)
{
    (void)fullmsg;
    (void)ctx;
    if (severity == CL_MSG_ERROR)
        log_warn("clamav: %.*s", (int)strcspn(msg, "\n"), msg);
    else
        log_debug("clamav: %.*s", (int)strcspn(msg, "\n"), msg);
}

int av_init(void)
{
    cl_error_t r = cl_init(CL_INIT_DEFAULT);

    if (r != CL_SUCCESS) {
        log_err("clamav: cl_init: %s", cl_strerror(r));
        return -1;
    }
    cl_set_clcb_msg(s_clamav_msg);
    return 0;
}

static void s_engine_unref(struct av_engine *e)
{
    if (e == NULL || --e->refs > 0)
        return;
    cl_engine_free(e->cl);
    free(e);
    atomic_fetch_sub(&s_live, 1);
}

/* A new engine from dir with lim; NULL with err filled. No lock held: takes seconds. */
static struct av_engine *s_engine_build(const char *dir, const struct av_limits *lim,
                                        char *err, size_t errlen)
{
    char real[PATH_MAX];
    struct av_engine *e;
    struct cl_engine *cl = cl_engine_new();
    unsigned sigs = 0;
    cl_error_t r;
    time_t now = time(NULL);
    struct tm tm;
    char ts[32];

    if (cl == NULL) {
        snprintf(err, errlen, "cl_engine_new failed");
        return NULL;
    }
    if ((r = cl_engine_set_num(cl, CL_ENGINE_MAX_FILESIZE, lim->max_file_size)) != CL_SUCCESS ||
        (r = cl_engine_set_num(cl, CL_ENGINE_MAX_SCANSIZE, lim->max_scan_size)) != CL_SUCCESS ||
        (r = cl_engine_set_num(cl, CL_ENGINE_MAX_RECURSION, lim->max_recursion)) != CL_SUCCESS ||
        (r = cl_engine_set_num(cl, CL_ENGINE_MAX_FILES, lim->max_files)) != CL_SUCCESS ||
        (r = cl_engine_set_num(cl, CL_ENGINE_MAX_SCANTIME, lim->scan_timeout_ms)) != CL_SUCCESS ||
        /* Resolved once: a component update swaps a directory symlink, and a load must read
         * every file from one directory, never half from the old and half from the new. */
        (r = realpath(dir, real) != NULL ? CL_SUCCESS : CL_EOPEN) != CL_SUCCESS ||
        (r = cl_load(real, cl, &sigs, CL_DB_STDOPT)) != CL_SUCCESS ||
        (r = cl_engine_compile(cl)) != CL_SUCCESS) {
        snprintf(err, errlen, "%s", cl_strerror(r));
        cl_engine_free(cl);
        return NULL;
    }
    if (sigs == 0) {
        snprintf(err, errlen, "no signatures in %.400s", dir);
        cl_engine_free(cl);
        return NULL;
    }
    cl_engine_set_clcb_virus_found(cl, s_virus_found_cb);
    e = xcalloc(1, sizeof *e);
    e->cl = cl;
    e->refs = 1;
    e->sigs = sigs;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(e->version, sizeof e->version, "sigs=%u loaded=%s", sigs, ts);
    atomic_fetch_add(&s_live, 1);
    return e;
}

/* Builds an engine and puts it in force; the old one goes when its last scan ends. */
static int s_load(av_t *av, const char *reason)
{
    struct av_engine *e, *old;
    struct av_limits lim;
    uint64_t t0 = now_ms(), swaps;
    char err[512];

    pthread_mutex_lock(&av->mu);
    lim = av->lim;
    pthread_mutex_unlock(&av->mu);
    e = s_engine_build(av->dir, &lim, err, sizeof err);
    if (e == NULL) {
        bool say;
        pthread_mutex_lock(&av->mu);
        old = av->cur;
        say = !av->said_none;
        av->said_none = true;
        pthread_mutex_unlock(&av->mu);
        if (old == NULL && av->optional && say)
            log_info("%s not loaded dir=%s reason=%s: %s: smart scan uses look-ups only until "
                     "it is", av->what, av->dir, reason, err);
        else if (old == NULL && av->optional)
            log_debug("%s not loaded dir=%s reason=%s: %s", av->what, av->dir, reason, err);
        else if (old == NULL)
            log_warn("signatures not loaded dir=%s reason=%s: %s: virus scanning unavailable "
                     "(av_error exceptions while av.enabled)", av->dir, reason, err);
        else
            log_err("%s not loaded dir=%s reason=%s: %s: keeping %s", av->what, av->dir, reason,
                    err, old->version);
        return -1;
    }
    pthread_mutex_lock(&av->mu);
    old = av->cur;
    av->cur = e;
    av->said_none = false;
    if (av->loads++ > 0)
        av->swaps++;
    swaps = av->swaps;
    s_engine_unref(old);
    pthread_mutex_unlock(&av->mu);
    log_info("%s loaded sigs=%u dir=%s ms=%llu swaps=%llu", av->what, e->sigs, av->dir,
             (unsigned long long)(now_ms() - t0), (unsigned long long)swaps);
    return 0;
}

static void *s_reload_thread(void *arg)
{
    av_t *av = arg;

    char reason[sizeof av->reason];

    pthread_mutex_lock(&av->mu);
    while (av->again) {
        av->again = false;
        memcpy(reason, av->reason, sizeof reason);
        pthread_mutex_unlock(&av->mu);
        s_load(av, reason);
        pthread_mutex_lock(&av->mu);
    }
    av->loading = false;
    pthread_cond_broadcast(&av->idle);
    pthread_mutex_unlock(&av->mu);
    return NULL;
}

void av_reload(av_t *av, const char *reason)
{
    pthread_mutex_lock(&av->mu);
    av->again = true;
    strlcpy_p(av->reason, reason, sizeof av->reason);
    if (av->loading) { /* the running load picks it up when it ends */
        pthread_mutex_unlock(&av->mu);
        log_info("%s reload queued reason=%s", av->what1, reason);
        return;
    }
    if (av->thread_started)
        pthread_join(av->thread, NULL); /* finished: loading is false */
    av->loading = true;
    av->thread_started = pthread_create(&av->thread, NULL, s_reload_thread, av) == 0;
    if (!av->thread_started) {
        av->loading = av->again = false;
        log_err("%s reload reason=%s: cannot start a thread", av->what1, reason);
    } else {
        log_info("%s reload started reason=%s", av->what1, reason);
    }
    pthread_mutex_unlock(&av->mu);
}

void av_wait_idle(av_t *av)
{
    pthread_mutex_lock(&av->mu);
    while (av->loading)
        pthread_cond_wait(&av->idle, &av->mu);
    pthread_mutex_unlock(&av->mu);
}

static av_t *s_new(const char *dir, const struct av_limits *lim, const char *what,
                   const char *what1, bool optional)
{
    av_t *av = xcalloc(1, sizeof *av);

    strlcpy_p(av->dir, dir, sizeof av->dir);
    av->what = what;
    av->what1 = what1;
    av->optional = optional;
    pthread_mutex_init(&av->mu, NULL);
    pthread_cond_init(&av->idle, NULL);
    av->lim = *lim;
    av->ifd = -1;
    s_load(av, "start");
    return av;
}

av_t *av_new(const char *dir, const struct av_limits *lim)
{
    return s_new(dir, lim, "signatures", "signature", false);
}

av_t *av_new_optional(const char *what, const char *dir, const struct av_limits *lim)
{
    return s_new(dir, lim, what, what, true);
}

void av_free(av_t **ap)
{
    av_t *av;

    if (ap == NULL || *ap == NULL)
        return;
    av = *ap;
    if (av->debounce != NULL)
        event_free(av->debounce);
    if (av->iev != NULL)
        event_free(av->iev);
    if (av->ifd >= 0)
        close(av->ifd);
    av_wait_idle(av);
    if (av->thread_started)
        pthread_join(av->thread, NULL);
    s_engine_unref(av->cur); /* scans holding it must have ended (the pool is gone first) */
    pthread_cond_destroy(&av->idle);
    pthread_mutex_destroy(&av->mu);
    free(av);
    *ap = NULL;
}

void av_set_limits(av_t *av, const struct av_limits *lim)
{
    bool changed;

    pthread_mutex_lock(&av->mu);
    changed = memcmp(&av->lim, lim, sizeof *lim) != 0;
    av->lim = *lim;
    pthread_mutex_unlock(&av->mu);
    if (changed)
        av_reload(av, "limits");
}

static void s_debounce_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    av_reload(arg, "inotify");
}

static void s_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
    av_t *av = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct timeval tv = { 0, AV_DEBOUNCE_MS * 1000 };
    bool any = false;

    (void)what;
    for (int i = 0; i < 64; i++) { /* bounded: the rest waits for the next callback */
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        any = true;
    }
    if (any)
        evtimer_add(av->debounce, &tv); /* re-adding restarts the quiet period */
}

int av_watch(av_t *av, struct event_base *base)
{
    char err[256];

    if (fs_mkdir_p(av->dir, 0755, err, sizeof err) != 0)
        log_warn("%s directory: %s", av->what1, err);
    av->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (av->ifd < 0 ||
        inotify_add_watch(av->ifd, av->dir,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                              IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
        log_warn("%s directory %s not watched (%s): reload with the manager's command",
                 av->what1, av->dir, strerror(errno));
        if (av->ifd >= 0)
            close(av->ifd);
        av->ifd = -1;
        return -1;
    }
    av->iev = event_new(base, av->ifd, EV_READ | EV_PERSIST, s_inotify_cb, av);
    av->debounce = evtimer_new(base, s_debounce_cb, av);
    event_add(av->iev, NULL);
    return 0;
}

av_engine_t *av_engine_acquire(av_t *av)
{
    av_engine_t *e;

    pthread_mutex_lock(&av->mu);
    e = av->cur;
    if (e != NULL)
        e->refs++;
    pthread_mutex_unlock(&av->mu);
    return e;
}

void av_engine_release(av_t *av, av_engine_t **ep)
{
    if (ep == NULL || *ep == NULL)
        return;
    pthread_mutex_lock(&av->mu);
    s_engine_unref(*ep);
    pthread_mutex_unlock(&av->mu);
    *ep = NULL;
}

static void s_exception(struct av_result *out, unsigned bit, const char *what)
{
    out->status = AV_EXCEPTION;
    out->exceptions |= bit;
    strlcpy_p(out->name, what, sizeof out->name);
}

void av_engine_scan(av_engine_t *e, const av_t *av, const void *data, size_t len,
                    struct av_result *out)
{
    struct cl_scan_options opts = { 0 };
    struct scan_ctx ctx = { .name = "" };
    const char *virname = NULL;
    unsigned long scanned = 0;
    cl_fmap_t *map;
    cl_error_t r;

    (void)av;
    memset(out, 0, sizeof *out);
    if (e == NULL) {
        s_exception(out, POLICY_EXC_AV_ERROR, "no signatures loaded");
        return;
    }
    map = cl_fmap_open_memory(len > 0 ? data : "", len);
    if (map == NULL) {
        s_exception(out, POLICY_EXC_AV_ERROR, "cl_fmap_open_memory failed");
        return;
    }
    opts.general = CL_SCAN_GENERAL_HEURISTICS;
    opts.parse = ~0u;
    opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX | CL_SCAN_HEURISTIC_ENCRYPTED_ARCHIVE |
                     CL_SCAN_HEURISTIC_ENCRYPTED_DOC;
    r = cl_scanmap_callback(map, NULL, &virname, &scanned, e->cl, &opts, &ctx);
    cl_fmap_close(map);
    if (r == CL_VIRUS && (virname == NULL || strncmp(virname, "Heuristics.", 11) == 0) &&
        ctx.name[0] != '\0')
        virname = ctx.name;
    if (r == CL_CLEAN) {
        out->status = AV_CLEAN;
    } else if (r == CL_VIRUS) {
        if (virname == NULL)
            virname = "Unnamed.Detection"; /* detected all the same: never passed as clean */
        if (strstr(virname, "MaxScanTime") != NULL)
            s_exception(out, POLICY_EXC_AV_TIMEOUT, virname);
        else if (strncmp(virname, "Heuristics.Limits.Exceeded", 26) == 0)
            s_exception(out, POLICY_EXC_AV_LIMITS, virname);
        else if (strncmp(virname, "Heuristics.Encrypted", 20) == 0)
            s_exception(out, POLICY_EXC_AV_ENCRYPTED, virname);
        else {
            out->status = AV_VIRUS;
            strlcpy_p(out->name, virname, sizeof out->name);
        }
    } else if (r == CL_ETIMEOUT) {
        s_exception(out, POLICY_EXC_AV_TIMEOUT, cl_strerror(r));
    } else {
        s_exception(out, POLICY_EXC_AV_ERROR, cl_strerror(r));
    }
}

void av_scan(av_t *av, const void *data, size_t len, struct av_result *out)
{
    av_engine_t *e = av != NULL ? av_engine_acquire(av) : NULL;

    av_engine_scan(e, av, data, len, out);
    if (e != NULL)
        av_engine_release(av, &e);
}

void av_get_info(av_t *av, struct av_info *out)
{
    memset(out, 0, sizeof *out);
    if (av == NULL) {
        strlcpy_p(out->version, "none", sizeof out->version);
        return;
    }
    pthread_mutex_lock(&av->mu);
    out->loaded = av->cur != NULL;
    out->sigs = av->cur != NULL ? av->cur->sigs : 0;
    out->swaps = av->swaps;
    strlcpy_p(out->version, av->cur != NULL ? av->cur->version : "none", sizeof out->version);
    pthread_mutex_unlock(&av->mu);
}

unsigned av_engines_live(void) { return atomic_load(&s_live); }
