/* admin_settings: settings and configuration versions (R6.1, R6.2). The `settings` table keeps
 * overrides only; a change is one transaction that stores the value, makes a new version and
 * NOTIFYs the parent, which pushes the snapshot to every connected child. */
#include "admin/admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "log.h"
#include "mta_retry.h"
#include "util.h"

int admin_config_version(PGconn *c, uint64_t *version, char *err, size_t errlen)
{
    PGresult *r = db_query(c, "SELECT max(version) FROM config_versions", 0, NULL, err, errlen);

    if (r == NULL)
        return -1;
    *version = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int admin_config_bump(PGconn *c, const char *reason, uint64_t *version, char *err, size_t errlen)
{
    const char *p[] = { reason };
    PGresult *r = db_query(c, "INSERT INTO config_versions (reason) VALUES ($1) RETURNING version",
                           1, p, err, errlen);

    if (r == NULL)
        return -1;
    *version = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return db_exec(c, "SELECT pg_notify('" ADMIN_NOTIFY_CONFIG "', $1)", 1, p, err, errlen);
}

int admin_config_commit(PGconn *c, const char *reason, uint64_t *version, char *err,
                        size_t errlen)
{
    if (admin_config_bump(c, reason, version, err, errlen) != 0 || db_commit(c, err, errlen) != 0) {
        db_rollback(c);
        return -1;
    }
    return 0;
}

settings_t *admin_settings_effective(PGconn *c, char *err, size_t errlen)
{
    PGresult *r;
    settings_t *s;
    uint64_t version;
    char e[512];

    /* One snapshot of both tables: REPEATABLE READ keeps version and values consistent. */
    if (db_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err, errlen) != 0)
        return NULL;
    if (admin_config_version(c, &version, err, errlen) != 0) {
        db_rollback(c);
        return NULL;
    }
    r = db_query(c, "SELECT section, name, value FROM settings", 0, NULL, err, errlen);
    db_rollback(c);
    if (r == NULL)
        return NULL;
    s = settings_new_defaults();
    for (int i = 0; i < PQntuples(r); i++) {
        /* A row this binary does not know (a newer parent wrote it) or no longer accepts is
         * skipped with a warning rather than taking the whole configuration down. */
        if (settings_set(s, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), e,
                         sizeof e) != 0)
            log_warn("stored setting ignored: %s", e);
    }
    PQclear(r);
    settings_set_version(s, version);
    return s;
}

/* R4.2: the retry settings are checked together, with the new value in place. */
static int s_check_mta(PGconn *c, const struct setting_def *d, const char *canon, char *err,
                       size_t errlen)
{
    settings_t *s = admin_settings_effective(c, err, errlen);
    struct mta_retry r;
    int rc;

    if (s == NULL)
        return -1;
    if (settings_set(s, d->section, d->name, canon, err, errlen) != 0) {
        settings_free(&s);
        return -1;
    }
    admin_mta_retry(s, &r);
    rc = mta_retry_check(&r, err, errlen);
    settings_free(&s);
    return rc;
}

void admin_mta_retry(const settings_t *s, struct mta_retry *r)
{
    r->queue_run_delay = settings_int(s, SETTING_MTA_QUEUE_RUN_DELAY);
    r->minimal_backoff_time = settings_int(s, SETTING_MTA_MINIMAL_BACKOFF_TIME);
    r->maximal_backoff_time = settings_int(s, SETTING_MTA_MAXIMAL_BACKOFF_TIME);
    r->maximal_queue_lifetime = settings_int(s, SETTING_MTA_MAXIMAL_QUEUE_LIFETIME);
    r->bounce_queue_lifetime = settings_int(s, SETTING_MTA_BOUNCE_QUEUE_LIFETIME);
}

