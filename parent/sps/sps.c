/* sps: see sps.h. One event base, one evhttp, one PGconn, all owned by the thread that runs
 * the loop. Database calls are synchronous: one indexed look-up per request, a few ms at most;
 * replicas (--sps-only) scale it out. A tick reconnects with backoff and notices stop. */
#include "sps/sps.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sps/sps_request.h"
#include "util.h"

#define SPS_TICK_MS 200              /* how often the loop checks stop and reconnects */
#define SPS_BACKOFF_MIN_MS 1000      /* first reconnect delay after the database goes away */
#define SPS_BACKOFF_MAX_MS 32000     /* reconnect delay ceiling (doubling from the minimum) */
#define SPS_LOG_INTERVAL_MS 10000    /* at most one error line per this interval */
#define SPS_COUNT_TTL_MS 5000        /* /v1/health reuses a hash count this young */
#define SPS_CONNECT_TIMEOUT "3"      /* seconds libpq may take to connect (blocks the loop) */
#define SPS_STATEMENT_TIMEOUT "5s"   /* a look-up slower than this is a failure, not a wait */
#define SPS_LISTEN_MAX 300           /* bytes of a listen address */

static const char s_sql_lookup[] = "SELECT sha256, name FROM sps_hashes WHERE sha256 = ANY($1::bytea[])";
static const char s_sql_count[] = "SELECT count(*) FROM sps_hashes";

struct sps {
    char *dsn;
    char listen[SPS_LISTEN_MAX];
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    volatile sig_atomic_t *ext_stop;
    atomic_int stop;
    pthread_t thread;
    bool threaded;

    PGconn *db;
    uint64_t retry_at;     /* monotonic ms of the next connect attempt */
    uint64_t backoff_ms;
    long long count;       /* hashes in the table, -1 unknown */
    uint64_t count_at;

    uint64_t log_at;       /* rate limit of error lines */
    unsigned log_dropped;

    struct evhttp_connection *conns[SPS_CONN_MAX];
    size_t nconns;
    uint8_t digests[SPS_BATCH_MAX][SPS_DIGEST_LEN];
};

__attribute__((format(printf, 2, 3)))
static void s_log_limited(sps_t *s, const char *fmt, ...)
{
    uint64_t now = now_ms();
    char line[1024];
    va_list ap;

    if (s->log_at != 0 && now - s->log_at < SPS_LOG_INTERVAL_MS) {
        s->log_dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s->log_dropped > 0)
        log_warn("%s suppressed=%u", line, s->log_dropped);
    else
        log_warn("%s", line);
    s->log_at = now;
    s->log_dropped = 0;
}

static void s_one_line(char *m)
{
    for (char *p = m; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    for (size_t n = strlen(m); n > 0 && m[n - 1] == ' '; n--)
        m[n - 1] = '\0';
}

/* --- database ------------------------------------------------------------------------ */

static void s_db_lost(sps_t *s, const char *why)
{
    char m[512];

    strlcpy_p(m, why, sizeof m);
    s_one_line(m);
    s_log_limited(s, "sps database unavailable error=\"%s\" retry_ms=%llu", m,
                  (unsigned long long)s->backoff_ms);
    PQfinish(s->db);
    s->db = NULL;
    s->count = -1;
    s->retry_at = now_ms() + s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > SPS_BACKOFF_MAX_MS ? SPS_BACKOFF_MAX_MS : s->backoff_ms * 2;
}

static int s_prepare(sps_t *s, const char *name, const char *sql, int nparams)
{
    PGresult *r = PQprepare(s->db, name, sql, nparams, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if (!ok)
        s_db_lost(s, PQresultErrorMessage(r));
    PQclear(r);
    return ok ? 0 : -1;
}

/* Connects now (ignoring the backoff); 0 when the connection is ready for look-ups. */
static int s_db_connect(sps_t *s)
{
    const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
    const char *vals[] = { s->dsn, SPS_CONNECT_TIMEOUT, "portcullis-sps", NULL };
    PGresult *r;

    PQfinish(s->db);
    s->db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(s->db) != CONNECTION_OK) {
        s_db_lost(s, PQerrorMessage(s->db));
        return -1;
    }
    r = PQexec(s->db, "SET statement_timeout = '" SPS_STATEMENT_TIMEOUT "'");
    PQclear(r);
    if (s_prepare(s, "sps_lookup", s_sql_lookup, 1) != 0 ||
        s_prepare(s, "sps_count", s_sql_count, 0) != 0)
        return -1;
    if (s->backoff_ms > SPS_BACKOFF_MIN_MS)
        log_info("sps database connected");
    s->backoff_ms = SPS_BACKOFF_MIN_MS;
    s->log_at = 0;
    return 0;
}

static bool s_db_ready(sps_t *s)
{
    if (s->db != NULL)
        return true;
    if (now_ms() < s->retry_at)
        return false;
    return s_db_connect(s) == 0;
}

/* Runs a prepared statement; on a broken connection reconnects once and retries, so the first
 * request after a database restart is answered. NULL when the database cannot answer. */
static PGresult *s_db_exec(sps_t *s, const char *stmt, int nparams, const char *const *params)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *r;

        if (attempt == 0 ? !s_db_ready(s) : s_db_connect(s) != 0)
            return NULL;
        r = PQexecPrepared(s->db, stmt, nparams, params, NULL, NULL, 1);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            return r;
        if (PQstatus(s->db) == CONNECTION_OK) {
            char m[512];
            strlcpy_p(m, PQresultErrorMessage(r), sizeof m);
            s_one_line(m);
            s_log_limited(s, "sps query failed statement=%s error=\"%s\"", stmt, m);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        s_db_lost(s, PQerrorMessage(s->db));
    }
    return NULL;
}

