/* http_updates: GET /v1/updates/<component>/<version> on the parent's HTTPS listener (R3.7):
 * a package streamed from PostgreSQL in HTTP_UPDATES_SLICE pieces, each read when the last
 * has been written out, so a download holds one slice of memory whatever the package size.
 * Bearer token required (compared in constant time); 401 without it, 404 unknown. */
#include "http/http_updates.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_update.h"
#include "log.h"
#include "update_pkg.h"
#include "util.h"

#include <unistd.h>

#define HTTP_UPDATES_SLICE (1024 * 1024)  /* bytes read from the database at a time */
#define HTTP_UPDATES_ACTIVE_MAX 32        /* downloads served at once; more get 503 */
#define HTTP_UPDATES_TOKEN_MAX 128        /* bytes of a bearer token */

struct dl {
    https_t *h;
    struct evhttp_request *req;
    char component[16], version[UPDATE_VERSION_MAX + 1];
    uint64_t off, total;
};

static unsigned s_active;

static void s_dl_free(struct dl *d)
{
    s_active--;
    free(d);
}

static void s_on_conn_close(void *arg)
{
    struct dl *d = arg;

    log_warn("update download aborted component=%s version=%s sent=%" PRIu64 " of %" PRIu64,
             d->component, d->version, d->off, d->total);
    s_dl_free(d);
}

/* true when the request carries "Authorization: Bearer <the token>". */
static bool s_authorized(https_t *h, struct evhttp_request *req, bool *db_down)
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    PGconn *db = https_db(h);
    PGresult *r;
    bool ok = false;

    *db_down = db == NULL;
    if (db == NULL || auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
        strlen(auth + 7) > HTTP_UPDATES_TOKEN_MAX)
        return false;
    r = PQexecParams(db, "SELECT token FROM update_server WHERE id = 1", 0, NULL, NULL, NULL,
                     NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (PQstatus(db) != CONNECTION_OK) {
            https_db_lost(h, PQerrorMessage(db));
            *db_down = true;
        }
    } else if (PQntuples(r) == 1) {
        const char *want = PQgetvalue(r, 0, 0);
        size_t n = strlen(want);
        ok = n > 0 && strlen(auth + 7) == n && sodium_memcmp(want, auth + 7, n) == 0;
    }
    PQclear(r);
    return ok;
}

static void s_next_slice(struct evhttp_connection *evcon, void *arg);

/* Sends the next slice, or ends the reply. A database failure mid-way closes the connection
 * (the reply is marked Connection: close) and the child sees a short body. */
static void s_send_slice(struct dl *d)
{
    char off[24], len[24];
    const char *p[] = { d->component, d->version, off, len };
    uint64_t want = d->total - d->off < HTTP_UPDATES_SLICE ? d->total - d->off : HTTP_UPDATES_SLICE;
    PGconn *db;
    PGresult *r;
    struct evbuffer *buf;

    if (want == 0) {
        https_conn_forget(d->h, evhttp_request_get_connection(d->req));
        evhttp_send_reply_end(d->req);
        log_info("update download done component=%s version=%s bytes=%" PRIu64, d->component,
                 d->version, d->total);
        s_dl_free(d);
        return;
    }
    snprintf(off, sizeof off, "%" PRIu64, d->off + 1); /* from 1; int: ≤ UPDATE_PKG_MAX */
    snprintf(len, sizeof len, "%" PRIu64, want);
    db = https_db(d->h);
    r = db != NULL ? PQexecParams(db, "SELECT substring(package FROM $3::int FOR $4::int) "
                                      "FROM components WHERE component = $1 AND version = $2",
                                  4, NULL, p, NULL, NULL, 1)
                   : NULL;
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
        PQgetlength(r, 0, 0) == 0) {
        if (db != NULL && PQstatus(db) != CONNECTION_OK)
            https_db_lost(d->h, PQerrorMessage(db));
        log_err("update download cut component=%s version=%s at=%" PRIu64 ": package not readable",
                d->component, d->version, d->off);
        PQclear(r);
        https_conn_forget(d->h, evhttp_request_get_connection(d->req));
        evhttp_send_reply_end(d->req); /* short body, then the connection closes */
        s_dl_free(d);
        return;
    }
    buf = evbuffer_new();
    evbuffer_add(buf, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    d->off += (uint64_t)PQgetlength(r, 0, 0);
    PQclear(r);
    evhttp_send_reply_chunk_with_cb(d->req, buf, s_next_slice, d);
    evbuffer_free(buf);
}

static void s_next_slice(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    s_send_slice(arg);
}

