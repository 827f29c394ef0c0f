/* admin_update: see admin_update.h. Small bytea values travel as "\x<hex>" text parameters;
 * the package itself as one binary parameter (no hex doubling of up to UPDATE_PKG_MAX). */
#include "admin/admin_update.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "db/db.h"
#include "fs.h"
#include "log.h"
#include "lookup_auth.h"
#include "util.h"

#define KEY_FILE_MAX 256 /* bytes of update.key / update.pub (64 or 128 hex digits) */

/* --- the update key ------------------------------------------------------------------------ */

static int s_key_read(const char *path, struct admin_update_key *k, char *err, size_t errlen)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    struct stat st;
    size_t len, bin = 0;
    char *text;
    int rc = -1;

    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s: readable by group or others (mode %03o): chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    if (fs_read_file(path, KEY_FILE_MAX, &text, &len, err, errlen) != 0)
        return -1;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (len != 2 * sizeof seed ||
        sodium_hex2bin(seed, sizeof seed, text, len, NULL, &bin, NULL) != 0 || bin != sizeof seed)
        snprintf(err, errlen, "%s: not an update key (%zu hex digits expected)", path,
                 2 * sizeof seed);
    else if (crypto_sign_seed_keypair(k->pk, k->sk, seed) != 0)
        snprintf(err, errlen, "%s: cannot derive the key pair", path);
    else
        rc = 0;
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(text, len);
    free(text);
    return rc;
}

static int s_pub_write(const char *dir, const uint8_t pk[UPDATE_PK_LEN], char *err, size_t errlen)
{
    char path[4096], hex[2 * UPDATE_PK_LEN + 2];

    snprintf(path, sizeof path, "%s/%s", dir, ADMIN_UPDATE_PUB_FILE);
    sodium_bin2hex(hex, sizeof hex - 1, pk, UPDATE_PK_LEN);
    strcat(hex, "\n");
    return fs_write_atomic(path, hex, strlen(hex), 0644, err, errlen);
}

int admin_update_key_load_or_create(const char *state_dir, struct admin_update_key *k,
                                    char *err, size_t errlen)
{
    uint8_t seed[crypto_sign_SEEDBYTES];
    char path[4096], tmp[4096 + 32], hex[2 * crypto_sign_SEEDBYTES + 2], rnd[17];
    int fd, rc = -1;

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s", state_dir, ADMIN_UPDATE_KEY_FILE);
    if (access(path, F_OK) == 0)
        return s_key_read(path, k, err, errlen);
    if (fs_mkdir_p(state_dir, 0700, err, errlen) != 0)
        return -1;
    /* Written whole under a temporary name, then linked: whoever links first wins. */
    random_hex(rnd, 8);
    snprintf(tmp, sizeof tmp, "%s.tmp.%s", path, rnd);
    randombytes_buf(seed, sizeof seed);
    sodium_bin2hex(hex, sizeof hex - 1, seed, sizeof seed);
    strcat(hex, "\n");
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex) || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    fs_fsync_dir(state_dir);
    if (s_key_read(path, k, err, errlen) != 0 || s_pub_write(state_dir, k->pk, err, errlen) != 0)
        goto out;
    log_info("update key created path=%s", path);
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(hex, sizeof hex);
    return rc;
}

/* --- the server row ------------------------------------------------------------------------ */

static void s_bytea_param(char *out, size_t outlen, const uint8_t *b, size_t n)
{
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, outlen - 2, b, n);
}

/* Makes the row (with a fresh token) if it is missing. */
static int s_server_row(PGconn *c, char *err, size_t errlen)
{
    char token[2 * ADMIN_UPDATE_TOKEN_BYTES + 1];
    const char *p[] = { token };

    random_hex(token, ADMIN_UPDATE_TOKEN_BYTES);
    return db_exec(c, "INSERT INTO update_server (id, token) VALUES (1, $1) "
                      "ON CONFLICT (id) DO NOTHING", 1, p, err, errlen);
}

