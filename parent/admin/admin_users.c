/* admin_users: see admin_users.h. The last enabled admin is protected under a table lock so
 * that two concurrent changes cannot both remove "the other" admin. */
#include "admin/admin_users.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "log.h"
#include "util.h"

#define TIME_ISO "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
#define ADMIN_LOCK_USERS "LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"

/* A statement whose one parameter is a row id ("UPDATE … WHERE id = $1"). */
static int s_exec_id(PGconn *c, const char *sql, int64_t id, char *err, size_t errlen)
{
    char text[24];
    const char *p[] = { text };

    snprintf(text, sizeof text, "%lld", (long long)id);
    return db_exec(c, sql, 1, p, err, errlen);
}

bool admin_user_name_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > ADMIN_USER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || strchr("._@-", ch) == NULL))
            return false;
    }
    return true;
}

static bool s_role_valid(const char *role)
{
    return strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "viewer") == 0;
}

static int s_password_hash(const char *password, char out[crypto_pwhash_STRBYTES], char *err,
                           size_t errlen)
{
    size_t n = strlen(password);

    if (n < ADMIN_PASSWORD_MIN || n > ADMIN_PASSWORD_MAX) {
        snprintf(err, errlen, "a password has %d to %d characters", ADMIN_PASSWORD_MIN,
                 ADMIN_PASSWORD_MAX);
        return -1;
    }
    /* argon2id with libsodium's interactive limits: ~64 MiB and a few tens of ms a log-in */
    if (crypto_pwhash_str_alg(out, password, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        snprintf(err, errlen, "cannot hash the password: out of memory");
        return -1;
    }
    return 0;
}

int admin_user_add(PGconn *c, const char *name, const char *role, const char *password,
                   char *err, size_t errlen)
{
    char hash[crypto_pwhash_STRBYTES];
    const char *p[] = { name, role, hash };
    PGresult *r;

    if (!admin_user_name_valid(name)) {
        snprintf(err, errlen, "a user name has 1 to %d letters, digits, '.', '_', '@' or '-', "
                 "starting with a letter or digit", ADMIN_USER_NAME_MAX);
        return -1;
    }
    if (!s_role_valid(role)) {
        snprintf(err, errlen, "role must be admin, operator or viewer");
        return -1;
    }
    if (s_password_hash(password, hash, err, errlen) != 0)
        return -1;
    r = db_query(c, "INSERT INTO users (name, role, pw_hash) VALUES ($1, $2, $3) "
                    "ON CONFLICT (name) DO NOTHING RETURNING id", 3, p, err, errlen);
    sodium_memzero(hash, sizeof hash);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "user %s exists already", name);
        return -1;
    }
    PQclear(r);
    log_info("user added name=%s role=%s", name, role);
    return 0;
}

/* Inside a transaction holding the users lock: would the change leave no enabled admin? */
static int s_last_admin_guard(PGconn *c, const char *name, char *err, size_t errlen)
{
    const char *p[] = { name };
    PGresult *r;
    long others;

    r = db_query(c, "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled "
                    "AND name <> $1", 1, p, err, errlen);
    if (r == NULL)
        return -1;
    others = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (others == 0) {
        snprintf(err, errlen, "refused: %s is the last enabled admin; make another admin first",
                 name);
        return -1;
    }
    return 0;
}

/* Fills role and disabled of name; 0 ok, 1 none (err says so), -1 database. */
static int s_user_get(PGconn *c, const char *name, char role[ADMIN_ROLE_MAX], bool *disabled,
                      char *err, size_t errlen)
{
    const char *p[] = { name };
    PGresult *r = db_query(c, "SELECT role, disabled FROM users WHERE name = $1", 1, p, err,
                           errlen);

    if (r == NULL)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "no such user: %s", name);
        return 1;
    }
    strlcpy_p(role, PQgetvalue(r, 0, 0), ADMIN_ROLE_MAX);
    *disabled = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return 0;
}