static void s_handle(https_t *h, struct evhttp_request *req, const char *rest, void *arg)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    char component[16], version[UPDATE_VERSION_MAX + 1], clen[24];
    const char *slash = strchr(rest, '/');
    const char *p[] = { component, version };
    bool db_down;
    PGresult *r;
    struct dl *d;

    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_add_header(out, "Allow", "GET");
        https_reply_error(req, 405, "Method Not Allowed", "use GET");
        return;
    }
    if (!s_authorized(h, req, &db_down)) {
        if (db_down) {
            https_reply_error(req, 503, "Service Unavailable", "database unavailable");
            return;
        }
        evhttp_add_header(out, "WWW-Authenticate", "Bearer");
        https_reply_error(req, 401, "Unauthorized", "a valid bearer token is required");
        return;
    }
    if (slash == NULL || (size_t)(slash - rest) >= sizeof component ||
        strlen(slash + 1) >= sizeof version) {
        https_reply_error(req, 404, "Not Found", "no such package");
        return;
    }
    memcpy(component, rest, (size_t)(slash - rest));
    component[slash - rest] = '\0';
    strlcpy_p(version, slash + 1, sizeof version);
    if (!update_pkg_component_valid(component) || !update_pkg_version_valid(version)) {
        https_reply_error(req, 404, "Not Found", "no such package");
        return;
    }
    if (s_active >= HTTP_UPDATES_ACTIVE_MAX) {
        evhttp_add_header(out, "Retry-After", "10");
        https_reply_error(req, 503, "Service Unavailable", "too many downloads at once");
        return;
    }
    r = PQexecParams(https_db(h), "SELECT octet_length(package) FROM components "
                                  "WHERE component = $1 AND version = $2",
                     2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        https_reply_error(req, 503, "Service Unavailable", "database unavailable");
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        https_reply_error(req, 404, "Not Found", "no such package");
        return;
    }
    d = xcalloc(1, sizeof *d);
    s_active++;
    d->h = h;
    d->req = req;
    strlcpy_p(d->component, component, sizeof d->component);
    strlcpy_p(d->version, version, sizeof d->version);
    d->total = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    snprintf(clen, sizeof clen, "%" PRIu64, d->total);
    evhttp_add_header(out, "Content-Type", "application/octet-stream");
    evhttp_add_header(out, "Content-Length", clen);
    evhttp_add_header(out, "Connection", "close"); /* a cut body must show as one */
    log_info("update download start component=%s version=%s bytes=%" PRIu64 " peer=%s",
             component, version, d->total,
             evhttp_request_get_host(req) != NULL ? evhttp_request_get_host(req) : "?");
    evhttp_send_reply_start(req, 200, "OK");
    https_conn_on_close(h, req, s_on_conn_close, d);
    s_send_slice(d);
}

int http_updates_mount(https_t *h)
{
    return https_route(h, "/v1/updates/", s_handle, NULL);
}

/* https_public_url, else https://HOST:PORT from https_listen, a wildcard host replaced by
 * the host of cluster_public_endpoint or this host's name. */
static void s_base_url(const conf_t *conf, char *out, size_t outlen)
{
    const char *pub = conf_get(conf, "https_public_url"), *listen = conf_get(conf, "https_listen");
    const char *colon = strrchr(listen, ':');
    char host[256] = "";
    size_t hl = colon != NULL ? (size_t)(colon - listen) : 0;

    if (*pub != '\0') {
        strlcpy_p(out, pub, outlen);
        for (size_t n = strlen(out); n > 0 && out[n - 1] == '/'; n--)
            out[n - 1] = '\0';
        return;
    }
    if (hl > 0 && hl < sizeof host) {
        memcpy(host, listen, hl);
        host[hl] = '\0';
    }
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0 || strcmp(host, "::") == 0 ||
        host[0] == '\0') {
        const char *ep = conf_get(conf, "cluster_public_endpoint");
        const char *h0 = strstr(ep, "://"), *h1;
        host[0] = '\0';
        if (h0 != NULL && (h1 = strrchr(h0 + 3, ':')) != NULL && (size_t)(h1 - h0 - 3) < sizeof host) {
            memcpy(host, h0 + 3, (size_t)(h1 - h0 - 3));
            host[h1 - h0 - 3] = '\0';
        }
        if (host[0] == '\0' && gethostname(host, sizeof host) != 0)
            strlcpy_p(host, "localhost", sizeof host);
    }
    snprintf(out, outlen, "https://%s:%s", host, colon != NULL ? colon + 1 : "7713");
}

int http_updates_start(const conf_t *conf, PGconn *db, https_t **out, char *err, size_t errlen)
{
    struct admin_update_key k;
    char url[ADMIN_UPDATE_URL_MAX];
    const char *listen = conf_get(conf, "https_listen");
    https_t *h = NULL;
    int rc;

    *out = NULL;
    err[0] = '\0';
    if (admin_update_key_load_or_create(conf_get(conf, "state_dir"), &k, err, errlen) != 0)
        return -1;
    sodium_memzero(k.sk, sizeof k.sk); /* the parent only publishes; the CLI signs */
    if (*listen == '\0') {
        log_warn("https_listen is empty: children cannot download component updates from this parent");
        return admin_update_server_publish(db, k.pk, NULL, NULL, err, errlen);
    }
    struct https_options o = { .dsn = conf_get(conf, "db"), .listen = listen,
                               .state_dir = conf_get(conf, "state_dir"),
                               .cert = conf_get(conf, "https_cert"),
                               .key = conf_get(conf, "https_key") };
    if ((h = https_new(&o, err, errlen)) == NULL)
        return -1;
    s_base_url(conf, url, sizeof url);
    if (http_updates_mount(h) != 0 ||
        admin_update_server_publish(db, k.pk, https_pin(h), url, err, errlen) != 0) {
        if (err[0] == '\0')
            snprintf(err, errlen, "https: cannot mount the update route");
        https_free(&h);
        return -1;
    }
    log_info("updates served url=%s/v1/updates/", url);
    rc = 0;
    *out = h;
    return rc;
}
