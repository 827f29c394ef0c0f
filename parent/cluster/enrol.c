/* enrol: see enrol.h. Tokens are compared by their SHA-256 only, and consumed in the same
 * transaction that enrols the key, so a token works exactly once. */
#include "cluster/enrol.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "db/db.h"
#include "keys.h"
#include "log.h"

#define ENROL_STATUS(s) PORTCULLIS__ENROLL_REPLY__STATUS__##s

static void s_refuse(Portcullis__EnrollReply *reply, const char *name, const char *address,
                     const char *key, const char *msg)
{
    reply->status = ENROL_STATUS(REFUSED);
    log_warn("enrolment refused name=%s address=%s key=%.8s… reason=\"%s\"", name, address, key,
             msg);
}

static bool s_token_consume(PGconn *db, const char *name, const char *token, char *err,
                            size_t errlen)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof hash + 3];
    const char *p[] = { hex, name };
    PGresult *r;
    bool ok;

    if (strlen(token) != ADMIN_TOKEN_HEX)
        return false;
    crypto_hash_sha256(hash, (const unsigned char *)token, ADMIN_TOKEN_HEX);
    memcpy(hex, "\\x", 2);
    sodium_bin2hex(hex + 2, sizeof hex - 2, hash, sizeof hash);
    r = db_query(db, "UPDATE enrol_tokens SET used_at = now() WHERE token_hash = $1::bytea "
                     "AND child_name = $2 AND used_at IS NULL AND expires_at > now() RETURNING id",
                 2, p, err, errlen);
    if (r == NULL)
        return false;
    ok = PQntuples(r) == 1;
    PQclear(r);
    return ok;
}

/* R8.3: pending requests are capped in all and per source address, so that a stranger cannot
 * fill the children table (or the administrator's list). Refreshing an existing request of
 * the same key and name is always allowed. 0: room; -1 with msg filled (refused) or with msg
 * empty and err filled (database). */
static int s_pending_over_limit(PGconn *db, const char *name, const char *address, char *msg,
                                size_t msglen, char *err, size_t errlen)
{
    char window[32], total[16], per[16];
    const char *p[] = { name, address, window };
    PGresult *r;
    long all, recent;
    bool exists;

    msg[0] = '\0';
    snprintf(window, sizeof window, "%d seconds", ENROL_PENDING_WINDOW_S);
    r = db_query(db, "SELECT count(*) FILTER (WHERE enrolment = 'pending'), "
                     " count(*) FILTER (WHERE enrolment = 'pending' AND address = $2 "
                     "   AND created_at > now() - $3::interval), "
                     " bool_or(name = $1) IS TRUE FROM children",
                 3, p, err, errlen);
    if (r == NULL)
        return -1;
    all = atol(PQgetvalue(r, 0, 0));
    recent = atol(PQgetvalue(r, 0, 1));
    exists = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    if (exists)
        return 0;
    snprintf(total, sizeof total, "%d", ENROL_PENDING_MAX);
    snprintf(per, sizeof per, "%d", ENROL_PENDING_PER_ADDRESS);
    if (all >= ENROL_PENDING_MAX) {
        snprintf(msg, msglen, "too many pending enrolment requests (%s); the administrator must "
                              "approve or remove some first, or give this host a token", total);
        return -1;
    }
    if (recent >= ENROL_PENDING_PER_ADDRESS) {
        snprintf(msg, msglen, "too many enrolment requests from %s (%s within %d s); try later "
                              "or use a token", address, per, ENROL_PENDING_WINDOW_S);
        return -1;
    }
    return 0;
}