int admin_user_update(PGconn *c, const char *name, const char *role, const char *password,
                      int disabled, char *err, size_t errlen)
{
    char hash[crypto_pwhash_STRBYTES] = "", cur_role[ADMIN_ROLE_MAX], dis[8];
    bool cur_disabled;
    const char *p[4];

    if (role != NULL && !s_role_valid(role)) {
        snprintf(err, errlen, "role must be admin, operator or viewer");
        return -1;
    }
    if (password != NULL && s_password_hash(password, hash, err, errlen) != 0)
        return -1;
    if (db_begin(c, err, errlen) != 0)
        return -1;
    if (db_exec(c, ADMIN_LOCK_USERS, 0, NULL, err, errlen) != 0 ||
        s_user_get(c, name, cur_role, &cur_disabled, err, errlen) != 0)
        goto fail;
    /* an enabled admin stops being one: demoted or disabled */
    if (strcmp(cur_role, "admin") == 0 && !cur_disabled &&
        ((role != NULL && strcmp(role, "admin") != 0) || disabled == 1) &&
        s_last_admin_guard(c, name, err, errlen) != 0)
        goto fail;
    snprintf(dis, sizeof dis, "%d", disabled);
    p[0] = name;
    p[1] = role;
    p[2] = password != NULL ? hash : NULL;
    p[3] = dis;
    if (db_exec(c, "UPDATE users SET role = coalesce($2, role), pw_hash = coalesce($3, pw_hash), "
                   "disabled = CASE WHEN $4::int < 0 THEN disabled ELSE $4::int = 1 END "
                   "WHERE name = $1", 4, p, err, errlen) != 0)
        goto fail;
    /* new password or disabled: whatever was logged in with the old state ends now */
    if ((password != NULL || disabled == 1) &&
        db_exec(c, "DELETE FROM api_credentials WHERE user_id = "
                   "(SELECT id FROM users WHERE name = $1)", 1, p, err, errlen) != 0)
        goto fail;
    if (db_commit(c, err, errlen) != 0)
        goto fail;
    sodium_memzero(hash, sizeof hash);
    log_info("user changed name=%s%s%s%s%s", name, role ? " role=" : "", role ? role : "",
             password ? " password=new" : "",
             disabled < 0 ? "" : disabled ? " disabled" : " enabled");
    return 0;
fail:
    sodium_memzero(hash, sizeof hash);
    db_rollback(c);
    return -1;
}

int admin_user_remove(PGconn *c, const char *name, char *err, size_t errlen)
{
    char role[ADMIN_ROLE_MAX];
    bool disabled;
    const char *p[] = { name };

    if (db_begin(c, err, errlen) != 0)
        return -1;
    if (db_exec(c, ADMIN_LOCK_USERS, 0, NULL, err, errlen) != 0 ||
        s_user_get(c, name, role, &disabled, err, errlen) != 0)
        goto fail;
    if (strcmp(role, "admin") == 0 && !disabled && s_last_admin_guard(c, name, err, errlen) != 0)
        goto fail;
    if (db_exec(c, "DELETE FROM users WHERE name = $1", 1, p, err, errlen) != 0 ||
        db_commit(c, err, errlen) != 0)
        goto fail;
    log_info("user removed name=%s", name);
    return 0;
fail:
    db_rollback(c);
    return -1;
}

json_t *admin_user_list(PGconn *c, char *err, size_t errlen)
{
    PGresult *r = db_query(c, "SELECT name, role, disabled, "
                              " to_char(created_at AT TIME ZONE 'UTC', " TIME_ISO "), "
                              " coalesce(to_char(last_login AT TIME ZONE 'UTC', " TIME_ISO "), '') "
                              "FROM users ORDER BY name", 0, NULL, err, errlen);
    json_t *arr;

    if (r == NULL)
        return NULL;
    arr = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *last = PQgetvalue(r, i, 4);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:s, s:o}",
                                             "name", PQgetvalue(r, i, 0),
                                             "role", PQgetvalue(r, i, 1),
                                             "disabled", PQgetvalue(r, i, 2)[0] == 't',
                                             "created_at", PQgetvalue(r, i, 3),
                                             "last_login", *last ? json_string(last) : json_null()));
    }
    PQclear(r);
    return json_pack("{s:o}", "users", arr);
}

/* A hash to verify against when the user does not exist, so that a wrong name takes as long
 * as a wrong password and log-in answers do not tell which names exist. */
static char s_dummy_hash[crypto_pwhash_STRBYTES];
static pthread_once_t s_dummy_once = PTHREAD_ONCE_INIT;

