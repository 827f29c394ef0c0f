/* dbthread: database work off the cluster loop (R10.1). A thread with its own PostgreSQL
 * connection runs posted jobs in order; each finished job's done callback then runs in the
 * loop's thread when the loop sees the thread's descriptor readable and calls
 * dbthread_complete. The loop never waits on the database: it posts, and learns later. */
#ifndef PORTCULLIS_DBTHREAD_H
#define PORTCULLIS_DBTHREAD_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct dbthread dbthread_t;

/* In the thread. db is connected; false: the database failed (the connection is then made
 * again). With `retry`, a failed job is run again after a backoff until it succeeds or the
 * thread stops. */
typedef bool (*dbthread_run_fn)(PGconn *db, void *arg);
/* In the loop's thread, once: ok is what run said (false too when it never got a database
 * before the stop). */
typedef void (*dbthread_done_fn)(void *arg, bool ok);

/* name is for logs; at most queue_max jobs wait. NULL with err filled. The connection is made
 * in the thread (an absent database is waited for). */
dbthread_t *dbthread_start(const char *dsn, const char *name, size_t queue_max, bool retry,
                           char *err, size_t errlen);
/* Readable when done callbacks wait (for zmq_poll). */
int dbthread_fd(const dbthread_t *t);
/* Queues a job; false (nothing queued) when queue_max jobs wait already: back-pressure. */
bool dbthread_post(dbthread_t *t, dbthread_run_fn run, dbthread_done_fn done, void *arg);
/* Runs the done callbacks of finished jobs. */
void dbthread_complete(dbthread_t *t);
/* Runs what is queued (a job failing then fails at once), joins the thread and runs the last
 * done callbacks. NULL-safe. */
void dbthread_stop(dbthread_t **tp);

#endif
