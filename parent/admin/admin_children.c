/* admin_children: enrolment tokens, approval and removal of children, and the fleet status
 * (R6.2, R7.1, R7.2, R7.5). Liveness is judged from the parent's last contact, so a status
 * read while the parent itself is down still shows children as down, never stale "up". */
#include "admin/admin.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db/db.h"
#include "keys.h"
#include "link.h"
#include "lookup_auth.h"
#include "util.h"

/* A child is up while its last contact is younger than the liveness window plus one interval
 * of slack for the parent's throttled last_seen writes. */
#define ADMIN_UP_WINDOW_MS (LINK_HEARTBEAT_MS * (LINK_LIVENESS + 1))

bool admin_child_name_valid(const char *name)
{
    return lookup_name_valid(name); /* the one definition, shared with the look-up service */
}

static int s_check_name(const char *name, char *err, size_t errlen)
{
    if (admin_child_name_valid(name))
        return 0;
    snprintf(err, errlen, "'%.64s' is not a valid child name: 1 to 63 letters, digits, '.', '_' "
                          "or '-', starting with a letter or digit", name);
    return -1;
}

int admin_enroll_token(PGconn *c, const char *name, char *token, char *err, size_t errlen)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hashhex[2 * sizeof hash + 3], ttl[32];
    const char *p[] = { name, hashhex, ttl };
    PGresult *r;

    if (s_check_name(name, err, errlen) != 0)
        return -1;
    r = db_query(c, "SELECT 1 FROM children WHERE name = $1 AND enrolment = 'enrolled'", 1, p,
                 err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) > 0) {
        PQclear(r);
        snprintf(err, errlen, "child '%s' is already enrolled; remove it first "
                              "(`portcullis child remove %s`) to enrol a new key", name, name);
        return -1;
    }
    PQclear(r);
    random_hex(token, ADMIN_TOKEN_BYTES);
    crypto_hash_sha256(hash, (const unsigned char *)token, ADMIN_TOKEN_HEX);
    memcpy(hashhex, "\\x", 2);
    sodium_bin2hex(hashhex + 2, sizeof hashhex - 2, hash, sizeof hash);
    snprintf(ttl, sizeof ttl, "%d hours", ADMIN_TOKEN_TTL_HOURS);
    return db_exec(c, "INSERT INTO enrol_tokens (child_name, token_hash, expires_at) "
                      "VALUES ($1, $2::bytea, now() + $3::interval)", 3, p, err, errlen);
}

static const char *s_endpoint(const conf_t *conf, const char *pub, const char *listen)
{
    const char *v = conf_get(conf, pub);
    return v != NULL && *v ? v : conf_get(conf, listen);
}

json_t *admin_enroll_offer(PGconn *c, const conf_t *conf, const char *name, char *err,
                           size_t errlen)
{
    char token[ADMIN_TOKEN_HEX + 1], pub[KEYS_Z85_LEN + 1], e[512];
    json_t *o;

    /* the key first: a token is useless to a child that cannot pin the parent */
    if (keys_load_public(conf_get(conf, "state_dir"), "parent", pub, e, sizeof e) != 0) {
        snprintf(err, errlen, "%s (has portcullis-parent been started once?)", e);
        return NULL;
    }
    if (admin_enroll_token(c, name, token, err, errlen) != 0)
        return NULL;
    o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "name", name, "token", token,
                  "expires_hours", ADMIN_TOKEN_TTL_HOURS,
                  "parent_cluster", s_endpoint(conf, "cluster_public_endpoint", "cluster_listen"),
                  "parent_enrol", s_endpoint(conf, "enrol_public_endpoint", "enrol_listen"),
                  "parent_public_key", pub);
    sodium_memzero(token, sizeof token);
    if (o == NULL)
        snprintf(err, errlen, "out of memory; the token made for %s cannot be shown: make "
                 "another", name);
    return o;
}