int admin_update_server_publish(PGconn *c, const uint8_t pk[UPDATE_PK_LEN], const char *tls_pin,
                                const char *base_url, char *err, size_t errlen)
{
    char pkx[2 * UPDATE_PK_LEN + 3];
    const char *p[] = { pkx, tls_pin, base_url };
    uint64_t v;
    PGresult *r;
    bool changed, current;

    s_bytea_param(pkx, sizeof pkx, pk, UPDATE_PK_LEN);
    if (db_begin(c, err, errlen) != 0)
        return -1;
    if (s_server_row(c, err, errlen) != 0)
        goto fail;
    /* IS DISTINCT FROM: only a real change makes a row (and maybe a version). */
    r = db_query(c, "UPDATE update_server SET public_key = $1::bytea, "
                    " tls_pin = coalesce($2, tls_pin), base_url = coalesce($3, base_url) "
                    "WHERE id = 1 AND (public_key IS DISTINCT FROM $1::bytea "
                    " OR tls_pin IS DISTINCT FROM coalesce($2, tls_pin) "
                    " OR base_url IS DISTINCT FROM coalesce($3, base_url)) RETURNING 1",
                 3, p, err, errlen);
    if (r == NULL)
        goto fail;
    changed = PQntuples(r) > 0;
    PQclear(r);
    {
        /* R8.7: the look-up key, made once; children derive their credentials from its public
         * half, so its first appearance is a new configuration version. */
        uint8_t lpk[LOOKUP_KEY_LEN], lsk[LOOKUP_KEY_LEN];
        char lskx[2 * LOOKUP_KEY_LEN + 3];
        const char *lp[] = { lskx };
        uint64_t lv;
        bool made;
        lookup_keypair(lpk, lsk);
        s_bytea_param(lskx, sizeof lskx, lsk, sizeof lsk);
        sodium_memzero(lsk, sizeof lsk);
        r = db_query(c, "UPDATE update_server SET lookup_secret = $1::bytea "
                        "WHERE id = 1 AND lookup_secret IS NULL RETURNING 1", 1, lp, err, errlen);
        sodium_memzero(lskx, sizeof lskx);
        if (r == NULL)
            goto fail;
        made = PQntuples(r) > 0;
        PQclear(r);
        if (made) {
            log_info("look-up key made (R8.7)");
            if (admin_config_bump(c, "look-up key made", &lv, err, errlen) != 0)
                goto fail;
        }
    }
    if (changed) {
        if ((r = db_query(c, "SELECT EXISTS (SELECT 1 FROM components WHERE current)", 0, NULL,
                          err, errlen)) == NULL)
            goto fail;
        current = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        /* Children fetching a current version need the new address or pin now. */
        if (current && admin_config_bump(c, "update server changed", &v, err, errlen) != 0)
            goto fail;
    }
    return db_commit(c, err, errlen);
fail:
    db_rollback(c);
    return -1;
}

/* --- packages ------------------------------------------------------------------------------- */

static int s_make_current(PGconn *c, const char *component, const char *version,
                          uint64_t *config_version, char *err, size_t errlen)
{
    const char *p[] = { component, version };
    char reason[160];
    PGresult *r;
    int n;

    /* Two statements: the partial unique index is checked row by row. */
    if (db_exec(c, "UPDATE components SET current = false WHERE component = $1 AND current "
                   "AND version <> $2", 2, p, err, errlen) != 0)
        return -1;
    r = db_query(c, "UPDATE components SET current = true WHERE component = $1 AND version = $2 "
                    "AND NOT current RETURNING 1", 2, p, err, errlen);
    if (r == NULL)
        return -1;
    n = PQntuples(r);
    PQclear(r);
    *config_version = 0;
    if (n == 0)
        return 0; /* already current: nothing to push */
    snprintf(reason, sizeof reason, "update %s %s current", component, version);
    return admin_config_bump(c, reason, config_version, err, errlen);
}