static long long s_db_count(sps_t *s)
{
    PGresult *r;
    uint64_t be = 0;

    if (s->count >= 0 && now_ms() - s->count_at < SPS_COUNT_TTL_MS && s->db != NULL)
        return s->count;
    r = s_db_exec(s, "sps_count", 0, NULL);
    if (r == NULL)
        return -1;
    if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 8) {
        const unsigned char *p = (const unsigned char *)PQgetvalue(r, 0, 0);
        for (int i = 0; i < 8; i++)
            be = be << 8 | p[i];
        s->count = (long long)be;
        s->count_at = now_ms();
    }
    PQclear(r);
    return s->count;
}

/* --- HTTP ----------------------------------------------------------------------------- */

static void s_reply_json(struct evhttp_request *req, int code, const char *reason, json_t *j)
{
    struct evbuffer *out = evbuffer_new();
    char *text = json_dumps(j, JSON_COMPACT);

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (text != NULL)
        evbuffer_add(out, text, strlen(text));
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
    free(text);
    json_decref(j);
}

static void s_reply_error(struct evhttp_request *req, int code, const char *reason,
                          const char *message)
{
    s_reply_json(req, code, reason, json_pack("{s:s}", "error", message));
}

static void s_reply_unavailable(struct evhttp_request *req)
{
    s_reply_json(req, 503, "Service Unavailable", json_pack("{s:s}", "status", "database unavailable"));
}

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

static void s_handle_lookup(sps_t *s, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    size_t len = evbuffer_get_length(in), n, nhits = 0;
    char err[256], hex[SPS_HEX_LEN + 1];
    struct s_hit *hits = NULL;
    PGresult *r;
    json_t *list;
    char *lit;

    if (ctype != NULL && strncasecmp(ctype, "application/json", 16) != 0) {
        s_reply_error(req, 415, "Unsupported Media Type", "Content-Type must be application/json");
        return;
    }
    if (len > SPS_BODY_MAX) {
        s_reply_error(req, 413, "Payload Too Large", "request body too large");
        return;
    }
    if (sps_request_parse((const char *)evbuffer_pullup(in, -1), len, s->digests, &n, err,
                          sizeof err) != 0) {
        s_reply_error(req, 400, "Bad Request", err);
        return;
    }
    lit = s_array_literal((const uint8_t (*)[SPS_DIGEST_LEN])s->digests, n);
    r = s_db_exec(s, "sps_lookup", 1, (const char *const *)&lit);
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
        struct s_hit key = { .digest = s->digests[i] }, *h;
        h = nhits > 0 ? bsearch(&key, hits, nhits, sizeof *hits, s_hit_cmp) : NULL;
        sps_request_hex_encode(s->digests[i], hex);
        json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "sha256", hex, "verdict",
                                              h != NULL ? "malicious" : "unknown", "name",
                                              h != NULL ? h->name : ""));
    }
    free(hits);
    PQclear(r);
    s_reply_json(req, 200, "OK", json_pack("{s:o}", "verdicts", list));
}

static void s_handle_health(sps_t *s, struct evhttp_request *req)
{
    long long n = s_db_count(s);

    if (n < 0) {
        s_reply_unavailable(req);
        return;
    }
    s_reply_json(req, 200, "OK", json_pack("{s:s,s:I}", "status", "ok", "hashes", (json_int_t)n));
}

static void s_on_close(struct evhttp_connection *evcon, void *arg)
{
    sps_t *s = arg;

    for (size_t i = 0; i < s->nconns; i++) {
        if (s->conns[i] == evcon) {
            s->conns[i] = s->conns[--s->nconns];
            return;
        }
    }
}

/* libevent 2.1 has no evhttp_set_max_connections: a connection is counted at its first
 * request; one past SPS_CONN_MAX is answered 503 and closed. Idle ones end at SPS_TIMEOUT_S. */
