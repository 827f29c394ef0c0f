/* scan_proc: see scan_proc.h. The scan service is this same binary run as
 * "portcullis-child scan …" so that one package holds both processes. */
#include "manager/scan_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define SCAN_PROC_CONTROL_FD 3
#define SCAN_PROC_SEND_TIMEOUT_MS 1000

void scan_proc_init(struct scan_proc *sp)
{
    sp->pid = 0;
    sp->fd = -1;
    sp->backoff_ms = SCAN_PROC_BACKOFF_MIN_MS;
    sp->next_start_ms = 0;
    sp->restarts = 0;
    sp->stats = NULL;
    frame_reader_init(&sp->rd, FRAME_MAX);
}

const char *scan_proc_state(const struct scan_proc *sp)
{
    if (sp->pid == 0)
        return "stopped";
    return sp->stats != NULL ? "running" : "starting";
}

int scan_proc_start(struct scan_proc *sp)
{
    int sv[2];
    pid_t pid;

    if (sp->pid != 0 || now_ms() < sp->next_start_ms)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_err("scan service not started: socketpair: %s", strerror(errno));
        sp->next_start_ms = now_ms() + sp->backoff_ms;
        return -1;
    }
    char *argv[] = { "portcullis-child", "scan", "--listen", (char *)sp->listen,
                         "--downstream", (char *)sp->downstream, "--config", (char *)sp->config_path,
                         "--hostname", (char *)sp->hostname, "--log-level", (char *)sp->log_level,
                         "--spool", (char *)sp->spool_dir,
                         "--signatures", (char *)sp->signature_dir,
                         "--light-signatures", (char *)(sp->light_signature_dir != NULL
                                                        ? sp->light_signature_dir : ""),
                         "--quarantine-dir", (char *)sp->quarantine_dir,
                         "--archive-dir", (char *)sp->archive_dir,
                         "--dns-server", (char *)(sp->dns_server != NULL ? sp->dns_server : ""),
                         "--control-fd", "3", NULL };
    if (sp->launcher != NULL) {
        char err[256];
        if (launcher_start(sp->launcher, sv[1], argv, &pid, err, sizeof err) != 0) {
            log_err("scan service not started: %s", err);
            close(sv[0]);
            close(sv[1]);
            sp->next_start_ms = now_ms() + sp->backoff_ms;
            return -1;
        }
    } else {
        pid = fork();
        if (pid < 0) {
            log_err("scan service not started: fork: %s", strerror(errno));
            close(sv[0]);
            close(sv[1]);
            sp->next_start_ms = now_ms() + sp->backoff_ms;
            return -1;
        }
        if (pid == 0) {
            sigset_t none;
            /* dup2 clears FD_CLOEXEC on the copy, so only the control socket crosses exec. */
            if (dup2(sv[1], SCAN_PROC_CONTROL_FD) < 0)
                _exit(127);
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            execv("/proc/self/exe", argv);
            fprintf(stderr, "portcullis-child: exec of the scan service failed: %s\n",
                    strerror(errno));
            _exit(127);
        }
    }
    close(sv[1]);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    sp->fd = sv[0];
    sp->pid = pid;
    sp->started_ms = now_ms();
    frame_reader_free(&sp->rd);
    frame_reader_init(&sp->rd, FRAME_MAX);
    if (sp->stats != NULL) {
        portcullis__scan_stats__free_unpacked(sp->stats, NULL);
        sp->stats = NULL;
    }
    log_info("scan service starting pid=%ld listen=%s downstream=%s", (long)pid, sp->listen,
             sp->downstream);
    return 0;
}

static void s_close_fd(struct scan_proc *sp)
{
    if (sp->fd >= 0)
        close(sp->fd);
    sp->fd = -1;
}

