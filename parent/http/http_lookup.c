/* http_lookup: see http_lookup.h. Database calls are synchronous on the listener's thread:
 * one indexed look-up per request, a few ms at most; the credential of a child is checked
 * against the database once per LOOKUP_CRED_TTL_MS and remembered. The rating service is
 * asked through libcurl's multi interface on the same event base, so a slow one holds no
 * thread. */
#include "http/http_lookup.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>

#include "curl_loop.h"
#include "log.h"
#include "lookup_auth.h"
#include "settings.h"
#include "sps/sps_request.h"
#include "util.h"

#define LOOKUP_COUNT_TTL_MS 5000 /* /v1/health reuses a hash count this young */

struct cred {
    char name[LOOKUP_NAME_MAX + 1];
    char token[LOOKUP_TOKEN_HEX_LEN + 1]; /* "" : no enrolled child of that name */
    uint64_t expires_ms;
};

struct rate;

struct svc {
    https_t *h;
    uint8_t secret[LOOKUP_KEY_LEN];
    bool have_secret;
    struct cred creds[LOOKUP_CRED_SLOTS];
    long long count;
    uint64_t count_at;
    curl_loop_t *loop;
    struct rate *rates;
    unsigned nrates;
    uint8_t digests[SPS_BATCH_MAX][SPS_DIGEST_LEN];
};

struct rate {
    struct svc *sv;
    struct evhttp_request *req;
    CURL *easy;
    struct curl_slist *headers;
    char *post;
    struct curl_body ans;
    char child[LOOKUP_NAME_MAX + 1];
    struct rate *prev, *next;
};

static void s_reply_unavailable(struct evhttp_request *req)
{
    https_reply_json(req, 503, "Service Unavailable", json_pack("{s:s}", "status", "database unavailable"));
}

static const char *s_peer(struct evhttp_request *req)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    const char *addr = NULL;
    uint16_t port;

    if (c != NULL)
        evhttp_connection_get_peer(c, (char **)&addr, &port);
    return addr != NULL ? addr : "?";
}

/* --- the database ------------------------------------------------------------------------ */

/* Runs a statement (text parameters, results in `binary` or text form); NULL when the
 * database cannot answer (a broken connection is handed back to the listener). */
static PGresult *s_query(struct svc *sv, const char *sql, int n, const char *const *params,
                         int binary)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        /* a connection found broken (a database restart since the last request) is made
         * again at once for this request, so that it is answered rather than refused */
        PGconn *db = attempt == 0 ? https_db(sv->h) : https_db_reconnect(sv->h);
        PGresult *r;

        if (db == NULL)
            return NULL;
        r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, binary);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            return r;
        if (PQstatus(db) == CONNECTION_OK) {
            https_log_limited(sv->h, "lookup query failed error=\"%s\"", PQresultErrorMessage(r));
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        https_db_lost(sv->h, PQerrorMessage(db));
    }
    return NULL;
}

/* The look-up secret (made by the parent at its start): 0 ok, -1 database away, 1 none yet. */
static int s_secret(struct svc *sv)
{
    PGresult *r;
    size_t bin = 0;
    int rc = 1;

    if (sv->have_secret)
        return 0;
    if ((r = s_query(sv, "SELECT encode(lookup_secret, 'hex') FROM update_server "
                         "WHERE id = 1 AND lookup_secret IS NOT NULL", 0, NULL, 0)) == NULL)
        return -1;
    if (PQntuples(r) == 1 &&
        sodium_hex2bin(sv->secret, sizeof sv->secret, PQgetvalue(r, 0, 0),
                       (size_t)PQgetlength(r, 0, 0), NULL, &bin, NULL) == 0 &&
        bin == sizeof sv->secret) {
        sv->have_secret = true;
        rc = 0;
    }
    PQclear(r);
    return rc;
}

/* --- who is asking (R8.7) ---------------------------------------------------------------------- */

static struct cred *s_slot(struct svc *sv, const char *name)
{
    uint32_t hsh = 2166136261u; /* FNV-1a: names are short and not chosen to collide with
                                 * anything that matters — a collision only costs a query */