json_t *admin_mta_timetable(PGconn *c, int64_t failure_at, int64_t first_run, char *err,
                            size_t errlen)
{
    struct mta_attempt *a;
    struct mta_retry r;
    settings_t *s;
    uint64_t version;
    size_t n;
    json_t *o, *rows;

    if ((s = admin_settings_effective(c, err, errlen)) == NULL)
        return NULL;
    admin_mta_retry(s, &r);
    version = settings_version(s);
    settings_free(&s);
    if (first_run < 0 || first_run > r.queue_run_delay) {
        snprintf(err, errlen, "the first queue run must come 0 to mta.queue_run_delay (%" PRId64
                              " s) after the failure", r.queue_run_delay);
        return NULL;
    }
    a = xcalloc(MTA_RETRY_ATTEMPTS_MAX, sizeof *a);
    n = mta_retry_timetable(&r, first_run, a, MTA_RETRY_ATTEMPTS_MAX);
    o = json_object();
    rows = json_array();
    json_object_set_new(o, "config_version", json_integer((json_int_t)version));
    json_object_set_new(o, "failure_at_s", json_integer(failure_at));
    json_object_set_new(o, "first_queue_run_after_s", json_integer(first_run));
    json_object_set_new(o, "settings", json_pack("{s:I, s:I, s:I, s:I, s:I}",
        "queue_run_delay", (json_int_t)r.queue_run_delay,
        "minimal_backoff_time", (json_int_t)r.minimal_backoff_time,
        "maximal_backoff_time", (json_int_t)r.maximal_backoff_time,
        "maximal_queue_lifetime", (json_int_t)r.maximal_queue_lifetime,
        "bounce_queue_lifetime", (json_int_t)r.bounce_queue_lifetime));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(rows, json_pack("{s:I, s:I, s:I, s:b}",
            "retry", (json_int_t)a[i].retry, "after_failure_s", (json_int_t)a[i].at,
            "backoff_s", (json_int_t)a[i].backoff, "bounce_if_failed", a[i].bounce));
    json_object_set_new(o, "retries", rows);
    free(a);
    return o;
}

int admin_settings_set(PGconn *c, const char *key, const char *value, uint64_t *version,
                       char *err, size_t errlen)
{
    const struct setting_def *d = settings_find_key(key);
    char canon[SETTINGS_VALUE_MAX], reason[SETTINGS_KEY_MAX + SETTINGS_VALUE_MAX + 16];

    if (d == NULL) {
        snprintf(err, errlen, "unknown setting '%.128s' (see `portcullis settings get`)", key);
        return -1;
    }
    if (settings_validate(d, value, canon, sizeof canon, err, errlen) != 0)
        return -1;
    if (strcmp(d->section, "mta") == 0 && s_check_mta(c, d, canon, err, errlen) != 0)
        return -1;
    snprintf(reason, sizeof reason, "settings set %s.%s=%s", d->section, d->name, canon);
    {
        const char *p[] = { d->section, d->name, canon };
        if (db_begin(c, err, errlen) != 0)
            return -1;
        if (db_exec(c, "INSERT INTO settings (section, name, value) VALUES ($1, $2, $3) "
                       "ON CONFLICT (section, name) DO UPDATE SET value = EXCLUDED.value, "
                       "updated_at = now()", 3, p, err, errlen) != 0)
            goto fail;
        return admin_config_commit(c, reason, version, err, errlen);
    }
fail:
    db_rollback(c);
    return -1;
}

static json_t *s_describe_one(const struct setting_def *d, const settings_t *s)
{
    json_t *o = json_object();
    char key[SETTINGS_KEY_MAX];

    snprintf(key, sizeof key, "%s.%s", d->section, d->name);
    json_object_set_new(o, "key", json_string(key));
    json_object_set_new(o, "type", json_string(settings_type_name(d->type)));
    if (d->type == SETTING_INT) {
        json_object_set_new(o, "value", json_integer(settings_int(s, d->id)));
        json_object_set_new(o, "default", json_integer(atoll(d->default_value)));
        json_object_set_new(o, "min", json_integer(d->min));
        json_object_set_new(o, "max", json_integer(d->max));
    } else if (d->type == SETTING_BOOL) {
        json_object_set_new(o, "value", json_boolean(settings_bool(s, d->id)));
        json_object_set_new(o, "default", json_boolean(strcmp(d->default_value, "true") == 0));
    } else {
        json_object_set_new(o, "value", json_string(settings_str(s, d->id)));
        json_object_set_new(o, "default", json_string(d->default_value));
    }
    json_object_set_new(o, "unit", json_string(d->unit));
    json_object_set_new(o, "description", json_string(d->description));
    json_object_set_new(o, "secret", json_boolean(settings_is_secret(d->id)));
    return o;
}

json_t *admin_settings_describe(PGconn *c, const char *key, char *err, size_t errlen)
{
    const struct setting_def *only = NULL;
    settings_t *s;
    json_t *out, *arr;

    if (key != NULL && (only = settings_find_key(key)) == NULL) {
        snprintf(err, errlen, "unknown setting '%.128s'", key);
        return NULL;
    }
    if ((s = admin_settings_effective(c, err, errlen)) == NULL)
        return NULL;
    out = json_object();
    arr = json_array();
    json_object_set_new(out, "config_version", json_integer((json_int_t)settings_version(s)));
    for (size_t i = 0; i < SETTING__COUNT; i++) {
        const struct setting_def *d = settings_def((enum setting_id)i);
        if (only == NULL || only == d)
            json_array_append_new(arr, s_describe_one(d, s));
    }
    json_object_set_new(out, "settings", arr);
    settings_free(&s);
    return out;
}