int admin_update_import(PGconn *c, const struct admin_update_key *k, const char *component,
                        const char *version, const void *data, size_t len, bool make_current,
                        uint64_t *config_version, size_t *nfiles, char *err, size_t errlen)
{
    uint8_t digest[UPDATE_DIGEST_LEN], sig[UPDATE_SIG_LEN];
    char dx[2 * UPDATE_DIGEST_LEN + 3], sx[2 * UPDATE_SIG_LEN + 3], size[24], files[24];
    char why[512];
    uint64_t total;
    const char *vals[] = { component, version, dx, sx, size, data, files };
    int lens[] = { 0, 0, 0, 0, 0, (int)len, 0 };
    int fmts[] = { 0, 0, 0, 0, 0, 1, 0 };
    PGresult *r;
    int n;

    *config_version = 0;
    if (!update_pkg_component_valid(component)) {
        snprintf(err, errlen, "unknown component \"%s\": clamav or light", component);
        return -1;
    }
    if (!update_pkg_version_valid(version)) {
        snprintf(err, errlen, "version \"%s\" refused: 1..%d letters, digits, '.', '_', '-', "
                 "starting with a letter or digit", version, UPDATE_VERSION_MAX);
        return -1;
    }
    if (len == 0 || len > UPDATE_PKG_MAX) {
        snprintf(err, errlen, "package of %zu bytes refused: 1..%llu bytes", len,
                 (unsigned long long)UPDATE_PKG_MAX);
        return -1;
    }
    if (update_pkg_extract_mem(data, len, NULL, nfiles, &total, why, sizeof why) != 0) {
        snprintf(err, errlen, "package refused: %s", why);
        return -1;
    }
    crypto_hash_sha256(digest, data, len);
    if (update_pkg_sign(component, version, digest, k->sk, sig) != 0) {
        snprintf(err, errlen, "cannot sign the package");
        return -1;
    }
    s_bytea_param(dx, sizeof dx, digest, sizeof digest);
    s_bytea_param(sx, sizeof sx, sig, sizeof sig);
    snprintf(size, sizeof size, "%zu", len);
    snprintf(files, sizeof files, "%zu", *nfiles);
    if (db_begin(c, err, errlen) != 0)
        return -1;
    {
        char pkx[2 * UPDATE_PK_LEN + 3];
        const char *p[] = { pkx };
        s_bytea_param(pkx, sizeof pkx, k->pk, UPDATE_PK_LEN);
        /* The children verify with the key that signed: recorded with the package. */
        if (s_server_row(c, err, errlen) != 0 ||
            db_exec(c, "UPDATE update_server SET public_key = $1::bytea WHERE id = 1 "
                       "AND public_key IS DISTINCT FROM $1::bytea", 1, p, err, errlen) != 0)
            goto fail;
    }
    r = PQexecParams(c, "INSERT INTO components (component, version, sha256, signature, size, "
                        "package, files) VALUES ($1, $2, $3::bytea, $4::bytea, $5::bigint, $6, "
                        "$7::int) ON CONFLICT (component, version) DO NOTHING RETURNING 1",
                     7, NULL, vals, lens, fmts, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "database: %s", PQresultErrorMessage(r));
        err[strcspn(err, "\n")] = '\0';
        PQclear(r);
        goto fail;
    }
    n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        snprintf(err, errlen, "%s version %s is already imported (make it current with "
                 "`portcullis update use %s %s`)", component, version, component, version);
        goto fail;
    }
    if (make_current && s_make_current(c, component, version, config_version, err, errlen) != 0)
        goto fail;
    return db_commit(c, err, errlen);
fail:
    db_rollback(c);
    return -1;
}

int admin_update_use(PGconn *c, const char *component, const char *version,
                     uint64_t *config_version, char *err, size_t errlen)
{
    const char *p[] = { component, version };
    PGresult *r;
    int n;

    if (db_begin(c, err, errlen) != 0)
        return -1;
    if ((r = db_query(c, "SELECT 1 FROM components WHERE component = $1 AND version = $2 "
                         "FOR UPDATE", 2, p, err, errlen)) == NULL)
        goto fail;
    n = PQntuples(r);
    PQclear(r);
    if (n == 0) {
        snprintf(err, errlen, "no %s version %s: see `portcullis update list`", component, version);
        goto fail;
    }
    if (s_make_current(c, component, version, config_version, err, errlen) != 0)
        goto fail;
    return db_commit(c, err, errlen);
fail:
    db_rollback(c);
    return -1;
}

json_t *admin_update_list(PGconn *c, char *err, size_t errlen)
{
    PGresult *r = db_query(c, "SELECT component, version, encode(sha256, 'hex'), size, files, "
                              " current, to_char(imported_at AT TIME ZONE 'UTC', "
                              " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                              "FROM components ORDER BY component, imported_at DESC, version",
                           0, NULL, err, errlen);
    json_t *out, *arr;

    if (r == NULL)
        return NULL;
    arr = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:I,s:I,s:b,s:s}",
            "component", PQgetvalue(r, i, 0), "version", PQgetvalue(r, i, 1),
            "sha256", PQgetvalue(r, i, 2), "size", (json_int_t)strtoll(PQgetvalue(r, i, 3), NULL, 10),
            "files", (json_int_t)strtoll(PQgetvalue(r, i, 4), NULL, 10),
            "current", PQgetvalue(r, i, 5)[0] == 't', "imported_at", PQgetvalue(r, i, 6)));
    PQclear(r);
    out = json_object();
    json_object_set_new(out, "components", arr);
    return out;
}

/* --- the snapshot ---------------------------------------------------------------------------- */

static bool s_hex_bytes(const char *hex, uint8_t *out, size_t n)
{
    size_t bin = 0;

    return strlen(hex) == 2 * n && sodium_hex2bin(out, n, hex, 2 * n, NULL, &bin, NULL) == 0 &&
           bin == n;
}

