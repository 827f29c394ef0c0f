/* launcher: see launcher.h. Requests and answers are single SOCK_SEQPACKET messages: a fixed
 * header, and for a start the argv words NUL-separated plus the control socket as SCM_RIGHTS. */
#include "manager/launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LAUNCHER_CONTROL_FD 3
#define LAUNCHER_ANSWER_MS 5000
#define LAUNCHER_CHILDREN_MAX 8

enum { L_START = 1, L_SIGNAL, L_STARTED, L_FAILED, L_EXITED };

struct lmsg {
    uint32_t type;
    int32_t pid;
    int32_t value;   /* signal, errno or waitpid status */
};

static int s_send(int fd, const struct lmsg *m, const char *extra, size_t extralen, int pass_fd)
{
    struct iovec iov[2] = { { (void *)m, sizeof *m }, { (void *)extra, extralen } };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } cm;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = extralen > 0 ? 2 : 1 };

    if (pass_fd >= 0) {
        struct cmsghdr *c;
        memset(&cm, 0, sizeof cm);
        mh.msg_control = cm.buf;
        mh.msg_controllen = sizeof cm.buf;
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    while (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

/* One message: its length (0: the peer is gone), -1 error/none; *passed the fd it carried. */
static ssize_t s_recv(int fd, struct lmsg *m, char *extra, size_t extracap, int *passed,
                      int flags)
{
    char buf[sizeof *m + LAUNCHER_MSG_MAX];
    struct iovec iov = { buf, sizeof buf };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } cm;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
                         .msg_controllen = sizeof cm.buf };
    ssize_t n;

    if (passed != NULL)
        *passed = -1;
    while ((n = recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int got;
            memcpy(&got, CMSG_DATA(c), sizeof got);
            if (passed != NULL && *passed < 0)
                *passed = got;
            else
                close(got);
        }
    if ((size_t)n < sizeof *m || (mh.msg_flags & MSG_TRUNC)) {
        errno = EPROTO;
        return -1;
    }
    memcpy(m, buf, sizeof *m);
    if (extra != NULL && extracap > 0) {
        size_t el = (size_t)n - sizeof *m;
        if (el >= extracap)
            el = extracap - 1;
        memcpy(extra, buf + sizeof *m, el);
        extra[el] = '\0';
        return (ssize_t)(sizeof *m + el);
    }
    return n;
}

/* --- the launcher process ---------------------------------------------------------------- */

static int s_chld[2] = { -1, -1 };

static void s_on_chld(int sig)
{
    int e = errno;
    (void)sig;
    if (write(s_chld[1], "c", 1) < 0) {
        /* the pipe is full: a wake-up is pending anyway */
    }
    errno = e;
}

static void s_child_start(int sock, int ctl, char *words, size_t len, pid_t *kids)
{
    char *argv[LAUNCHER_ARGS_MAX + 1];
    size_t argc = 0;
    struct lmsg a = { .type = L_FAILED };
    pid_t pid;

    for (char *p = words; p < words + len && argc < LAUNCHER_ARGS_MAX; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    if (ctl < 0 || argc < 2 || strcmp(argv[1], "scan") != 0) { /* only the scan service */
        a.value = EINVAL;
        s_send(sock, &a, NULL, 0, -1);
        if (ctl >= 0)
            close(ctl);
        return;
    }
    pid = fork();
    if (pid == 0) {
        sigset_t none;
        if (dup2(ctl, LAUNCHER_CONTROL_FD) < 0)
            _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGCHLD, SIG_DFL);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(ctl);
    if (pid < 0) {
        a.value = errno;
        s_send(sock, &a, NULL, 0, -1);
        return;
    }
    for (size_t i = 0; i < LAUNCHER_CHILDREN_MAX; i++)
        if (kids[i] == 0) {
            kids[i] = pid;
            break;
        }
    a.type = L_STARTED;
    a.pid = pid;
    s_send(sock, &a, NULL, 0, -1);
}

static noreturn void s_launcher_main(int sock, pid_t manager)
{
    pid_t kids[LAUNCHER_CHILDREN_MAX] = { 0 };
    static char words[LAUNCHER_MSG_MAX];
    struct sigaction sa;

    prctl(PR_SET_NAME, "pc-launcher", 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != manager)
        _exit(0); /* the manager is already gone */
    if (pipe2(s_chld, O_NONBLOCK | O_CLOEXEC) != 0)
        _exit(1);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_chld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        struct pollfd pf[2] = { { sock, POLLIN, 0 }, { s_chld[0], POLLIN, 0 } };
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            _exit(1);
        if (pf[1].revents & POLLIN) {
            char c;
            int st;
            pid_t p;
            while (read(s_chld[0], &c, 1) == 1)
                ;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
                struct lmsg e = { .type = L_EXITED, .pid = p, .value = st };
                for (size_t i = 0; i < LAUNCHER_CHILDREN_MAX; i++)
                    if (kids[i] == p)
                        kids[i] = 0;
                s_send(sock, &e, NULL, 0, -1);
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            struct lmsg m;
            int ctl;
            ssize_t n = s_recv(sock, &m, words, sizeof words, &ctl, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                for (size_t i = 0; i < LAUNCHER_CHILDREN_MAX; i++)
                    if (kids[i] != 0)
                        kill(kids[i], SIGTERM); /* the manager is gone: so is the service */
                _exit(0);
            }
            if (n < 0)
                continue;
            if (m.type == L_START) {
                s_child_start(sock, ctl, words, (size_t)n - sizeof m, kids);
            } else {
                if (ctl >= 0)
                    close(ctl);
                if (m.type == L_SIGNAL && m.pid > 0)
                    for (size_t i = 0; i < LAUNCHER_CHILDREN_MAX; i++)
                        if (kids[i] == m.pid) /* its own children only */
                            kill(m.pid, m.value);
            }
        }
    }
}

int launcher_fork(struct launcher *l, const struct privuser *user, gid_t gid, char *err,
                  size_t errlen)
{
    int sv[2];
    pid_t manager = getpid(), pid;

    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "launcher: socketpair: %s", strerror(errno));
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "launcher: fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        char why[256];
        close(sv[0]);
        if (privdrop_to(user, gid, why, sizeof why) != 0) {
            fprintf(stderr, "portcullis-child: launcher: %s\n", why);
            _exit(1);
        }
        s_launcher_main(sv[1], manager);
    }
    close(sv[1]);
    l->fd = sv[0];
    l->pid = pid;
    return 0;
}