    for (const char *p = name; *p; p++)
        hsh = (hsh ^ (uint8_t)*p) * 16777619u;
    return &sv->creds[hsh % LOOKUP_CRED_SLOTS];
}

enum auth { AUTH_OK, AUTH_REFUSED, AUTH_UNAVAILABLE };

static enum auth s_check(struct svc *sv, const char *name, const char *token)
{
    struct cred *c = s_slot(sv, name);
    uint64_t now = now_ms();
    const char *p[] = { name };
    uint8_t pk[LOOKUP_KEY_LEN];
    PGresult *r;

    if (strcmp(c->name, name) != 0 || now >= c->expires_ms) {
        int sec = s_secret(sv);
        if (sec != 0)
            return AUTH_UNAVAILABLE;
        r = s_query(sv, "SELECT public_key FROM children WHERE name = $1 "
                        "AND enrolment = 'enrolled' AND public_key IS NOT NULL", 1, p, 0);
        if (r == NULL)
            return AUTH_UNAVAILABLE;
        strlcpy_p(c->name, name, sizeof c->name);
        c->token[0] = '\0';
        c->expires_ms = now + LOOKUP_CRED_MISS_TTL_MS;
        if (PQntuples(r) == 1 && zmq_z85_decode(pk, PQgetvalue(r, 0, 0)) != NULL &&
            lookup_token(sv->secret, pk, name, c->token) == 0)
            c->expires_ms = now + LOOKUP_CRED_TTL_MS;
        else
            c->token[0] = '\0';
        PQclear(r);
    }
    if (c->token[0] == '\0' || !lookup_token_equal(c->token, token))
        return AUTH_REFUSED;
    return AUTH_OK;
}

/* Replies (401 or 503) and returns false unless the request carries a good credential; on
 * success the child's name is copied out. */
static bool s_authorized(struct svc *sv, struct evhttp_request *req, char name[LOOKUP_NAME_MAX + 1])
{
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    char token[LOOKUP_TOKEN_HEX_LEN + 1];
    enum auth a;

    if (lookup_bearer_parse(auth, name, token) != 0)
        a = AUTH_REFUSED;
    else
        a = s_check(sv, name, token);
    if (a == AUTH_OK)
        return true;
    if (a == AUTH_UNAVAILABLE) {
        s_reply_unavailable(req);
        return false;
    }
    https_log_limited(sv->h, "lookup refused peer=%s reason=\"%s\"", s_peer(req),
                      auth == NULL ? "no credential" : "bad credential");
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"portcullis-lookup\"");
    https_reply_error(req, 401, "Unauthorized",
                      "a child's look-up credential is required (Authorization: Bearer NAME:TOKEN)");
    return false;
}

/* --- POST /v1/lookup, GET /v1/health ------------------------------------------------------------ */

struct s_hit {
    const uint8_t *digest;
    const char *name;
};

static int s_hit_cmp(const void *a, const void *b)
{
    return memcmp(((const struct s_hit *)a)->digest, ((const struct s_hit *)b)->digest,
                  SPS_DIGEST_LEN);
}

/* The parameter is a bytea[] literal of validated hex digests: {\\xHEX,\\xHEX,…}. */
static char *s_array_literal(const uint8_t (*d)[SPS_DIGEST_LEN], size_t n)
{
    char *lit = xmalloc(n * (SPS_HEX_LEN + 4) + 3), *p = lit;

    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            *p++ = ',';
        memcpy(p, "\\\\x", 3);
        sps_request_hex_encode(d[i], p + 3);
        p += 3 + SPS_HEX_LEN;
    }
    *p++ = '}';
    *p = '\0';
    return lit;
}

static bool s_json_body(struct evhttp_request *req, size_t max)
{
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");

    if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
        https_reply_error(req, 415, "Unsupported Media Type", "Content-Type must be application/json");
        return false;
    }
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > max) {
        https_reply_error(req, 413, "Payload Too Large", "request body too large");
        return false;
    }
    return true;
}