bool scan_proc_reap(struct scan_proc *sp)
{
    int status;
    pid_t r;

    if (sp->pid == 0)
        return false;
    if (sp->launcher != NULL) {
        pid_t p;
        int lr;
        r = 0;
        while (r != sp->pid && (lr = launcher_exit(sp->launcher, &p, &status)) != 0) {
            if (lr < 0)
                fatal("the scan service's launcher is gone; the manager stops (its supervisor "
                      "restarts it)");
            r = p;
        }
    } else {
        r = waitpid(sp->pid, &status, WNOHANG);
    }
    if (r != sp->pid)
        return false;
    sp->exit_status = status;
    uint64_t ran = now_ms() - sp->started_ms;
    if (WIFSIGNALED(status))
        log_err("scan service stopped pid=%ld signal=%d ran_ms=%llu", (long)sp->pid,
                WTERMSIG(status), (unsigned long long)ran);
    else
        log_warn("scan service stopped pid=%ld status=%d ran_ms=%llu", (long)sp->pid,
                 WEXITSTATUS(status), (unsigned long long)ran);
    sp->pid = 0;
    s_close_fd(sp);
    if (ran >= SCAN_PROC_STABLE_MS)
        sp->backoff_ms = SCAN_PROC_BACKOFF_MIN_MS;
    sp->next_start_ms = now_ms() + sp->backoff_ms;
    log_info("scan service restart in %u ms", sp->backoff_ms);
    sp->backoff_ms = sp->backoff_ms * 2 > SCAN_PROC_BACKOFF_MAX_MS ? SCAN_PROC_BACKOFF_MAX_MS
                                                                   : sp->backoff_ms * 2;
    sp->restarts++;
    return true;
}

int scan_proc_send(struct scan_proc *sp, const envelope_t *env)
{
    if (sp->fd < 0)
        return -1;
    if (wire_send_fd(sp->fd, env, SCAN_PROC_SEND_TIMEOUT_MS) != 0) {
        log_err("scan service control write failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}

envelope_t *scan_proc_read(struct scan_proc *sp)
{
    const uint8_t *frame;
    size_t len;
    int r;

    for (;;) {
        r = frame_reader_next(&sp->rd, &frame, &len);
        if (r > 0) {
            envelope_t *env = wire_unpack(frame, len);
            if (env == NULL)
                log_warn("scan service sent an undecodable frame of %zu bytes; dropped", len);
            return env;
        }
        if (r < 0) {
            log_err("scan service sent an oversize frame; closing its control socket");
            s_close_fd(sp);
            return NULL;
        }
        if (sp->fd < 0)
            return NULL;
        uint8_t buf[16384];
        ssize_t n = read(sp->fd, buf, sizeof buf);
        if (n > 0) {
            frame_reader_push(&sp->rd, buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return NULL;
        s_close_fd(sp); /* EOF: it is exiting; SIGCHLD follows */
        return NULL;
    }
}

void scan_proc_stop(struct scan_proc *sp)
{
    uint64_t deadline;
    int status;

    if (sp->pid == 0)
        return;
    log_info("stopping scan service pid=%ld", (long)sp->pid);
    scan_proc_kill(sp, SIGTERM);
    deadline = now_ms() + SCAN_PROC_STOP_MS;
    if (sp->launcher != NULL) {
        if (launcher_wait(sp->launcher, sp->pid, &status, SCAN_PROC_STOP_MS) != 0)
            sp->pid = 0;
        deadline = 0;
    }
    while (now_ms() < deadline) {
        if (waitpid(sp->pid, &status, WNOHANG) == sp->pid) {
            sp->pid = 0;
            break;
        }
        usleep(20 * 1000); /* polling a child's exit: no fd to wait on here */
    }
    if (sp->pid != 0) {
        log_err("scan service pid=%ld did not stop in %d ms; killing it", (long)sp->pid,
                SCAN_PROC_STOP_MS);
        scan_proc_kill(sp, SIGKILL);
        if (sp->launcher != NULL)
            launcher_wait(sp->launcher, sp->pid, &status, SCAN_PROC_STOP_MS);
        else
            waitpid(sp->pid, &status, 0);
        sp->pid = 0;
    }
    s_close_fd(sp);
    frame_reader_free(&sp->rd);
    if (sp->stats != NULL) {
        portcullis__scan_stats__free_unpacked(sp->stats, NULL);
        sp->stats = NULL;
    }
}

void scan_proc_kill(struct scan_proc *sp, int sig)
{
    if (sp->pid == 0)
        return;
    if (sp->launcher != NULL)
        launcher_signal(sp->launcher, sp->pid, sig);
    else
        kill(sp->pid, sig);
}