int admin_update_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err,
                               size_t errlen)
{
    PGresult *srv, *r;
    const char *base = "";
    int n;

    srv = db_query(c, "SELECT encode(public_key, 'hex'), tls_pin, base_url, token, "
                      "encode(lookup_secret, 'hex') FROM update_server WHERE id = 1", 0, NULL,
                   err, errlen);
    if (srv == NULL)
        return -1;
    if (PQntuples(srv) == 1) {
        uint8_t pk[UPDATE_PK_LEN];
        if (s_hex_bytes(PQgetvalue(srv, 0, 0), pk, sizeof pk)) {
            snap->update_public_key.data = xmalloc(sizeof pk);
            memcpy(snap->update_public_key.data, pk, sizeof pk);
            snap->update_public_key.len = sizeof pk;
        }
        snap->update_tls_pin = xstrdup(PQgetvalue(srv, 0, 1));
        base = PQgetvalue(srv, 0, 2);
        snap->update_token = xstrdup(PQgetvalue(srv, 0, 3));
        uint8_t lsk[LOOKUP_KEY_LEN], lpk[LOOKUP_KEY_LEN];
        if (s_hex_bytes(PQgetvalue(srv, 0, 4), lsk, sizeof lsk) && lookup_public_of(lsk, lpk) == 0) {
            snap->lookup_public_key.data = xmalloc(sizeof lpk);
            memcpy(snap->lookup_public_key.data, lpk, sizeof lpk);
            snap->lookup_public_key.len = sizeof lpk;
        }
        sodium_memzero(lsk, sizeof lsk);
    }
    r = db_query(c, "SELECT component, version, encode(sha256, 'hex'), encode(signature, 'hex'), "
                    "size FROM components WHERE current ORDER BY component", 0, NULL, err, errlen);
    if (r == NULL) {
        PQclear(srv);
        admin_update_snapshot_clear(snap);
        return -1;
    }
    n = PQntuples(r);
    snap->updates = n > 0 ? xcalloc((size_t)n, sizeof *snap->updates) : NULL;
    for (int i = 0; i < n && (size_t)i < WIRE_UPDATES_MAX; i++) {
        Portcullis__ComponentUpdate *u = xcalloc(1, sizeof *u);
        char url[ADMIN_UPDATE_URL_MAX + 2 * UPDATE_VERSION_MAX];
        portcullis__component_update__init(u);
        u->component = xstrdup(PQgetvalue(r, i, 0));
        u->version = xstrdup(PQgetvalue(r, i, 1));
        u->sha256 = xstrdup(PQgetvalue(r, i, 2));
        u->signature.data = xmalloc(UPDATE_SIG_LEN);
        if (s_hex_bytes(PQgetvalue(r, i, 3), u->signature.data, UPDATE_SIG_LEN))
            u->signature.len = UPDATE_SIG_LEN;
        u->size = strtoull(PQgetvalue(r, i, 4), NULL, 10);
        /* No address yet (no parent has started its HTTPS server): the child says so. */
        if (*base != '\0')
            snprintf(url, sizeof url, "%s/v1/updates/%s/%s", base, u->component, u->version);
        else
            url[0] = '\0';
        u->url = xstrdup(url);
        snap->updates[snap->n_updates++] = u;
    }
    PQclear(r);
    PQclear(srv);
    return 0;
}

void admin_update_snapshot_clear(Portcullis__ConfigSnapshot *snap)
{
    for (size_t i = 0; i < snap->n_updates; i++) {
        Portcullis__ComponentUpdate *u = snap->updates[i];
        free(u->component);
        free(u->version);
        free(u->url);
        free(u->sha256);
        free(u->signature.data);
        free(u);
    }
    free(snap->updates);
    snap->updates = NULL;
    snap->n_updates = 0;
    free(snap->update_public_key.data);
    snap->update_public_key.data = NULL;
    snap->update_public_key.len = 0;
    free(snap->lookup_public_key.data);
    snap->lookup_public_key.data = NULL;
    snap->lookup_public_key.len = 0;
    /* protobuf-c's empty default string is a shared constant: never freed */
    if (snap->update_tls_pin != NULL && snap->update_tls_pin != protobuf_c_empty_string)
        free(snap->update_tls_pin);
    if (snap->update_token != NULL && snap->update_token != protobuf_c_empty_string)
        free(snap->update_token);
    snap->update_tls_pin = (char *)protobuf_c_empty_string;
    snap->update_token = (char *)protobuf_c_empty_string;
}
