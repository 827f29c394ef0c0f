/* scan_proc: the scan service as seen by its manager: start (fork + exec of this binary with
 * "scan"), a framed socket pair for control, reaping, restart with backoff, and stop. */
#ifndef PORTCULLIS_SCAN_PROC_H
#define PORTCULLIS_SCAN_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "frame.h"
#include "manager/launcher.h"
#include "wire.h"

#define SCAN_PROC_BACKOFF_MIN_MS 1000
#define SCAN_PROC_BACKOFF_MAX_MS 32000
#define SCAN_PROC_STABLE_MS 10000   /* a run this long resets the backoff */
#define SCAN_PROC_STOP_MS 25000     /* SIGTERM grace before SIGKILL (in-flight mail finishes) */

struct scan_proc {
    /* what to run */
    const char *listen, *downstream, *config_path, *hostname, *log_level, *spool_dir;
    const char *signature_dir, *quarantine_dir, *archive_dir;
    const char *light_signature_dir; /* smart scan's light pattern (R2.1) */
    const char *dns_server;   /* "" = /etc/resolv.conf */
    struct launcher *launcher; /* starts it as the scan user (R8.1); NULL: fork + exec here */
    /* state */
    pid_t pid;                /* 0: not running */
    int fd;                   /* control socket, -1 when not running */
    struct frame_reader rd;
    uint64_t started_ms, next_start_ms;
    unsigned backoff_ms;
    unsigned restarts;
    int exit_status;          /* waitpid status of the last exit (valid after a reap) */
    Portcullis__ScanStats *stats; /* last stats received; NULL before any */
};

void scan_proc_init(struct scan_proc *sp);
/* Starts it if it is not running and its restart time has come. 0 ok or not due, -1 failed. */
int scan_proc_start(struct scan_proc *sp);
/* Call on SIGCHLD: reaps, logs how it ended, schedules the restart. True if it had exited. */
bool scan_proc_reap(struct scan_proc *sp);
int scan_proc_send(struct scan_proc *sp, const envelope_t *env);
/* Reads what is available; returns the next whole envelope or NULL (caller frees). On EOF or
 * a broken frame the socket is closed (the reap will follow). */
envelope_t *scan_proc_read(struct scan_proc *sp);
void scan_proc_stop(struct scan_proc *sp);
/* Sends sig to the running scan service (through the launcher when there is one). */
void scan_proc_kill(struct scan_proc *sp, int sig);
const char *scan_proc_state(const struct scan_proc *sp);

#endif