static void s_keep_exit(struct launcher *l, const struct lmsg *m)
{
    if (l->nexits < LAUNCHER_EXITS_MAX) {
        l->exits[l->nexits].pid = m->pid;
        l->exits[l->nexits].status = m->value;
        l->nexits++;
    } else {
        log_err("launcher: exit of pid %ld not kept (queue full)", (long)m->pid);
    }
}

int launcher_start(struct launcher *l, int control_fd, char *const argv[], pid_t *pid,
                   char *err, size_t errlen)
{
    char words[LAUNCHER_MSG_MAX];
    size_t len = 0;
    struct lmsg m = { .type = L_START };
    uint64_t until = now_ms() + LAUNCHER_ANSWER_MS;

    for (size_t i = 0; argv[i] != NULL; i++) {
        size_t n = strlen(argv[i]) + 1;
        if (i >= LAUNCHER_ARGS_MAX || len + n > sizeof words) {
            snprintf(err, errlen, "launcher: the scan service's arguments are too long");
            return -1;
        }
        memcpy(words + len, argv[i], n);
        len += n;
    }
    if (s_send(l->fd, &m, words, len, control_fd) != 0) {
        snprintf(err, errlen, "launcher: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        struct pollfd pf = { l->fd, POLLIN, 0 };
        uint64_t now = now_ms();
        struct lmsg a;
        ssize_t n;

        if (now >= until || poll(&pf, 1, (int)(until - now)) <= 0) {
            snprintf(err, errlen, "launcher: no answer");
            return -1;
        }
        n = s_recv(l->fd, &a, NULL, 0, NULL, MSG_DONTWAIT);
        if (n == 0) {
            snprintf(err, errlen, "launcher: gone");
            return -1;
        }
        if (n < 0)
            continue;
        if (a.type == L_EXITED) {
            s_keep_exit(l, &a);
        } else if (a.type == L_STARTED) {
            *pid = a.pid;
            return 0;
        } else if (a.type == L_FAILED) {
            snprintf(err, errlen, "launcher: %s", strerror(a.value));
            return -1;
        }
    }
}

int launcher_signal(struct launcher *l, pid_t pid, int sig)
{
    struct lmsg m = { .type = L_SIGNAL, .pid = pid, .value = sig };

    return s_send(l->fd, &m, NULL, 0, -1);
}

int launcher_exit(struct launcher *l, pid_t *pid, int *status)
{
    struct lmsg a;
    ssize_t n;

    for (;;) {
        if (l->nexits > 0) {
            *pid = l->exits[0].pid;
            *status = l->exits[0].status;
            memmove(&l->exits[0], &l->exits[1], (l->nexits - 1) * sizeof l->exits[0]);
            l->nexits--;
            return 1;
        }
        n = s_recv(l->fd, &a, NULL, 0, NULL, MSG_DONTWAIT);
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        if (a.type == L_EXITED)
            s_keep_exit(l, &a);
    }
}

int launcher_wait(struct launcher *l, pid_t pid, int *status, int timeout_ms)
{
    uint64_t until = now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        pid_t p;
        int st, r = launcher_exit(l, &p, &st);
        uint64_t now;
        if (r < 0)
            return -1;
        if (r > 0 && p == pid) {
            *status = st;
            return 1;
        }
        if (r > 0)
            continue; /* another (earlier) child's exit: not ours to wait for */
        now = now_ms();
        if (now >= until)
            return 0;
        struct pollfd pf = { l->fd, POLLIN, 0 };
        poll(&pf, 1, (int)(until - now));
    }
}
