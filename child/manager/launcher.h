/* launcher: starts the scan service as its own user (R8.1). A manager started as root forks
 * the launcher before it gives up root; the launcher becomes the scan service's user at once
 * (portcullis-scan, group portcullis) and stays that: no process of the child keeps root. The
 * manager, now portcullis, may neither start nor signal a process of another user, so it asks
 * the launcher over a socket pair: start the scan service (this program, "scan", with the
 * manager's arguments and control socket), signal it; the launcher answers with the pid and
 * reports each exit it reaps. The launcher ends with its manager (PR_SET_PDEATHSIG), and the
 * scan service with the launcher. */
#ifndef PORTCULLIS_LAUNCHER_H
#define PORTCULLIS_LAUNCHER_H

#include <stdbool.h>
#include <stdnoreturn.h>
#include <stddef.h>
#include <sys/types.h>

#include "privdrop.h"

#define LAUNCHER_MSG_MAX 16384   /* bytes of one request: the scan service's argv */
#define LAUNCHER_ARGS_MAX 64     /* words of that argv */
#define LAUNCHER_EXITS_MAX 8     /* exits read while waiting for an answer, kept for later */

struct launcher {
    int fd;                      /* the manager's end; -1: none (the manager starts it itself) */
    pid_t pid;                   /* the launcher's own pid */
    struct { pid_t pid; int status; } exits[LAUNCHER_EXITS_MAX];
    size_t nexits;
};

/* Forks the launcher as user (group gid). 0 with l filled, -1 with err. */
int launcher_fork(struct launcher *l, const struct privuser *user, gid_t gid, char *err,
                  size_t errlen);
/* Starts "/proc/self/exe argv[1..]" in the launcher with control_fd as its fd 3; waits for
 * the answer. 0 with *pid, -1 with err. */
int launcher_start(struct launcher *l, int control_fd, char *const argv[], pid_t *pid,
                   char *err, size_t errlen);
/* Has the launcher send sig to pid (one of its own children only). 0 sent, -1 not. */
int launcher_signal(struct launcher *l, pid_t pid, int sig);
/* The next exit the launcher reported (non-blocking): 1 with *pid and *status (a waitpid
 * status), 0 none yet, -1 the launcher is gone. */
int launcher_exit(struct launcher *l, pid_t *pid, int *status);
/* Waits up to timeout_ms for the exit of pid: 1 exited (*status), 0 not yet, -1 gone. */
int launcher_wait(struct launcher *l, pid_t pid, int *status, int timeout_ms);

#endif