int admin_child_approve(PGconn *c, const char *name, const char *fingerprint, char *err,
                        size_t errlen)
{
    char key[KEYS_Z85_LEN + 1], fp[KEYS_FP_LEN + 1];
    const char *p[] = { name, key };
    PGresult *r;
    int n;

    if (s_check_name(name, err, errlen) != 0)
        return -1;
    if (fingerprint == NULL || fingerprint[0] == '\0') {
        snprintf(err, errlen, "the key fingerprint is required (R8.3): compare the one `portcullis "
                              "child list` shows for %s with the child's log line 'enrolment "
                              "pending … key fingerprint=…' and give it with --fingerprint", name);
        return -1;
    }
    r = db_query(c, "SELECT public_key FROM children WHERE name = $1 AND enrolment = 'pending' "
                    "AND public_key IS NOT NULL", 1, p, err, errlen);
    if (r == NULL)
        return -1;
    n = PQntuples(r);
    if (n == 1)
        strlcpy_p(key, PQgetvalue(r, 0, 0), sizeof key);
    PQclear(r);
    if (n == 0) {
        snprintf(err, errlen, "no pending child named '%s' (see `portcullis child list`)", name);
        return -1;
    }
    if (keys_fingerprint(key, fp) != 0 || !keys_fingerprint_equal(fingerprint, fp)) {
        snprintf(err, errlen, "the fingerprint '%.48s' is not that of the key waiting as %s "
                              "(%s): nothing approved; if the child's log shows another, a "
                              "stranger asked first — `portcullis child remove %s`",
                 fingerprint, name, fp, name);
        return -1;
    }
    r = db_query(c, "UPDATE children SET enrolment = 'enrolled', enrolled_at = now() "
                    "WHERE name = $1 AND enrolment = 'pending' AND public_key = $2 "
                    "RETURNING id", 2, p, err, errlen);
    if (r == NULL)
        return -1;
    n = PQntuples(r);
    if (n == 1) {
        char msg[192];
        const char *id = PQgetvalue(r, 0, 0);
        snprintf(msg, sizeof msg, "child %s approved by an administrator (key fingerprint %s)",
                 name, fp);
        db_event(c, "cluster", "info", id, msg);
    }
    PQclear(r);
    if (n == 0) {
        snprintf(err, errlen, "no pending child named '%s' (see `portcullis child list`)", name);
        return -1;
    }
    return 0;
}

int admin_child_remove(PGconn *c, const char *name, char *err, size_t errlen)
{
    const char *p[] = { name };
    PGresult *r = db_query(c, "DELETE FROM children WHERE name = $1 RETURNING id", 1, p, err,
                           errlen);
    int n;

    if (r == NULL)
        return -1;
    n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        snprintf(err, errlen, "no child named '%s'", name);
        return -1;
    }
    return 0;
}

static json_t *s_text_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

/* A child's state, as SQL over children: up while its last contact is within the liveness
 * window ($1). */
#define STATE_SQL                                                                        \
    "CASE WHEN enrolment = 'pending' THEN 'pending'"                                     \
    " WHEN enrolment = 'enrolled' AND connected AND last_seen > now() - $1::interval"    \
    " THEN 'up' ELSE 'down' END"

/* Cluster totals of the children's last reported quarantine and archive usage (R5.12), from
 * the columns migration 015 keeps for them. */
static json_t *s_store_totals(PGconn *c, char *err, size_t errlen)
{
    PGresult *r = db_query(c,
        "SELECT coalesce(sum(h_quarantine_bytes), 0), coalesce(sum(h_quarantine_files), 0),"
        " coalesce(sum(h_quarantine_quota), 0), count(*) FILTER (WHERE h_quarantine_bytes IS"
        " NOT NULL OR h_quarantine_files IS NOT NULL OR h_quarantine_quota IS NOT NULL),"
        " coalesce(sum(h_archive_bytes), 0), coalesce(sum(h_archive_files), 0),"
        " coalesce(sum(h_archive_quota), 0), count(*) FILTER (WHERE h_archive_bytes IS NOT NULL"
        " OR h_archive_files IS NOT NULL OR h_archive_quota IS NOT NULL) FROM children",
        0, NULL, err, errlen);
    static const char *const kinds[] = { "quarantine", "archive" };
    json_t *tot;

    if (r == NULL)
        return NULL;
    tot = json_object();
    for (int k = 0; k < 2; k++) {
        long long n = strtoll(PQgetvalue(r, 0, 4 * k + 3), NULL, 10);
        if (n == 0)
            continue; /* no child reported this store */
        json_object_set_new(tot, kinds[k], json_pack(
            "{s:I, s:I, s:I, s:I}", "bytes", (json_int_t)strtoll(PQgetvalue(r, 0, 4 * k), NULL, 10),
            "files", (json_int_t)strtoll(PQgetvalue(r, 0, 4 * k + 1), NULL, 10),
            "quota_bytes", (json_int_t)strtoll(PQgetvalue(r, 0, 4 * k + 2), NULL, 10),
            "children", (json_int_t)n));
    }
    PQclear(r);
    return tot;
}

