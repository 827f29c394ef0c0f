/* runcmd: see runcmd.h. */
#include "manager/runcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Searched after $PATH: a daemon's PATH often lacks the sbin directories. */
#define RUNCMD_FALLBACK_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define RUNCMD_PATH_MAX 4096

struct runcmd {
    char label[64];
    pid_t pid;            /* 0 once reaped */
    int fd;               /* output pipe, -1 once closed */
    uint64_t started_ms, deadline_ms;
    bool done, timed_out;
    int status;           /* waitpid status */
    char out[RUNCMD_OUTPUT_MAX + 1];
    size_t out_len;
    char result[RUNCMD_RESULT_MAX];
    char output[RUNCMD_OUTPUT_MAX + 64]; /* its lines joined with "; " */
};

/* --- argv --------------------------------------------------------------------------------- */

static bool s_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int runcmd_split(const char *cmd, const char *const *extra, size_t n_extra,
                 struct runcmd_argv *av, char *err, size_t errlen)
{
    const char *p = cmd != NULL ? cmd : "";

    memset(av, 0, sizeof *av);
    for (;;) {
        while (s_space(*p))
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        while (*p != '\0' && !s_space(*p))
            p++;
        if (av->argc == RUNCMD_ARGV_MAX)
            goto too_many;
        av->argv[av->argc++] = xstrndup(start, (size_t)(p - start));
    }
    if (av->argc == 0) {
        snprintf(err, errlen, "empty command");
        return -1;
    }
    for (size_t i = 0; i < n_extra; i++) {
        if (av->argc == RUNCMD_ARGV_MAX)
            goto too_many;
        av->argv[av->argc++] = xstrdup(extra[i]);
    }
    av->argv[av->argc] = NULL;
    return 0;
too_many:
    snprintf(err, errlen, "command has more than %d words", RUNCMD_ARGV_MAX);
    runcmd_argv_free(av);
    return -1;
}

void runcmd_argv_free(struct runcmd_argv *av)
{
    for (int i = 0; i < av->argc; i++)
        free(av->argv[i]);
    memset(av, 0, sizeof *av);
}

static int s_search(const char *dirs, const char *name, char *path, size_t pathlen)
{
    const char *p = dirs;

    while (p != NULL && *p != '\0') {
        const char *colon = strchr(p, ':');
        size_t len = colon != NULL ? (size_t)(colon - p) : strlen(p);
        /* An empty entry means the current directory: never for a daemon. */
        if (len > 0 && (size_t)snprintf(path, pathlen, "%.*s/%s", (int)len, p, name) < pathlen &&
            access(path, X_OK) == 0)
            return 0;
        p = colon != NULL ? colon + 1 : NULL;
    }
    return -1;
}

int runcmd_resolve(const char *argv0, char *path, size_t pathlen)
{
    if (argv0 == NULL || *argv0 == '\0')
        return -1;
    if (strchr(argv0, '/') != NULL) {
        if (strlcpy_p(path, argv0, pathlen) >= pathlen || access(path, X_OK) != 0)
            return -1;
        return 0;
    }
    if (s_search(getenv("PATH"), argv0, path, pathlen) == 0)
        return 0;
    return s_search(RUNCMD_FALLBACK_PATH, argv0, path, pathlen);
}

/* --- running ------------------------------------------------------------------------------ */

runcmd_t *runcmd_start(const char *label, char *const argv[], uint64_t timeout_ms, char *err,
                       size_t errlen)
{
    char path[RUNCMD_PATH_MAX];
    static const char exec_failed[] = "exec failed\n";
    int pfd[2], devnull;
    sigset_t all, old;
    pid_t pid;

    if (runcmd_resolve(argv[0], path, sizeof path) != 0) {
        snprintf(err, errlen, "%s: command not found or not executable", argv[0]);
        return NULL;
    }
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return NULL;
    }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) {
        snprintf(err, errlen, "/dev/null: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return NULL;
    }
    /* No handler of ours may run in the child between fork and exec. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        struct sigaction dfl;
        sigset_t none;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        /* Ignored signals stay ignored across exec: give the command the defaults. */
        for (int s = 1; s < NSIG; s++)
            sigaction(s, &dfl, NULL);
        setpgid(0, 0); /* its own group: a time-out kills what it started too */
        if (dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
            _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(path, argv);
        if (write(2, exec_failed, sizeof exec_failed - 1) < 0)
            _exit(127);
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(pfd[1]);
    close(devnull);
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(pfd[0]);
        return NULL;
    }
    setpgid(pid, pid); /* also here: whichever runs first */
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);

    runcmd_t *r = xcalloc(1, sizeof *r);
    strlcpy_p(r->label, label, sizeof r->label);
    r->pid = pid;
    r->fd = pfd[0];
    r->started_ms = now_ms();
    r->deadline_ms = r->started_ms + timeout_ms;
    log_info("%s: started pid=%ld path=%s", r->label, (long)pid, path);
    return r;
}

