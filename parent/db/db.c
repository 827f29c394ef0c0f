/* db: see db.h. */
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/migrations.h"
#include "log.h"


static void s_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs from IF NOT EXISTS and the like are not worth a log line */
}

PGconn *db_connect(const char *dsn, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(dsn);

    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        /* libpq messages end in a newline; keep log lines single. */
        char *nl = strchr(err, '\n');
        if (nl != NULL)
            *nl = '\0';
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, s_notice, NULL);
    /* The parent's statements are short; compiling one (JIT kicks in on the planner's guess
     * for a table never analysed) costs more than it saves: 10 ms of a 30 ms status. */
    PGresult *r = PQexec(c, "SET jit = off");
    PQclear(r);
    return c;
}

void db_close(PGconn **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    PQfinish(*cp);
    *cp = NULL;
}

static void s_err(PGconn *c, const PGresult *r, char *err, size_t errlen)
{
    const char *m = r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c);
    size_t n;

    snprintf(err, errlen, "database: %s", m != NULL && *m ? m : "unknown error");
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

PGresult *db_query(PGconn *c, const char *sql, int nparams, const char *const *params,
                   char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    s_err(c, r, err, errlen);
    PQclear(r);
    return NULL;
}

int db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, char *err,
            size_t errlen)
{
    PGresult *r = db_query(c, sql, nparams, params, err, errlen);

    if (r == NULL)
        return -1;
    PQclear(r);
    return 0;
}

int db_begin(PGconn *c, char *err, size_t errlen) { return db_exec(c, "BEGIN", 0, NULL, err, errlen); }
int db_commit(PGconn *c, char *err, size_t errlen) { return db_exec(c, "COMMIT", 0, NULL, err, errlen); }

void db_rollback(PGconn *c)
{
    PGresult *r = PQexec(c, "ROLLBACK");
    PQclear(r);
}

int db_event(PGconn *c, const char *category, const char *severity, const char *child_id,
             const char *message)
{
    const char *p[] = { category, severity, child_id, message };
    char err[512];

    if (db_exec(c, "INSERT INTO events (category, severity, child_id, message) "
                   "VALUES ($1, $2, (SELECT id FROM children WHERE id = $3::bigint), $4)", 4, p, err, sizeof err) != 0) {
        log_err("event not recorded category=%s message=\"%s\": %s", category, message, err);
        return -1;
    }
    return 0;
}

int db_event_notify(PGconn *c, const char *category, const char *severity, const char *child_id,
                    const char *message, const char *subject)
{
    const char *p[] = { category, severity, child_id, message, subject };
    char err[512];

    if (db_exec(c, "WITH ev AS (INSERT INTO events (category, severity, child_id, message) "
                   "  VALUES ($1, $2, (SELECT id FROM children WHERE id = $3::bigint), $4) "
                   "  RETURNING id, child_id), "
                   "n AS (INSERT INTO notifications (event_id, child_id, subject, body) "
                   "  SELECT id, child_id, left($5, 200), left($4, 65536) FROM ev RETURNING id) "
                   "SELECT pg_notify('portcullis_notify', '') FROM n",
                5, p, err, sizeof err) != 0) {
        log_err("event not recorded category=%s message=\"%s\": %s", category, message, err);
        return -1;
    }
    return 0;
}

static int s_applied(PGconn *c, int version, int *applied, char *err, size_t errlen)
{
    char v[16];
    const char *p[] = { v };
    PGresult *r;

    snprintf(v, sizeof v, "%d", version);
    r = db_query(c, "SELECT 1 FROM schema_migrations WHERE version = $1::int", 1, p, err, errlen);
    if (r == NULL)
        return -1;
    *applied = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

int db_migrate(PGconn *c)
{
    char err[1024], v[16];
    int applied;

    if (db_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version integer PRIMARY KEY, name text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL, err, sizeof err) != 0) {
        log_err("migrations: %s", err);
        return -1;
    }
    for (unsigned i = 0; i < migrations_count; i++) {
        const struct migration *m = &migrations[i];
        const char *p[] = { v, m->name };

        snprintf(v, sizeof v, "%d", m->version);
        if (db_begin(c, err, sizeof err) != 0 ||
            db_exec(c, "SELECT pg_advisory_xact_lock(1886351988)", 0, NULL, err, sizeof err) != 0 ||
            s_applied(c, m->version, &applied, err, sizeof err) != 0)
            goto fail;
        if (applied) {
            db_rollback(c);
            continue;
        }
        /* A migration file may hold several statements: PQexec runs them as one batch. */
        PGresult *r = PQexec(c, m->sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            s_err(c, r, err, sizeof err);
            PQclear(r);
            goto fail;
        }
        PQclear(r);
        if (db_exec(c, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)", 2,
                    p, err, sizeof err) != 0 ||
            db_commit(c, err, sizeof err) != 0)
            goto fail;
        log_info("migration applied version=%d name=%s", m->version, m->name);
    }
    return 0;
fail:
    db_rollback(c);
    log_err("migration %s failed: %s", v, err);
    return -1;
}

int db_schema_check(PGconn *c, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    int have, want = migrations_count > 0 ? migrations[migrations_count - 1].version : 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        snprintf(err, errlen, "the database has no Portcullis schema yet: start portcullis-parent "
                              "once, it applies the migrations");
        return -1;
    }
    have = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (have < want) {
        snprintf(err, errlen, "database schema is at version %d, this program needs %d: start "
                              "the new portcullis-parent first", have, want);
        return -1;
    }
    return 0;
}
