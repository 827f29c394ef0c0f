/* release: re-injects released quarantine files to the downstream MTA (R5.4) from a worker
 * thread with its own libevent loop and smtp_client, so the manager's loop never waits on
 * SMTP. One job at a time, in order; the manager removes the file once a job comes back ok. */
#ifndef PORTCULLIS_RELEASE_H
#define PORTCULLIS_RELEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELEASE_TIMEOUT_MIN_S 2     /* per SMTP reply, whatever the command's deadline says */
#define RELEASE_FILE_MAX (2147483647u) /* bytes of a file to re-inject (smtp.max_message_size) */

struct release_job {
    uint64_t id;                     /* the command's id */
    char path[4096], file_id[33], kind[16];
    char *sender;                    /* owned */
    char **rcpts;                    /* owned, nrcpts */
    size_t nrcpts;
    int timeout_s;                   /* per reply */
    /* result, filled by the worker */
    bool ok;
    uint64_t size;
    char error[1024];
    struct release_job *next;
};

typedef struct releaser releaser_t;

releaser_t *releaser_new(const char *downstream, const char *helo);
/* Stops the worker after its current job; unfinished jobs are dropped (the parent times out). */
void releaser_destroy(releaser_t **rp);
/* Takes job; -1 (job untouched) when the queue holds queue_max jobs. */
int releaser_submit(releaser_t *r, struct release_job *job, size_t queue_max);
/* A finished job (caller frees with release_job_free), or NULL. */
struct release_job *releaser_done(releaser_t *r);
/* True if a job for this path is queued or running. */
bool releaser_busy(releaser_t *r, const char *path);
void release_job_free(struct release_job **jp);

#endif
