/* db: the parent's PostgreSQL access: connection, schema migrations applied at start, and
 * thin wrappers that run parametrised statements only (never SQL built from strings). */
#ifndef PORTCULLIS_DB_H
#define PORTCULLIS_DB_H

#include <libpq-fe.h>
#include <stddef.h>

/* NULL with err filled when the server cannot be reached or refuses us. */
PGconn *db_connect(const char *dsn, char *err, size_t errlen);
void db_close(PGconn **cp);

/* Applies every embedded migration not yet recorded, each in its own transaction, under an
 * advisory lock so two parents starting together do not race. 0 ok, -1 logged. */
int db_migrate(PGconn *c);
/* Checks that the database has every migration this binary knows (the CLI's guard). */
int db_schema_check(PGconn *c, char *err, size_t errlen);

/* Runs a parametrised statement. Returns the result if its status is COMMAND_OK or
 * TUPLES_OK (caller PQclear()s); otherwise NULL with err filled. */
PGresult *db_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                   char *err, size_t errlen);
/* Same, for statements whose result is not needed. 0 ok, -1 with err filled. */
int db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, char *err,
            size_t errlen);
int db_begin(PGconn *c, char *err, size_t errlen);
int db_commit(PGconn *c, char *err, size_t errlen);
void db_rollback(PGconn *c);

/* Records an event (category 'system', 'cluster', …); child_id may be NULL. Logged on error. */
int db_event(PGconn *c, const char *category, const char *severity, const char *child_id,
             const char *message);
/* (An event naming a child that no longer exists is recorded without it.) */
/* The same, and a notification mail to the administrator (table notifications, sent by the
 * notifier thread: parent/sched/notify.c) with this subject and the message as its body,
 * in one statement; NOTIFY portcullis_notify wakes the sender. */
int db_event_notify(PGconn *c, const char *category, const char *severity, const char *child_id,
                    const char *message, const char *subject);

#endif