/* Cluster totals (R7.5): children by state, and the sums of each child's last reported rate,
 * message counters and report spool (columns of migration 015, one per name here). The
 * counters are the scan services' since their last start, so a total falls back when a
 * child's scan service restarts. */
static const char *const s_sums[] = { "connections", "messages_relayed", "messages_quarantined",
                                      "messages_deleted", "messages_tempfailed",
                                      "messages_rejected", "viruses_found", "scan_exceptions",
                                      "bytes_relayed", "messages_per_minute", "spool_records",
                                      "spool_bytes" };

static json_t *s_fleet_totals(PGconn *c, const char *window, char *err, size_t errlen)
{
    PGresult *r = db_query(c,
        "SELECT count(*), count(*) FILTER (WHERE st = 'up'), count(*) FILTER (WHERE st ="
        " 'pending'), count(*) FILTER (WHERE st = 'down'),"
        " coalesce(sum(h_connections), 0), coalesce(sum(h_messages_relayed), 0),"
        " coalesce(sum(h_messages_quarantined), 0), coalesce(sum(h_messages_deleted), 0),"
        " coalesce(sum(h_messages_tempfailed), 0), coalesce(sum(h_messages_rejected), 0),"
        " coalesce(sum(h_viruses_found), 0), coalesce(sum(h_scan_exceptions), 0),"
        " coalesce(sum(h_bytes_relayed), 0), coalesce(sum(h_messages_per_minute), 0),"
        " coalesce(sum(h_spool_records), 0), coalesce(sum(h_spool_bytes), 0) "
        "FROM (SELECT " STATE_SQL " AS st, * FROM children) AS x",
        1, (const char *[]){ window }, err, errlen);
    static const char *const states[] = { "children", "children_up", "children_pending",
                                          "children_down" };
    json_t *tot;

    if (r == NULL)
        return NULL;
    tot = json_object();
    for (size_t k = 0; k < ARRAY_LEN(states); k++)
        json_object_set_new(tot, states[k], json_integer(strtoll(PQgetvalue(r, 0, (int)k), NULL,
                                                                 10)));
    for (size_t k = 0; k < ARRAY_LEN(s_sums); k++)
        json_object_set_new(tot, s_sums[k], json_integer(strtoll(
            PQgetvalue(r, 0, (int)(ARRAY_LEN(states) + k)), NULL, 10)));
    PQclear(r);
    return tot;
}

/* One child of the list, from a row of s_sql_children. */
static json_t *s_child_row(PGresult *r, int i, uint64_t current)
{
    json_t *o = json_object(), *health = NULL;

    json_object_set_new(o, "name", json_string(PQgetvalue(r, i, 0)));
    json_object_set_new(o, "state", json_string(PQgetvalue(r, i, 1)));
    json_object_set_new(o, "enrolment", json_string(PQgetvalue(r, i, 2)));
    json_object_set_new(o, "last_heartbeat", s_text_or_null(r, i, 3));
    json_object_set_new(o, "last_heartbeat_age_s",
                        PQgetisnull(r, i, 4) ? json_null() : json_real(atof(PQgetvalue(r, i, 4))));
    if (PQgetisnull(r, i, 5)) {
        json_object_set_new(o, "config_version", json_null());
        json_object_set_new(o, "config_current", json_false());
        json_object_set_new(o, "config_lag", json_null());
    } else {
        uint64_t v = strtoull(PQgetvalue(r, i, 5), NULL, 10);
        json_object_set_new(o, "config_version", json_integer((json_int_t)v));
        json_object_set_new(o, "config_current", json_boolean(v == current));
        /* versions behind the current one (R10.1) */
        json_object_set_new(o, "config_lag", json_integer(v < current ? (json_int_t)(current - v)
                                                                      : 0));
    }
    json_object_set_new(o, "config_error", s_text_or_null(r, i, 6));
    json_object_set_new(o, "address", s_text_or_null(r, i, 7));
    json_object_set_new(o, "software_version", s_text_or_null(r, i, 8));
    if (!PQgetisnull(r, i, 9))
        health = json_loads(PQgetvalue(r, i, 9), 0, NULL);
    json_object_set_new(o, "health", health != NULL ? health : json_null());
    /* What an administrator compares with the child's log before approving (R8.3). */
    if (!PQgetisnull(r, i, 10)) {
        char fp[KEYS_FP_LEN + 1];
        if (keys_fingerprint(PQgetvalue(r, i, 10), fp) == 0)
            json_object_set_new(o, "key_fingerprint", json_string(fp));
    }
    return o;
}