static void s_drain(runcmd_t *r)
{
    char buf[4096];

    while (r->fd >= 0) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n > 0) {
            size_t keep = RUNCMD_OUTPUT_MAX - r->out_len;
            if (keep > (size_t)n)
                keep = (size_t)n;
            memcpy(r->out + r->out_len, buf, keep); /* the rest is read and dropped */
            r->out_len += keep;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        close(r->fd); /* EOF or error */
        r->fd = -1;
    }
}

/* The kept output as one line: line breaks become "; ", other control bytes spaces. */
static void s_output_line(const runcmd_t *r, char *out, size_t outlen)
{
    size_t o = 0;
    bool pending_sep = false;

    for (size_t i = 0; i < r->out_len && o + 3 < outlen; i++) {
        unsigned char c = (unsigned char)r->out[i];
        if (c == '\n' || c == '\r') {
            pending_sep = o > 0;
            continue;
        }
        if (pending_sep) {
            out[o++] = ';';
            out[o++] = ' ';
            pending_sep = false;
            if (o + 3 >= outlen)
                break;
        }
        out[o++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

static void s_finish(runcmd_t *r)
{
    char line[RUNCMD_OUTPUT_MAX + 64];
    uint64_t ms = now_ms() - r->started_ms;

    s_drain(r);
    if (r->fd >= 0) { /* something it started still holds the pipe: not our business */
        close(r->fd);
        r->fd = -1;
    }
    r->done = true;
    s_output_line(r, line, sizeof line);
    strlcpy_p(r->output, line, sizeof r->output);
    if (r->timed_out)
        snprintf(r->result, sizeof r->result, "timed out after %llu s%s%s",
                 (unsigned long long)((r->deadline_ms - r->started_ms) / 1000), *line ? ": " : "",
                 line);
    else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0)
        snprintf(r->result, sizeof r->result, "ok");
    else if (WIFEXITED(r->status))
        snprintf(r->result, sizeof r->result, "exit %d%s%s", WEXITSTATUS(r->status),
                 *line ? ": " : "", line);
    else
        snprintf(r->result, sizeof r->result, "killed by signal %d%s%s", WTERMSIG(r->status),
                 *line ? ": " : "", line);
    if (runcmd_ok(r))
        log_info("%s: done pid=%ld ms=%llu", r->label, (long)r->pid, (unsigned long long)ms);
    else
        log_warn("%s: failed pid=%ld ms=%llu: %s", r->label, (long)r->pid,
                 (unsigned long long)ms, r->result);
}

bool runcmd_poll(runcmd_t *r)
{
    int status;

    if (r->done)
        return true;
    s_drain(r);
    if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
        r->status = status;
        s_finish(r);
        return true;
    }
    if (!r->timed_out && now_ms() >= r->deadline_ms) {
        log_warn("%s: pid=%ld still running after %llu ms; killing it", r->label, (long)r->pid,
                 (unsigned long long)(r->deadline_ms - r->started_ms));
        r->timed_out = true;
        kill(-r->pid, SIGKILL);
        kill(r->pid, SIGKILL);
        /* reaped by a later poll: SIGKILL is prompt, and the loop must not wait here */
    }
    return false;
}

bool runcmd_ok(const runcmd_t *r)
{
    return r->done && !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

const char *runcmd_result(const runcmd_t *r) { return r->done ? r->result : "running"; }

const char *runcmd_output(const runcmd_t *r) { return r->done ? r->output : ""; }

pid_t runcmd_pid(const runcmd_t *r) { return r->pid; }

void runcmd_destroy(runcmd_t **rp)
{
    runcmd_t *r;
    int status;

    if (rp == NULL || *rp == NULL)
        return;
    r = *rp;
    if (!r->done) {
        kill(-r->pid, SIGKILL);
        kill(r->pid, SIGKILL);
        while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
            ;
        log_warn("%s: pid=%ld killed: the manager is stopping", r->label, (long)r->pid);
    }
    if (r->fd >= 0)
        close(r->fd);
    free(r);
    *rp = NULL;
}