static void s_dummy_init(void)
{
    char pw[32];

    randombytes_buf(pw, sizeof pw - 1);
    pw[sizeof pw - 1] = '\0';
    for (size_t i = 0; i + 1 < sizeof pw; i++)
        pw[i] = (char)('a' + (unsigned char)pw[i] % 26);
    if (crypto_pwhash_str_alg(s_dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
        s_dummy_hash[0] = '\0';
}

int admin_user_check_password(PGconn *c, const char *name, const char *password, int64_t *id,
                              char role[ADMIN_ROLE_MAX], char *err, size_t errlen)
{
    const char *p[] = { name };
    PGresult *r;
    bool found, ok;
    size_t n = strlen(password);

    r = db_query(c, "SELECT id, role, pw_hash, disabled FROM users WHERE name = $1", 1, p, err,
                 errlen);
    if (r == NULL)
        return -1;
    found = PQntuples(r) == 1;
    if (n > ADMIN_PASSWORD_MAX) {
        ok = false;
    } else if (found) {
        ok = crypto_pwhash_str_verify(PQgetvalue(r, 0, 2), password, n) == 0 &&
             PQgetvalue(r, 0, 3)[0] != 't';
    } else {
        pthread_once(&s_dummy_once, s_dummy_init);
        /* same work as for a real user; the answer is no either way */
        volatile int same_work = crypto_pwhash_str_verify(s_dummy_hash, password, n);
        (void)same_work;
        ok = false;
    }
    if (!ok) {
        PQclear(r);
        snprintf(err, errlen, "wrong user name or password");
        return 1;
    }
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    strlcpy_p(role, PQgetvalue(r, 0, 1), ADMIN_ROLE_MAX);
    PQclear(r);
    return s_exec_id(c, "UPDATE users SET last_login = now() WHERE id = $1", *id, err, errlen);
}

/* hex of the SHA-256 of the secret's text: what api_credentials.token_hash holds */
static void s_secret_hash_hex(const char *secret, char out[2 * crypto_hash_sha256_BYTES + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, (const unsigned char *)secret, strlen(secret));
    sodium_bin2hex(out, 2 * crypto_hash_sha256_BYTES + 1, h, sizeof h);
}

int admin_credential_create(PGconn *c, int64_t user_id, const char *kind, const char *label,
                            int64_t ttl_s, char secret[ADMIN_CRED_SECRET_HEX + 1],
                            char expires_at[40], int64_t *id, char *err, size_t errlen)
{
    unsigned char raw[ADMIN_CRED_SECRET_BYTES];
    char hash[2 * crypto_hash_sha256_BYTES + 1], uid[24], ttl[24], max[24];
    const char *p[] = { uid, kind, hash, label, ttl, max };
    PGresult *r;

    if (strcmp(kind, "session") != 0 && strcmp(kind, "token") != 0) {
        snprintf(err, errlen, "credential kind must be session or token");
        return -1;
    }
    if (ttl_s < 1 || ttl_s > ADMIN_API_TOKEN_TTL_MAX_S) {
        snprintf(err, errlen, "a token lives 1 s to %d days", ADMIN_API_TOKEN_TTL_MAX_S / 86400);
        return -1;
    }
    if (strlen(label) > ADMIN_API_LABEL_MAX) {
        snprintf(err, errlen, "a token label has at most %d characters", ADMIN_API_LABEL_MAX);
        return -1;
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(secret, ADMIN_CRED_SECRET_HEX + 1, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    s_secret_hash_hex(secret, hash);
    snprintf(uid, sizeof uid, "%lld", (long long)user_id);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
    snprintf(max, sizeof max, "%d", ADMIN_CRED_PER_USER_MAX);
    /* expired rows of the user go first; the cap counts live ones */
    if (db_exec(c, "DELETE FROM api_credentials WHERE user_id = $1 AND expires_at <= now()", 1, p,
                err, errlen) != 0)
        return -1;
    r = db_query(c, "INSERT INTO api_credentials (user_id, kind, token_hash, label, expires_at) "
                    "SELECT $1, $2, decode($3, 'hex'), $4, now() + make_interval(secs => $5::bigint) "
                    "WHERE (SELECT count(*) FROM api_credentials WHERE user_id = $1) < $6::int "
                    "RETURNING id, to_char(expires_at AT TIME ZONE 'UTC', " TIME_ISO ")",
                 6, p, err, errlen);
    if (r == NULL) {
        sodium_memzero(secret, ADMIN_CRED_SECRET_HEX + 1);
        return -1;
    }
    if (PQntuples(r) == 0) {
        PQclear(r);
        sodium_memzero(secret, ADMIN_CRED_SECRET_HEX + 1);
        snprintf(err, errlen, "refused: the user has %d live sessions and tokens already; "
                 "revoke some first", ADMIN_CRED_PER_USER_MAX);
        return -1;
    }
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    strlcpy_p(expires_at, PQgetvalue(r, 0, 1), 40);
    PQclear(r);
    return 0;
}

int admin_credential_lookup(PGconn *c, const char *secret, int64_t *cred_id, int64_t *user_id,
                            char name[ADMIN_USER_NAME_MAX + 1], char role[ADMIN_ROLE_MAX],
                            char kind[ADMIN_ROLE_MAX], char *err, size_t errlen)
{
    char hash[2 * crypto_hash_sha256_BYTES + 1];
    const char *p[] = { hash };
    PGresult *r;
    bool stale;

    if (strlen(secret) != ADMIN_CRED_SECRET_HEX ||
        strspn(secret, "0123456789abcdef") != ADMIN_CRED_SECRET_HEX)
        return 1;
    s_secret_hash_hex(secret, hash);
    r = db_query(c, "SELECT a.id, u.id, u.name, u.role, a.kind, "
                    " a.last_used IS NULL OR a.last_used < now() - interval '1 minute' "
                    "FROM api_credentials a JOIN users u ON u.id = a.user_id "
                    "WHERE a.token_hash = decode($1, 'hex') AND a.expires_at > now() "
                    "AND NOT u.disabled", 1, p, err, errlen);
    if (r == NULL)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return 1;
    }
    *cred_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *user_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    strlcpy_p(name, PQgetvalue(r, 0, 2), ADMIN_USER_NAME_MAX + 1);
    strlcpy_p(role, PQgetvalue(r, 0, 3), ADMIN_ROLE_MAX);
    strlcpy_p(kind, PQgetvalue(r, 0, 4), ADMIN_ROLE_MAX);
    stale = PQgetvalue(r, 0, 5)[0] == 't';
    PQclear(r);
    if (stale && s_exec_id(c, "UPDATE api_credentials SET last_used = now() WHERE id = $1",
                           *cred_id, err, errlen) != 0)
        return -1;
    return 0;
}

int admin_credential_revoke(PGconn *c, int64_t user_id, int64_t cred_id, char *err,
                            size_t errlen)
{
    char uid[24], cid[24];
    const char *p[] = { cid, uid };
    PGresult *r;
    int n;

    snprintf(uid, sizeof uid, "%lld", (long long)user_id);
    snprintf(cid, sizeof cid, "%lld", (long long)cred_id);
    r = db_query(c, "DELETE FROM api_credentials WHERE id = $1 "
                    "AND ($2::bigint = 0 OR user_id = $2::bigint) RETURNING id", 2, p, err, errlen);
    if (r == NULL)
        return -1;
    n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        snprintf(err, errlen, "no such token: %lld", (long long)cred_id);
        return -1;
    }
    return 0;
}

json_t *admin_credential_list(PGconn *c, int64_t user_id, const char *kind, char *err,
                              size_t errlen)
{
    char uid[24];
    const char *p[] = { uid, kind };
    PGresult *r;
    json_t *arr;

    snprintf(uid, sizeof uid, "%lld", (long long)user_id);
    r = db_query(c, "SELECT a.id, u.name, a.kind, a.label, "
                    " to_char(a.created_at AT TIME ZONE 'UTC', " TIME_ISO "), "
                    " to_char(a.expires_at AT TIME ZONE 'UTC', " TIME_ISO "), "
                    " coalesce(to_char(a.last_used AT TIME ZONE 'UTC', " TIME_ISO "), '') "
                    "FROM api_credentials a JOIN users u ON u.id = a.user_id "
                    "WHERE a.expires_at > now() AND ($1::bigint = 0 OR a.user_id = $1::bigint) "
                    "AND ($2::text IS NULL OR a.kind = $2) ORDER BY a.id", 2, p, err, errlen);
    if (r == NULL)
        return NULL;
    arr = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *last = PQgetvalue(r, i, 6);
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:o}",
                                             "id", (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10),
                                             "user", PQgetvalue(r, i, 1),
                                             "kind", PQgetvalue(r, i, 2),
                                             "label", PQgetvalue(r, i, 3),
                                             "created_at", PQgetvalue(r, i, 4),
                                             "expires_at", PQgetvalue(r, i, 5),
                                             "last_used", *last ? json_string(last) : json_null()));
    }
    PQclear(r);
    return json_pack("{s:o}", "tokens", arr);
}

int admin_user_id(PGconn *c, const char *name, int64_t *id, char *err, size_t errlen)
{
    const char *p[] = { name };
    PGresult *r = db_query(c, "SELECT id FROM users WHERE name = $1", 1, p, err, errlen);

    if (r == NULL)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        snprintf(err, errlen, "no such user: %s", name);
        return 1;
    }
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}