static bool s_conn_admit(sps_t *s, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    for (size_t i = 0; i < s->nconns; i++)
        if (s->conns[i] == evcon)
            return true;
    if (s->nconns == SPS_CONN_MAX) {
        s_log_limited(s, "sps refused connection reason=\"over %d connections\"", SPS_CONN_MAX);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        s_reply_error(req, 503, "Service Unavailable", "too many connections");
        return false;
    }
    s->conns[s->nconns++] = evcon;
    evhttp_connection_set_closecb(evcon, s_on_close, s);
    return true;
}

static void s_on_request(struct evhttp_request *req, void *arg)
{
    sps_t *s = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    bool lookup = path != NULL && strcmp(path, "/v1/lookup") == 0;
    bool health = path != NULL && strcmp(path, "/v1/health") == 0;

    if (!s_conn_admit(s, req))
        return;
    if (!lookup && !health) {
        s_reply_error(req, 404, "Not Found", "no such resource: use POST /v1/lookup or GET /v1/health");
        return;
    }
    if (lookup && m != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        s_reply_error(req, 405, "Method Not Allowed", "use POST for /v1/lookup");
        return;
    }
    if (health && m != EVHTTP_REQ_GET) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        s_reply_error(req, 405, "Method Not Allowed", "use GET for /v1/health");
        return;
    }
    if (lookup)
        s_handle_lookup(s, req);
    else
        s_handle_health(s, req);
}

static void s_on_tick(evutil_socket_t fd, short what, void *arg)
{
    sps_t *s = arg;

    (void)fd;
    (void)what;
    if (atomic_load(&s->stop) || (s->ext_stop != NULL && *s->ext_stop)) {
        event_base_loopbreak(s->base);
        return;
    }
    if (s->db == NULL && now_ms() >= s->retry_at)
        s_db_connect(s);
}

/* --- life ------------------------------------------------------------------------------ */

static int s_split_listen(const char *listen, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(listen, ':'), *h = listen;
    size_t hl;
    int64_t p;

    if (colon == NULL || parse_int64(colon + 1, &p) != 0 || p < 1 || p > 65535)
        return -1;
    hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

sps_t *sps_new(const struct sps_options *opt, char *err, size_t errlen)
{
    sps_t *s = xcalloc(1, sizeof *s);
    char host[SPS_LISTEN_MAX];
    uint16_t port;
    struct timeval tick = { 0, SPS_TICK_MS * 1000 };

    if (s_split_listen(opt->listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "sps_listen \"%s\" is not HOST:PORT", opt->listen);
        free(s);
        return NULL;
    }
    s->dsn = xstrdup(opt->dsn);
    strlcpy_p(s->listen, opt->listen, sizeof s->listen);
    s->backoff_ms = SPS_BACKOFF_MIN_MS;
    s->count = -1;
    s->base = event_base_new();
    s->http = s->base != NULL ? evhttp_new(s->base) : NULL;
    if (s->http == NULL) {
        snprintf(err, errlen, "sps: cannot create the HTTP server");
        sps_free(&s);
        return NULL;
    }
    evhttp_set_max_body_size(s->http, SPS_BODY_MAX);
    evhttp_set_max_headers_size(s->http, SPS_HEADERS_MAX);
    evhttp_set_timeout(s->http, SPS_TIMEOUT_S);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                               EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(s->http, s_on_request, s);
    if (evhttp_bind_socket_with_handle(s->http, host, port) == NULL) {
        snprintf(err, errlen, "sps: cannot listen on %s: %m", opt->listen);
        sps_free(&s);
        return NULL;
    }
    s->tick = event_new(s->base, -1, EV_PERSIST, s_on_tick, s);
    event_add(s->tick, &tick);
    s_db_connect(s);
    log_info("sps ready listen=%s hashes=%lld", s->listen, s_db_count(s));
    return s;
}

void sps_run(sps_t *s, volatile sig_atomic_t *stop)
{
    s->ext_stop = stop;
    event_base_dispatch(s->base);
}

static void *s_thread(void *arg)
{
    sps_t *s = arg;

    event_base_dispatch(s->base);
    return NULL;
}

/* The thread starts with every signal blocked, so SIGTERM/SIGINT reach the main thread's loop. */
int sps_start(sps_t *s, char *err, size_t errlen)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&s->thread, NULL, s_thread, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "sps: cannot start its thread: %s", strerror(rc));
        return -1;
    }
    s->threaded = true;
    return 0;
}

void sps_free(sps_t **sp)
{
    sps_t *s;

    if (sp == NULL || *sp == NULL)
        return;
    s = *sp;
    if (s->threaded) {
        atomic_store(&s->stop, 1);
        pthread_join(s->thread, NULL);
    }
    if (s->tick != NULL)
        event_free(s->tick);
    if (s->http != NULL)
        evhttp_free(s->http);
    if (s->base != NULL)
        event_base_free(s->base);
    PQfinish(s->db);
    free(s->dsn);
    free(s);
    *sp = NULL;
}
