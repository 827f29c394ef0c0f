/* runcmd: the manager runs administrator-set commands (the upstream MTA's queue flush, postconf,
 * postfix reload) without a shell and without blocking its loop: a command line is split on
 * whitespace into argv, started with fork + exec in its own process group, its output (stdout
 * and stderr on one pipe) kept up to a bound for the error message, its exit reaped by pid
 * only (never waitpid(-1): the scan service is reaped by scan_proc), and killed past a deadline. */
#ifndef PORTCULLIS_RUNCMD_H
#define PORTCULLIS_RUNCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RUNCMD_ARGV_MAX 64          /* words in one command, extra arguments included */
#define RUNCMD_OUTPUT_MAX 512       /* bytes of output kept for the result text */
#define RUNCMD_RESULT_MAX 640       /* result text: "exit 1: " + output */
#define RUNCMD_TIMEOUT_MS 60000     /* a command still running after this is killed */

/* A command line split into words, plus arguments appended after it. */
struct runcmd_argv {
    char *argv[RUNCMD_ARGV_MAX + 1];  /* NULL-terminated; each word owned */
    int argc;
};

/* Splits cmd on spaces and tabs (no quoting, no shell) and appends extra[0..n_extra). 0 ok;
 * -1 with err filled: empty command, or more than RUNCMD_ARGV_MAX words. */
int runcmd_split(const char *cmd, const char *const *extra, size_t n_extra,
                 struct runcmd_argv *av, char *err, size_t errlen);
void runcmd_argv_free(struct runcmd_argv *av);

/* The executable argv[0] names: itself when it has a '/', else the first executable match in
 * $PATH, then in the usual sbin/bin directories (Postfix's commands live in /usr/sbin). 0 ok,
 * -1 not found. Done before fork: the manager has threads, so the forked child only calls
 * async-signal-safe functions. */
int runcmd_resolve(const char *argv0, char *path, size_t pathlen);

typedef struct runcmd runcmd_t;

/* Starts argv (label names it in logs). NULL with err filled if it could not be started
 * (not found, pipe or fork failed). */
runcmd_t *runcmd_start(const char *label, char *const argv[], uint64_t timeout_ms, char *err,
                       size_t errlen);
/* Reads output, reaps, enforces the deadline. Never blocks. True once the command has ended. */
bool runcmd_poll(runcmd_t *r);
/* After runcmd_poll returned true: exited with status 0. */
bool runcmd_ok(const runcmd_t *r);
/* After runcmd_poll returned true: "ok", "exit N: output", "killed by signal N: output", or
 * "timed out after N s: output"; output's lines joined with "; ". Borrowed. */
const char *runcmd_result(const runcmd_t *r);
/* After runcmd_poll returned true: its output (kept part), lines joined with "; " — also when
 * it succeeded. Borrowed. */
const char *runcmd_output(const runcmd_t *r);
pid_t runcmd_pid(const runcmd_t *r);
/* NULL-safe; a command still running is killed (its process group) and reaped. */
void runcmd_destroy(runcmd_t **rp);

#endif
