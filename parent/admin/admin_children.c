/* admin_children: enrolment tokens, approval and removal of children, and the fleet status
 * (R6.2, R7.1, R7.2, R7.5). Liveness is judged from the parent's last contact, so a status
 * read while the parent itself is down still shows children as down, never stale "up". */
#include "admin/admin.h"

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

/* Cluster totals of the children's last reported quarantine and archive usage (R5.12). */
static json_t *s_store_totals(const json_t *children)
{
    json_t *tot = json_object(), *ch, *st;
    size_t i, k;

    json_array_foreach(children, i, ch) {
        json_array_foreach(json_object_get(json_object_get(ch, "health"), "stores"), k, st) {
            const char *kind = json_string_value(json_object_get(st, "kind"));
            json_t *t;
            if (kind == NULL || kind[0] == '\0')
                continue;
            if ((t = json_object_get(tot, kind)) == NULL) {
                t = json_pack("{s:I, s:I, s:I, s:i}", "bytes", (json_int_t)0, "files",
                              (json_int_t)0, "quota_bytes", (json_int_t)0, "children", 0);
                json_object_set_new(tot, kind, t);
            }
            static const char *const fields[] = { "bytes", "files", "quota_bytes" };
            for (size_t f = 0; f < ARRAY_LEN(fields); f++)
                json_object_set_new(t, fields[f], json_integer(
                    json_integer_value(json_object_get(t, fields[f])) +
                    json_integer_value(json_object_get(st, fields[f]))));
            json_object_set_new(t, "children", json_integer(
                json_integer_value(json_object_get(t, "children")) + 1));
        }
    }
    return tot;
}

/* Cluster totals (R7.5): children by state, and the sums of each child's last reported rate,
 * message counters and report spool. The counters are the scan services' since their last
 * start, so a total falls back when a child's scan service restarts. */
static json_t *s_fleet_totals(const json_t *children)
{
    static const char *const stats[] = { "connections", "messages_relayed",
                                         "messages_quarantined", "messages_deleted",
                                         "messages_tempfailed", "messages_rejected",
                                         "viruses_found", "scan_exceptions", "bytes_relayed" };
    static const char *const health[] = { "messages_per_minute", "spool_records",
                                          "spool_bytes" };
    json_int_t sums[ARRAY_LEN(stats) + ARRAY_LEN(health)] = { 0 };
    json_int_t up = 0, down = 0, pending = 0;
    json_t *tot = json_object(), *ch;
    size_t i;

    json_array_foreach(children, i, ch) {
        const char *state = json_string_value(json_object_get(ch, "state"));
        const json_t *h = json_object_get(ch, "health"), *st = json_object_get(h, "stats");

        if (state != NULL && strcmp(state, "up") == 0)
            up++;
        else if (state != NULL && strcmp(state, "pending") == 0)
            pending++;
        else
            down++;
        for (size_t k = 0; k < ARRAY_LEN(stats); k++)
            sums[k] += json_integer_value(json_object_get(st, stats[k]));
        for (size_t k = 0; k < ARRAY_LEN(health); k++)
            sums[ARRAY_LEN(stats) + k] += json_integer_value(json_object_get(h, health[k]));
    }
    json_object_set_new(tot, "children", json_integer((json_int_t)json_array_size(children)));
    json_object_set_new(tot, "children_up", json_integer(up));
    json_object_set_new(tot, "children_down", json_integer(down));
    json_object_set_new(tot, "children_pending", json_integer(pending));
    for (size_t k = 0; k < ARRAY_LEN(stats); k++)
        json_object_set_new(tot, stats[k], json_integer(sums[k]));
    for (size_t k = 0; k < ARRAY_LEN(health); k++)
        json_object_set_new(tot, health[k], json_integer(sums[ARRAY_LEN(stats) + k]));
    return tot;
}

json_t *admin_status(PGconn *c, char *err, size_t errlen)
{
    char window[32];
    const char *p[] = { window };
    uint64_t current;
    PGresult *r;
    json_t *out, *arr;

    snprintf(window, sizeof window, "%d milliseconds", ADMIN_UP_WINDOW_MS);
    if (admin_config_version(c, &current, err, errlen) != 0)
        return NULL;
    r = db_query(c,
                 "SELECT name, enrolment, "
                 " enrolment = 'enrolled' AND connected AND last_seen > now() - $1::interval,"
                 " to_char(last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
                 " extract(epoch FROM now() - last_seen)::float8,"
                 " applied_config_version, config_error, address, software_version,"
                 " last_health::text, public_key "
                 "FROM children ORDER BY name", 1, p, err, errlen);
    if (r == NULL)
        return NULL;
    out = json_object();
    arr = json_array();
    json_object_set_new(out, "config_version", json_integer((json_int_t)current));
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_object();
        bool pending = strcmp(PQgetvalue(r, i, 1), "pending") == 0;
        bool up = PQgetvalue(r, i, 2)[0] == 't';
        json_t *health = NULL;

        json_object_set_new(o, "name", json_string(PQgetvalue(r, i, 0)));
        json_object_set_new(o, "state", json_string(pending ? "pending" : up ? "up" : "down"));
        json_object_set_new(o, "enrolment", json_string(PQgetvalue(r, i, 1)));
        json_object_set_new(o, "last_heartbeat", s_text_or_null(r, i, 3));
        json_object_set_new(o, "last_heartbeat_age_s",
                            PQgetisnull(r, i, 4) ? json_null() : json_real(atof(PQgetvalue(r, i, 4))));
        if (PQgetisnull(r, i, 5)) {
            json_object_set_new(o, "config_version", json_null());
            json_object_set_new(o, "config_current", json_false());
        } else {
            uint64_t v = strtoull(PQgetvalue(r, i, 5), NULL, 10);
            json_object_set_new(o, "config_version", json_integer((json_int_t)v));
            json_object_set_new(o, "config_current", json_boolean(v == current));
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
        json_array_append_new(arr, o);
    }
    PQclear(r);
    json_object_set_new(out, "store_totals", s_store_totals(arr));
    json_object_set_new(out, "totals", s_fleet_totals(arr));
    json_object_set_new(out, "children", arr);
    return out;
}