static void s_lookup(struct svc *sv, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in), n, nhits = 0;
    char err[256], hex[SPS_HEX_LEN + 1];
    struct s_hit *hits = NULL;
    PGresult *r;
    json_t *list;
    char *lit;

    if (!s_json_body(req, SPS_BODY_MAX))
        return;
    if (sps_request_parse((const char *)evbuffer_pullup(in, -1), len, sv->digests, &n, err,
                          sizeof err) != 0) {
        https_reply_error(req, 400, "Bad Request", err);
        return;
    }
    lit = s_array_literal((const uint8_t (*)[SPS_DIGEST_LEN])sv->digests, n);
    r = s_query(sv, "SELECT sha256, name FROM sps_hashes WHERE sha256 = ANY($1::bytea[])", 1,
                (const char *const *)&lit, 1);
    free(lit);
    if (r == NULL) {
        s_reply_unavailable(req);
        return;
    }
    if (PQntuples(r) > 0)
        hits = xcalloc((size_t)PQntuples(r), sizeof *hits);
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetlength(r, i, 0) != SPS_DIGEST_LEN)
            continue;
        hits[nhits].digest = (const uint8_t *)PQgetvalue(r, i, 0);
        hits[nhits].name = PQgetvalue(r, i, 1);
        nhits++;
    }
    if (nhits > 0) /* hits is NULL when nothing matched: qsort must not see it */
        qsort(hits, nhits, sizeof *hits, s_hit_cmp);
    list = json_array();
    for (size_t i = 0; i < n; i++) {
        struct s_hit key = { .digest = sv->digests[i] }, *hh;
        hh = nhits > 0 ? bsearch(&key, hits, nhits, sizeof *hits, s_hit_cmp) : NULL;
        sps_request_hex_encode(sv->digests[i], hex);
        json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "sha256", hex, "verdict",
                                              hh != NULL ? "malicious" : "unknown", "name",
                                              hh != NULL ? hh->name : ""));
    }
    free(hits);
    PQclear(r);
    https_reply_json(req, 200, "OK", json_pack("{s:o}", "verdicts", list));
}

static void s_health(struct svc *sv, struct evhttp_request *req)
{
    PGresult *r;

    /* a remembered count is not an answer while the database is known to be away */
    if (sv->count < 0 || now_ms() - sv->count_at >= LOOKUP_COUNT_TTL_MS || https_db(sv->h) == NULL) {
        if ((r = s_query(sv, "SELECT count(*) FROM sps_hashes", 0, NULL, 0)) == NULL) {
            s_reply_unavailable(req);
            return;
        }
        sv->count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        sv->count_at = now_ms();
        PQclear(r);
    }
    https_reply_json(req, 200, "OK", json_pack("{s:s,s:I}", "status", "ok", "hashes", (json_int_t)sv->count));
}

/* --- POST /v1/rate: the rating service, asked on the child's behalf ------------------------------ */

char *http_lookup_rate_answer(const char *data, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je), *list, *out, *e;
    size_t i;
    char *text;

    if (root == NULL || !json_is_object(root) ||
        !json_is_array(list = json_object_get(root, "ratings"))) {
        snprintf(err, errlen, "the answer is not {\"ratings\": [...]}");
        json_decref(root);
        return NULL;
    }
    if (json_array_size(list) > LOOKUP_RATE_URLS_MAX) {
        snprintf(err, errlen, "more than %d ratings", LOOKUP_RATE_URLS_MAX);
        json_decref(root);
        return NULL;
    }
    out = json_array();
    json_array_foreach(list, i, e) {
        json_t *u = json_object_get(e, "url"), *l = json_object_get(e, "level");
        json_t *c = json_object_get(e, "category");
        const char *cat = json_is_string(c) ? json_string_value(c) : "";
        if (!json_is_object(e) || !json_is_string(u) || !json_is_integer(l) ||
            json_integer_value(l) < 0 || json_integer_value(l) > 100 ||
            json_string_length(u) > LOOKUP_RATE_URL_MAX ||
            (c != NULL && !json_is_string(c)) || strlen(cat) > LOOKUP_CATEGORY_MAX) {
            snprintf(err, errlen, "rating %zu is not {url, level 0..100, category}", i);
            json_decref(out);
            json_decref(root);
            return NULL;
        }
        json_array_append_new(out, json_pack("{s:s,s:I,s:s}", "url", json_string_value(u),
                                             "level", json_integer_value(l), "category", cat));
    }
    json_decref(root);
    root = json_pack("{s:o}", "ratings", out); /* takes out */
    text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL)
        snprintf(err, errlen, "out of memory");
    return text;
}