/* The children matching the filters ($2 state, $3 part of the name, $4 lagging behind
 * version $5, $6 names after), in name order, at most $7 (NULL: all); each with its Health
 * whole ($8) or without the latency histogram (the summary: most of its size); the last
 * column counts every match. */
static const char s_sql_children[] =
    "WITH f AS (SELECT id, name, " STATE_SQL " AS st FROM children"
    " WHERE ($3::text IS NULL OR strpos(name, $3) > 0)"
    " AND (NOT $4::bool OR (enrolment = 'enrolled'"
    "  AND applied_config_version IS DISTINCT FROM $5::bigint))), "
    "m AS (SELECT * FROM f WHERE $2::text IS NULL OR st = $2), "
    "p AS (SELECT * FROM m WHERE $6::text IS NULL OR name > $6 ORDER BY name LIMIT $7::bigint) "
    "SELECT c.name, p.st, c.enrolment,"
    " to_char(c.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " extract(epoch FROM now() - c.last_seen)::float8,"
    " c.applied_config_version, c.config_error, c.address, c.software_version,"
    " (CASE WHEN $8::bool THEN c.last_health"
    "  ELSE c.last_health #- '{stats,scan_ms}' END)::text,"
    " c.public_key, (SELECT count(*) FROM m) "
    "FROM p JOIN children c USING (id) ORDER BY c.name";

json_t *admin_status(PGconn *c, const struct admin_status_query *q, char *err, size_t errlen)
{
    static const struct admin_status_query all = { .full_health = true };
    char window[32], ver[24], lim[24];
    uint64_t current;
    PGresult *r;
    json_t *out, *arr, *tot, *stores;
    int n;

    if (q == NULL)
        q = &all;
    snprintf(window, sizeof window, "%d milliseconds", ADMIN_UP_WINDOW_MS);
    if (admin_config_version(c, &current, err, errlen) != 0)
        return NULL;
    snprintf(ver, sizeof ver, "%" PRIu64, current);
    snprintf(lim, sizeof lim, "%u", q->limit + 1); /* one more: is there a next page? */
    const char *p[] = { window, q->state, q->name, q->lagging ? "true" : "false", ver, q->after,
                        q->limit != 0 ? lim : NULL, q->full_health ? "true" : "false" };
    if ((r = db_query(c, s_sql_children, 8, p, err, errlen)) == NULL)
        return NULL;
    if ((tot = s_fleet_totals(c, window, err, errlen)) == NULL) {
        PQclear(r);
        return NULL;
    }
    if ((stores = s_store_totals(c, err, errlen)) == NULL) {
        PQclear(r);
        json_decref(tot);
        return NULL;
    }
    out = json_object();
    arr = json_array();
    n = PQntuples(r);
    json_object_set_new(out, "config_version", json_integer((json_int_t)current));
    for (int i = 0; i < n && (q->limit == 0 || i < (int)q->limit); i++)
        json_array_append_new(arr, s_child_row(r, i, current));
    json_object_set_new(out, "matched", json_integer(n > 0 ? strtoll(PQgetvalue(r, 0, 11), NULL, 10)
                                                           : 0));
    json_object_set_new(out, "next", q->limit != 0 && n > (int)q->limit
                                         ? json_string(PQgetvalue(r, (int)q->limit - 1, 0))
                                         : json_null());
    PQclear(r);
    json_object_set_new(out, "store_totals", stores);
    json_object_set_new(out, "totals", tot);
    json_object_set_new(out, "children", arr);
    return out;
}

json_t *admin_child_health(PGconn *c, const char *name, char *err, size_t errlen)
{
    char window[32];
    const char *p[] = { window, name };
    PGresult *r;
    json_t *out, *h = NULL;

    snprintf(window, sizeof window, "%d milliseconds", ADMIN_UP_WINDOW_MS);
    r = db_query(c, "SELECT name, " STATE_SQL ","
                    " to_char(last_health_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                    " last_health::text FROM children WHERE name = $2",
                 2, p, err, errlen);
    if (r == NULL)
        return NULL;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "no child named '%s'", name);
        return NULL;
    }
    if (!PQgetisnull(r, 0, 3))
        h = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    out = json_pack("{s:s, s:s, s:o, s:o}", "name", PQgetvalue(r, 0, 0), "state",
                    PQgetvalue(r, 0, 1), "last_health_at", s_text_or_null(r, 0, 2), "health",
                    h != NULL ? h : json_null());
    PQclear(r);
    return out;
}