void enrol_handle(PGconn *db, const char *key, const char *address,
                  const Portcullis__EnrollRequest *req, Portcullis__EnrollReply *reply,
                  char *msg, size_t msglen)
{
    const char *name = req->name;
    const char *p[] = { name, key, address };
    char err[512];
    PGresult *r;

    reply->message = msg;
    if (!admin_child_name_valid(name)) {
        snprintf(msg, msglen, "'%.64s' is not a valid child name", name);
        s_refuse(reply, "-", address, key, msg);
        return;
    }
    r = db_query(db, "SELECT enrolment, public_key = $2, public_key FROM children WHERE name = $1",
                 2, p, err, sizeof err);
    if (r == NULL)
        goto dberr;
    if (PQntuples(r) == 1) {
        bool enrolled = strcmp(PQgetvalue(r, 0, 0), "enrolled") == 0;
        bool same = PQgetvalue(r, 0, 1)[0] == 't';
        char fp[KEYS_FP_LEN + 1] = "?";

        (void)keys_fingerprint(PQgetvalue(r, 0, 2), fp);
        PQclear(r);
        if (enrolled && same) {
            reply->status = ENROL_STATUS(ENROLLED);
            snprintf(msg, msglen, "enrolled");
            return;
        }
        if (enrolled) {
            snprintf(msg, msglen, "the name %s is enrolled with another key; remove it on the "
                                  "parent (`portcullis child remove %s`) to enrol this host",
                     name, name);
            s_refuse(reply, name, address, key, msg);
            return;
        }
        /* Pending: the key that asked first keeps the name (R8.3); a token still decides. */
        if (!same && (req->token == NULL || req->token[0] == '\0')) {
            snprintf(msg, msglen, "the name %s is already requested by another key (fingerprint "
                                  "%s); if that request is not yours, remove it on the parent "
                                  "(`portcullis child remove %s`) and ask again",
                     name, fp, name);
            s_refuse(reply, name, address, key, msg);
            return;
        }
    } else {
        PQclear(r);
    }

    if (req->token != NULL && req->token[0] != '\0') {
        if (db_begin(db, err, sizeof err) != 0)
            goto dberr;
        if (!s_token_consume(db, name, req->token, err, sizeof err)) {
            db_rollback(db);
            snprintf(msg, msglen, "the enrolment token is invalid, used or expired; make a new "
                                  "one on the parent with `portcullis child enroll-token %s`",
                     name);
            s_refuse(reply, name, address, key, msg);
            return;
        }
        if (db_exec(db, "INSERT INTO children (name, public_key, enrolment, address, enrolled_at) "
                        "VALUES ($1, $2, 'enrolled', $3, now()) ON CONFLICT (name) DO UPDATE SET "
                        "public_key = EXCLUDED.public_key, enrolment = 'enrolled', "
                        "address = EXCLUDED.address, enrolled_at = now()",
                    3, p, err, sizeof err) != 0 ||
            db_commit(db, err, sizeof err) != 0) {
            db_rollback(db);
            goto dberr;
        }
        reply->status = ENROL_STATUS(ENROLLED);
        snprintf(msg, msglen, "enrolled with a one-time token");
        log_info("child enrolled name=%s address=%s key=%.8s… by=token", name, address, key);
        snprintf(err, sizeof err, "child %s enrolled with a one-time token from %s", name, address);
        db_event(db, "cluster", "info", NULL, err);
        return;
    }

    /* No token: record (or refresh) the pending request for an administrator to approve. */
    if (s_pending_over_limit(db, name, address, msg, msglen, err, sizeof err) != 0) {
        if (msg[0] == '\0')
            goto dberr;
        s_refuse(reply, name, address, key, msg);
        return;
    }
    r = db_query(db, "INSERT INTO children (name, public_key, enrolment, address) "
                     "VALUES ($1, $2, 'pending', $3) ON CONFLICT (name) DO UPDATE SET "
                     "address = EXCLUDED.address WHERE children.enrolment = 'pending' "
                     "AND children.public_key = EXCLUDED.public_key "
                     "RETURNING (xmax = 0) AS inserted", 3, p, err, sizeof err);
    if (r == NULL)
        goto dberr;
    if (PQntuples(r) == 0) { /* another key took the name since we looked */
        PQclear(r);
        snprintf(msg, msglen, "the name %s was just requested by another key; see `portcullis "
                              "child list` on the parent", name);
        s_refuse(reply, name, address, key, msg);
        return;
    }
    if (PQgetvalue(r, 0, 0)[0] == 't') {
        char fp[KEYS_FP_LEN + 1] = "?";
        (void)keys_fingerprint(key, fp);
        log_info("enrolment pending name=%s address=%s fingerprint=%s: approve with "
                 "`portcullis child approve %s --fingerprint %s` after comparing it with the "
                 "child's log", name, address, fp, name, fp);
        snprintf(err, sizeof err, "child %s asks to enrol from %s (key fingerprint %s)", name,
                 address, fp);
        db_event(db, "cluster", "info", NULL, err);
    }
    PQclear(r);
    reply->status = ENROL_STATUS(PENDING);
    snprintf(msg, msglen, "waiting for an administrator: `portcullis child approve %s "
                          "--fingerprint F` on the parent", name);
    return;
dberr:
    /* Most likely the key is enrolled under another name (unique key), or the database is down. */
    log_err("enrolment of %s from %s not decided: %s", name, address, err);
    reply->status = ENROL_STATUS(REFUSED);
    snprintf(msg, msglen, "the parent could not record the request (key already used by another "
                          "child, or database unavailable); see the parent's log");
}