/* The URLs of a rating request, re-written for the service: {"urls": [...]}. */
static char *s_rate_request(const char *body, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je), *urls, *u, *out;
    size_t i;
    char *text = NULL;

    if (root == NULL || !json_is_object(root) || !json_is_array(urls = json_object_get(root, "urls"))) {
        snprintf(err, errlen, "the body must be {\"urls\": [\"…\", …]}");
        goto out;
    }
    if (json_array_size(urls) > LOOKUP_RATE_URLS_MAX) {
        snprintf(err, errlen, "at most %d URLs per request", LOOKUP_RATE_URLS_MAX);
        goto out;
    }
    out = json_array();
    json_array_foreach(urls, i, u) {
        if (!json_is_string(u) || json_string_length(u) == 0 ||
            json_string_length(u) > LOOKUP_RATE_URL_MAX) {
            snprintf(err, errlen, "urls[%zu] must be a string of 1 to %d bytes", i,
                     LOOKUP_RATE_URL_MAX);
            json_decref(out);
            goto out;
        }
        json_array_append(out, u);
    }
    {
        json_t *req = json_pack("{s:o}", "urls", out); /* takes out */
        text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
    }
out:
    json_decref(root);
    return text;
}

static void s_rate_free(struct rate *r)
{
    struct svc *sv = r->sv;

    if (r->easy != NULL) {
        curl_loop_remove(sv->loop, r->easy);
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    free(r->post);
    free(r->ans.data);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        sv->rates = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    sv->nrates--;
    free(r);
}

/* The child went away first: nobody to answer, the service's request is dropped. */
static void s_rate_closed(void *arg) { s_rate_free(arg); }

static void s_rate_done(void *arg, void *priv, CURLcode cc)
{
    struct rate *r = priv;
    long status = 0;
    char err[256], *answer = NULL;

    (void)arg;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK)
        snprintf(err, sizeof err, "%s", r->ans.too_big ? "answer too large" : curl_easy_strerror(cc));
    else if (status != 200)
        snprintf(err, sizeof err, "HTTP status %ld", status);
    else
        answer = http_lookup_rate_answer(r->ans.data != NULL ? r->ans.data : "", r->ans.len, err,
                                         sizeof err);
    https_conn_forget(r->sv->h, evhttp_request_get_connection(r->req));
    if (answer != NULL) {
        struct evbuffer *out = evbuffer_new();
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type", "application/json");
        evbuffer_add(out, answer, strlen(answer));
        evhttp_send_reply(r->req, 200, "OK", out);
        evbuffer_free(out);
        free(answer);
    } else {
        char msg[320];
        https_log_limited(r->sv->h, "rating service failed child=%s error=\"%s\"", r->child, err);
        snprintf(msg, sizeof msg, "rating service: %s", err);
        https_reply_error(r->req, cc == CURLE_OPERATION_TIMEDOUT ? 504 : 502,
                          cc == CURLE_OPERATION_TIMEDOUT ? "Gateway Timeout" : "Bad Gateway", msg);
    }
    s_rate_free(r);
}

/* wrs.service_url and wrs.timeout_ms as the administrator set them (read at each request, so
 * a change applies at once; one indexed read of two rows). 0 ok, -1 database away. */
static int s_rate_settings(struct svc *sv, char *url, size_t urllen, long *timeout_ms)
{
    PGresult *r = s_query(sv, "SELECT name, value FROM settings WHERE section = 'wrs' "
                              "AND name IN ('service_url', 'timeout_ms')", 0, NULL, 0);

    if (r == NULL)
        return -1;
    const struct setting_def *d = settings_def(SETTING_WRS_TIMEOUT_MS);
    int64_t v;

    url[0] = '\0';
    *timeout_ms = strtol(d->default_value, NULL, 10); /* the settings table's, not a copy */
    for (int i = 0; i < PQntuples(r); i++) {
        if (strcmp(PQgetvalue(r, i, 0), "service_url") == 0)
            strlcpy_p(url, PQgetvalue(r, i, 1), urllen);
        else if (parse_int64(PQgetvalue(r, i, 1), &v) == 0 && v >= d->min && v <= d->max)
            *timeout_ms = (long)v;
    }
    PQclear(r);
    return 0;
}

static void s_rate(struct svc *sv, struct evhttp_request *req, const char *child)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    char url[2100], err[256];
    long timeout_ms;
    struct rate *r;
    char *post;

    if (!s_json_body(req, LOOKUP_RATE_BODY_MAX))
        return;
    if ((post = s_rate_request((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in),
                               err, sizeof err)) == NULL) {
        https_reply_error(req, 400, "Bad Request", err);
        return;
    }
    if (s_rate_settings(sv, url, sizeof url, &timeout_ms) != 0) {
        free(post);
        s_reply_unavailable(req);
        return;
    }
    if (url[0] == '\0') {
        free(post);
        https_reply_error(req, 503, "Service Unavailable",
                          "no rating service configured (wrs.service_url)");
        return;
    }
    if (sv->nrates >= LOOKUP_RATE_ACTIVE_MAX) {
        free(post);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        https_reply_error(req, 503, "Service Unavailable", "too many rating requests at once");
        return;
    }
    if (sv->loop == NULL && (sv->loop = curl_loop_new(https_base(sv->h), s_rate_done, sv)) == NULL) {
        free(post);
        https_reply_error(req, 503, "Service Unavailable", "rating client unavailable");
        return;
    }
    r = xcalloc(1, sizeof *r);
    r->sv = sv;
    r->req = req;
    r->post = post;
    strlcpy_p(r->child, child, sizeof r->child);
    r->easy = curl_loop_easy(sv->loop, url, timeout_ms, r, &r->ans, LOOKUP_RATE_ANSWER_MAX);
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    r->headers = curl_slist_append(r->headers, "Expect:");
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->post);
    r->next = sv->rates;
    if (sv->rates != NULL)
        sv->rates->prev = r;
    sv->rates = r;
    sv->nrates++;
    https_conn_on_close(sv->h, req, s_rate_closed, r);
    curl_loop_add(sv->loop, r->easy);
}

/* --- routing and life ------------------------------------------------------------------------ */

static void s_handle(https_t *h, struct evhttp_request *req, const char *rest, void *arg)
{
    struct svc *sv = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool lookup = strcmp(rest, "lookup") == 0, health = strcmp(rest, "health") == 0;
    bool rate = strcmp(rest, "rate") == 0;
    char child[LOOKUP_NAME_MAX + 1];

    (void)h;
    if (!lookup && !health && !rate) {
        https_reply_error(req, 404, "Not Found",
                          "no such resource: POST /v1/lookup, GET /v1/health or POST /v1/rate");
        return;
    }
    if (m != (health ? EVHTTP_REQ_GET : EVHTTP_REQ_POST)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", health ? "GET" : "POST");
        https_reply_error(req, 405, "Method Not Allowed", health ? "use GET" : "use POST");
        return;
    }
    if (!s_authorized(sv, req, child))
        return;
    if (lookup)
        s_lookup(sv, req);
    else if (health)
        s_health(sv, req);
    else
        s_rate(sv, req, child);
}

static void s_free(void *arg)
{
    struct svc *sv = arg;

    while (sv->rates != NULL) /* none once evhttp closed the connections; belt and braces */
        s_rate_free(sv->rates);
    curl_loop_free(&sv->loop);
    sodium_memzero(sv->secret, sizeof sv->secret);
    free(sv);
}

int http_lookup_mount(https_t *h)
{
    struct svc *sv = xcalloc(1, sizeof *sv);

    sv->h = h;
    sv->count = -1;
    if (https_on_free(h, s_free, sv) != 0) {
        free(sv);
        return -1;
    }
    return https_route(h, "/v1/", s_handle, sv); /* sv is freed with h either way */
}
