/* api_server: the REST API's plumbing on the parent's HTTPS listener (see api.h). On the HTTPS
 * thread: route matching (404/405), query and body limits (400/413), the console's static
 * files, and the replies. In API_WORKERS threads, each with its own PGconn: authentication,
 * the role check, the JSON body, the handler and the audit row. Jobs go to the workers through
 * a bounded queue (mutex + condition) and come back through a done list and a pipe whose read
 * end is an event on the HTTPS thread's base, so libevent is only ever touched there. */
#include "api/api.h"

#include <ctype.h>
#include <errno.h>
#include <sys/queue.h> /* before event2: its TAILQ macros */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin_command.h"
#include "api/api_auth.h"
#include "db/db.h"
#include "http/https.h"
#include "log.h"
#include "util.h"

#define API_STATIC_MAX (16 * 1024 * 1024) /* bytes of one console file; larger → 404 */
#define API_STATIC_PATH_MAX 256           /* bytes of a console file's path */
#define API_BACKOFF_MIN_MS 1000           /* a worker's database reconnect delay, doubling … */
#define API_BACKOFF_MAX_MS 32000          /* … up to this */
#define API_BUSY_RETRY_S 2                /* Retry-After when the queue is full */
#define API_DB_RETRY_S 5                  /* Retry-After while the database is away */
#define API_PEER_MAX 64                   /* bytes of a client address */

/* One request on its way through a worker. Owned by the HTTPS thread until queued, by the
 * queue / a worker / the done list after; freed by the HTTPS thread. req is touched only there,
 * and not at all once gone (the connection closed; orphaned: libevent left req to us). */
struct job {
    struct job *next;
    struct evhttp_request *req;
    bool gone, orphaned;
    const struct api_route *route;
    char method[8];
    char path[API_PATH_MAX + 1];
    char *params[API_PARAMS_MAX];
    struct api_kv query[API_QUERY_MAX];
    size_t nquery;
    char *body;
    size_t body_len;
    char *authorization, *cookie, *requested_with, *content_type;
    char peer[API_PEER_MAX];
    uint64_t start_ms;
    struct api_resp rs;
    char user[ADMIN_USER_NAME_MAX + 1];
};

static struct {
    https_t *h;
    char *dsn;
    char web_root[PATH_MAX];
    bool web_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *q_head, *q_tail, *done_head, *done_tail;
    size_t nq;
    bool stopping;
    pthread_t workers[API_WORKERS];
    size_t nworkers;
    int pipe_rd, pipe_wr;
    struct event done_ev; /* static storage: event_base_free drops it with the base */
    bool mounted;
    /* Counts a worker's reconnects: one worker reaching the database again ends every other
     * worker's backoff, so no request gets 503 from a worker still waiting out its delay. */
    _Atomic unsigned db_back;
} s = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .pipe_rd = -1,
        .pipe_wr = -1 };

/* --- small things ----------------------------------------------------------------------------- */

static const char *s_method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

static void s_security_headers(struct evkeyvalq *out)
{
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
}

/* {"error": message} with code; message may hold anything (JSON-escaped here). */
static void s_reply_error(struct evhttp_request *req, int code, const char *message)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    json_t *j = json_pack("{s:s}", "error", message);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    struct evbuffer *buf = evbuffer_new();

    evhttp_add_header(out, "Content-Type", "application/json");
    evhttp_add_header(out, "Cache-Control", "no-store");
    s_security_headers(out);
    if (code == 401)
        evhttp_add_header(out, "WWW-Authenticate", "Bearer");
    evbuffer_add_printf(buf, "%s", text != NULL ? text : "{\"error\":\"out of memory\"}");
    evhttp_send_reply(req, code, NULL, buf);
    evbuffer_free(buf);
    free(text);
    json_decref(j);
}

static void s_log_request(const char *method, const char *path, int status, const char *user,
                          uint64_t start_ms)
{
    log_info("api request method=%s path=%s status=%d user=%s ms=%" PRIu64, method, path,
             status, user != NULL && *user != '\0' ? user : "-", now_ms() - start_ms);
}

static void s_job_free(struct job *j)
{
    for (size_t i = 0; i < API_PARAMS_MAX; i++)
        free(j->params[i]);
    for (size_t i = 0; i < j->nquery; i++) {
        free((char *)j->query[i].key);
        free((char *)j->query[i].value);
    }
    free(j->body);
    free(j->authorization);
    free(j->cookie);
    free(j->requested_with);
    free(j->content_type);
    json_decref(j->rs.json);
    free(j->rs.data);
    free(j);
}

/* --- routes ----------------------------------------------------------------------------------- */

/* Whether text is valid UTF-8 (jansson checks it for every JSON string it makes). */
static bool s_utf8(const char *text)
{
    json_t *t = json_string(text);

    json_decref(t);
    return t != NULL;
}

/* Text for JSON and PostgreSQL, which refuse what is not UTF-8: a handler's "%.Ns" may have
 * cut a multibyte character at the end (dropped), and a message may quote a query value in
 * another encoding (its non-ASCII bytes become '?'). */
static void s_utf8_clean(char *text)
{
    size_t n = strlen(text), keep = n;

    if (s_utf8(text))
        return;
    for (int cut = 1; cut <= 3 && cut <= (int)n; cut++) {
        char c = text[n - (size_t)cut];
        text[n - (size_t)cut] = '\0';
        if (s_utf8(text))
            return;
        text[n - (size_t)cut] = c;
    }
    for (size_t i = 0; i < keep; i++)
        if ((unsigned char)text[i] >= 0x80)
            text[i] = '?';
}

/* pattern against the raw (still %-encoded) path, segment by segment; a {…} segment matches any
 * non-empty segment, decoded into params. The count of params, or -1 (params freed). */
static int s_match(const char *pattern, const char *path, char *params[API_PARAMS_MAX])
{
    const char *p = pattern, *q = path;
    int n = 0;

    while (*p != '\0' && *q != '\0') {
        size_t pl = strcspn(p + 1, "/") + 1, ql = strcspn(q + 1, "/") + 1; /* with the '/' */
        if (p[0] != '/' || q[0] != '/')
            goto nomatch;
        if (p[1] == '{') {
            char seg[API_PATH_MAX + 1];
            size_t dlen = 0;
            char *d;
            if (ql < 2 || n == API_PARAMS_MAX || ql - 1 > API_PATH_MAX)
                goto nomatch;
            memcpy(seg, q + 1, ql - 1);
            seg[ql - 1] = '\0';
            d = evhttp_uridecode(seg, 0, &dlen);
            /* empty, with a NUL, or not UTF-8 (it would reach JSON and the audit log) */
            if (d == NULL || dlen == 0 || strlen(d) != dlen || !s_utf8(d)) {
                free(d);
                goto nomatch;
            }
            params[n++] = d;
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            goto nomatch;
        }
        p += pl;
        q += ql;
    }
    if (*p == '\0' && *q == '\0')
        return n;
nomatch:
    for (int i = 0; i < n; i++) {
        free(params[i]);
        params[i] = NULL;
    }
    return -1;
}

/* The route for method and path: fewest {…} segments wins (a literal beats a name). NULL with
 * allow filled ("GET, POST") when the path is known for other methods, allow "" when not. */
static const struct api_route *s_route_find(const char *method, const char *path,
                                            char *params[API_PARAMS_MAX], char *allow,
                                            size_t allowlen)
{
    const struct api_route *best = NULL;
    int best_n = API_PARAMS_MAX + 1;
    char *tmp[API_PARAMS_MAX] = { 0 };

    allow[0] = '\0';
    for (size_t t = 0; t < api_route_tables_n; t++) {
        const struct api_route_table *tab = api_route_tables[t];
        for (size_t i = 0; i < tab->n; i++) {
            const struct api_route *r = &tab->routes[i];
            int n = s_match(r->pattern, path, tmp);
            if (n < 0)
                continue;
            if (strcmp(r->method, method) == 0 && n < best_n) {
                for (int k = 0; k < API_PARAMS_MAX; k++) {
                    free(params[k]);
                    params[k] = tmp[k];
                    tmp[k] = NULL;
                }
                best = r;
                best_n = n;
            } else {
                if (strstr(allow, r->method) == NULL && strcmp(r->method, method) != 0) {
                    if (allow[0] != '\0')
                        strlcpy_p(allow + strlen(allow), ", ", allowlen - strlen(allow));
                    strlcpy_p(allow + strlen(allow), r->method, allowlen - strlen(allow));
                }
                for (int k = 0; k < n; k++) {
                    free(tmp[k]);
                    tmp[k] = NULL;
                }
            }
        }
    }
    return best;
}

void api_print_routes(FILE *f)
{
    for (size_t t = 0; t < api_route_tables_n; t++)
        for (size_t i = 0; i < api_route_tables[t]->n; i++) {
            const struct api_route *r = &api_route_tables[t]->routes[i];
            fprintf(f, "%s %s %s\n", r->method, r->pattern, api_role_name(r->role));
        }
}

/* Every pattern well-formed and no method+pattern twice: a broken table is a bug, found at
 * start. */
static int s_routes_check(char *err, size_t errlen)
{
    for (size_t t = 0; t < api_route_tables_n; t++)
        for (size_t i = 0; i < api_route_tables[t]->n; i++) {
            const struct api_route *r = &api_route_tables[t]->routes[i];
            int nparams = 0;
            for (const char *c = r->pattern; (c = strchr(c, '{')) != NULL; c++)
                nparams++;
            if (r->pattern[0] != '/' || nparams > API_PARAMS_MAX || r->fn == NULL) {
                snprintf(err, errlen, "api: route %s %s is malformed", r->method, r->pattern);
                return -1;
            }
            for (size_t u = 0; u <= t; u++)
                for (size_t k = 0; k < (u == t ? i : api_route_tables[u]->n); k++) {
                    const struct api_route *o = &api_route_tables[u]->routes[k];
                    if (strcmp(o->method, r->method) == 0 && strcmp(o->pattern, r->pattern) == 0) {
                        snprintf(err, errlen, "api: route %s %s is defined twice", r->method,
                                 r->pattern);
                        return -1;
                    }
                }
        }
    return 0;
}

/* --- the worker side -------------------------------------------------------------------------- */

static bool s_is_json_type(const char *ct)
{
    static const char want[] = "application/json";

    if (ct == NULL || strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    ct += sizeof want - 1;
    return *ct == '\0' || *ct == ';' || *ct == ' ';
}

/* The body as a JSON object into rq->body (NULL when empty). -1 with rs answered. */
static int s_parse_body(struct job *j, struct api_req *rq, struct api_resp *rs)
{
    json_error_t jerr;
    size_t i;

    for (i = 0; i < j->body_len && isspace((unsigned char)j->body[i]); i++)
        ;
    if (i == j->body_len)
        return 0;
    if (!s_is_json_type(j->content_type)) {
        api_fail(rs, 415, "send the body as JSON with the header Content-Type: application/json");
        return -1;
    }
    rq->body = json_loadb(j->body, j->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (rq->body == NULL) {
        api_fail(rs, 400, "the body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(rq->body)) {
        api_fail(rs, 400, "the body must be a JSON object");
        return -1;
    }
    return 0;
}

static void s_run(struct job *j, PGconn *db)
{
    const struct api_route *r = j->route;
    struct api_resp *rs = &j->rs;
    struct api_auth_headers hd = { j->authorization, j->cookie, j->requested_with };
    struct api_req rq = {
        .db = db, .method = j->method, .path = j->path, .query = j->query,
        .nquery = j->nquery, .user = "", .role = API_ROLE_NONE, .peer = j->peer,
    };

    for (size_t i = 0; i < API_PARAMS_MAX; i++)
        rq.params[i] = j->params[i];
    if (db == NULL) {
        api_fail(rs, 503, "database unavailable");
        rs->retry_after_s = API_DB_RETRY_S;
        return;
    }
    if (r->role != API_ROLE_NONE) {
        if (api_auth(&hd, &rq, rs, j->user) != 0)
            return;
        if (rq.role < r->role) {
            api_fail(rs, 403, "this needs the %s role; you are %s", api_role_name(r->role),
                     api_role_name(rq.role));
            return;
        }
    }
    if (s_parse_body(j, &rq, rs) != 0)
        goto out;
    r->fn(&rq, rs);
    if (rs->status == 0)
        rs->status = 200;
    if (rs->status < 400 && rs->json == NULL && rs->data == NULL)
        rs->json = json_object();
    if (rs->status >= 400 && rs->error[0] == '\0')
        strlcpy_p(rs->error, "the request failed", sizeof rs->error);
    s_utf8_clean(rs->error);
    s_utf8_clean(rs->target);
    s_utf8_clean(rs->detail);
    if (r->audit != NULL)
        admin_audit(db, rq.user, r->audit, rs->target[0] != '\0' ? rs->target : j->path,
                    rs->status < 400,
                    rs->detail[0] != '\0' ? rs->detail : rs->status >= 400 ? rs->error : NULL);
    if (rq.user != j->user) /* POST /login names its actor from the body */
        strlcpy_p(j->user, rq.user, sizeof j->user);
out:
    json_decref(rq.body);
}

/* The worker's connection, (re)made with backoff; NULL while the database is away. */
static PGconn *s_db_ready(PGconn **db, uint64_t *retry_at, uint64_t *backoff, unsigned *seen_back)
{
    char err[512];
    unsigned back = atomic_load(&s.db_back);

    if (back != *seen_back) { /* another worker is connected again after an outage: a */
        *seen_back = back;    /* connection of ours from before it is dead, and the     */
        *retry_at = 0;        /* database is worth trying now, not after our backoff    */
        db_close(db);
    }
    if (*db != NULL && PQstatus(*db) == CONNECTION_OK)
        return *db;
    db_close(db);
    if (now_ms() < *retry_at)
        return NULL;
    *db = db_connect(s.dsn, err, sizeof err);
    if (*db == NULL) {
        if (*backoff == API_BACKOFF_MIN_MS)
            log_warn("api database unavailable: %s; retrying up to every %d s", err,
                     API_BACKOFF_MAX_MS / 1000);
        *retry_at = now_ms() + *backoff;
        *backoff = *backoff * 2 > API_BACKOFF_MAX_MS ? API_BACKOFF_MAX_MS : *backoff * 2;
        return NULL;
    }
    if (*backoff > API_BACKOFF_MIN_MS) {
        log_info("api database connected again");
        *seen_back = atomic_fetch_add(&s.db_back, 1) + 1;
    }
    *backoff = API_BACKOFF_MIN_MS;
    return *db;
}

static void *s_worker(void *arg)
{
    PGconn *db = NULL;
    uint64_t retry_at = 0, backoff = API_BACKOFF_MIN_MS;
    unsigned seen_back = atomic_load(&s.db_back);
    struct job *j;
    bool gone;

    (void)arg;
    for (;;) {
        pthread_mutex_lock(&s.mu);
        while (!s.stopping && s.q_head == NULL)
            pthread_cond_wait(&s.cv, &s.mu);
        if (s.stopping) {
            pthread_mutex_unlock(&s.mu);
            break;
        }
        j = s.q_head;
        s.q_head = j->next;
        if (s.q_head == NULL)
            s.q_tail = NULL;
        s.nq--;
        j->next = NULL;
        gone = j->gone;
        pthread_mutex_unlock(&s.mu);

        if (!gone) {
            s_run(j, s_db_ready(&db, &retry_at, &backoff, &seen_back));
            if (j->rs.status == 503 && j->rs.retry_after_s == 0)
                j->rs.retry_after_s = API_DB_RETRY_S; /* the database or a child is away */
            if (db != NULL && PQstatus(db) == CONNECTION_OK &&
                PQtransactionStatus(db) != PQTRANS_IDLE) {
                log_err("api handler left a transaction open method=%s path=%s; rolled back",
                        j->method, j->path);
                db_rollback(db);
            }
            if (db != NULL && PQstatus(db) != CONNECTION_OK)
                db_close(&db); /* made again for the next request */
            s_log_request(j->method, j->path, j->rs.status, j->user, j->start_ms);
        }
        pthread_mutex_lock(&s.mu);
        if (s.done_tail != NULL)
            s.done_tail->next = j;
        else
            s.done_head = j;
        s.done_tail = j;
        pthread_mutex_unlock(&s.mu);
        if (write(s.pipe_wr, "", 1) < 0 && errno != EAGAIN)
            log_err("api cannot wake the HTTPS thread: %s", strerror(errno));
    }
    db_close(&db);
    return NULL;
}

/* --- the HTTPS thread side -------------------------------------------------------------------- */

/* A header value, truncated "Content-Disposition" safe: letters, digits and ._- only. */
static void s_safe_filename(const char *in, char *out, size_t outlen)
{
    size_t i;

    for (i = 0; in[i] != '\0' && i + 1 < outlen; i++)
        out[i] = isalnum((unsigned char)in[i]) || strchr("._-", in[i]) != NULL ? in[i] : '_';
    out[i] = '\0';
}

static void s_send(struct job *j)
{
    struct api_resp *rs = &j->rs;
    struct evkeyvalq *out = evhttp_request_get_output_headers(j->req);
    struct evbuffer *buf;
    char v[64 + sizeof rs->filename];
    char *text;

    if (rs->set_cookie[0] != '\0')
        evhttp_add_header(out, "Set-Cookie", rs->set_cookie);
    if (rs->retry_after_s > 0) {
        snprintf(v, sizeof v, "%u", rs->retry_after_s);
        evhttp_add_header(out, "Retry-After", v);
    }
    if (rs->status >= 400) {
        s_reply_error(j->req, rs->status, rs->error);
        return;
    }
    buf = evbuffer_new();
    evhttp_add_header(out, "Cache-Control", "no-store");
    s_security_headers(out);
    if (rs->data != NULL) {
        char name[sizeof rs->filename];
        evhttp_add_header(out, "Content-Type",
                          rs->content_type != NULL ? rs->content_type : "application/octet-stream");
        if (rs->filename[0] != '\0') {
            s_safe_filename(rs->filename, name, sizeof name);
            snprintf(v, sizeof v, "attachment; filename=\"%s\"", name);
            evhttp_add_header(out, "Content-Disposition", v);
        }
        evbuffer_add(buf, rs->data, rs->len);
    } else {
        text = json_dumps(rs->json, JSON_COMPACT | JSON_ENCODE_ANY);
        evhttp_add_header(out, "Content-Type", "application/json");
        evbuffer_add_printf(buf, "%s\n", text != NULL ? text : "{}");
        free(text);
    }
    evhttp_send_reply(j->req, rs->status, NULL, buf);
    evbuffer_free(buf);
}

static void s_on_done(evutil_socket_t fd, short what, void *arg)
{
    char drain[256];
    struct job *list, *j;

    (void)what;
    (void)arg;
    while (read(fd, drain, sizeof drain) > 0)
        ;
    pthread_mutex_lock(&s.mu);
    list = s.done_head;
    s.done_head = s.done_tail = NULL;
    pthread_mutex_unlock(&s.mu);
    while ((j = list) != NULL) {
        list = j->next;
        if (j->gone) {
            if (j->orphaned)
                evhttp_request_free(j->req);
        } else {
            https_conn_forget(s.h, evhttp_request_get_connection(j->req));
            s_send(j);
        }
        s_job_free(j);
    }
}

/* The client went away: the job's reply is dropped. libevent keeps a request it has not seen
 * answered (it detaches it from the connection) for us to free; otherwise it frees it. */
static void s_on_conn_close(void *arg)
{
    struct job *j = arg;

    pthread_mutex_lock(&s.mu);
    j->gone = true;
    j->orphaned = evhttp_request_get_connection(j->req) == NULL;
    pthread_mutex_unlock(&s.mu);
}

static char *s_header(struct evhttp_request *req, const char *name)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);

    return v != NULL ? xstrdup(v) : NULL;
}

/* The query string into j->query; -1 with the reason. */
static int s_query(struct job *j, const char *qs, const char **why)
{
    struct evkeyvalq kv;
    struct evkeyval *e;
    int rc = 0;

    TAILQ_INIT(&kv);
    if (qs == NULL || *qs == '\0')
        return 0;
    if (evhttp_parse_query_str(qs, &kv) != 0) {
        *why = "the query string is malformed";
        rc = -1;
    }
    TAILQ_FOREACH(e, &kv, next) {
        if (rc != 0)
            break;
        if (j->nquery == API_QUERY_MAX) {
            *why = "too many query fields";
            rc = -1;
            break;
        }
        j->query[j->nquery].key = xstrdup(e->key);
        j->query[j->nquery].value = xstrdup(e->value);
        j->nquery++;
    }
    evhttp_clear_headers(&kv);
    return rc;
}

static void s_api(https_t *h, struct evhttp_request *req, const char *rest, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri), *method = s_method_name(
        evhttp_request_get_command(req));
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *why = NULL;
    char allow[64], *addr = NULL;
    uint16_t port;
    struct job *j;
    uint64_t start = now_ms();
    bool full;

    (void)rest;
    (void)arg;
    if (strlen(path) > API_PATH_MAX) {
        s_reply_error(req, 414, "the request path is too long");
        s_log_request(method, "-", 414, NULL, start);
        return;
    }
    j = xcalloc(1, sizeof *j);
    j->start_ms = start;
    strlcpy_p(j->method, method, sizeof j->method);
    strlcpy_p(j->path, path, sizeof j->path);
    j->route = s_route_find(method, path, j->params, allow, sizeof allow);
    if (j->route == NULL) {
        if (allow[0] != '\0')
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        s_reply_error(req, allow[0] != '\0' ? 405 : 404,
                      allow[0] != '\0' ? "this method is not allowed here" : "no such route");
        s_log_request(method, path, allow[0] != '\0' ? 405 : 404, NULL, start);
        s_job_free(j);
        return;
    }
    if (s_query(j, evhttp_uri_get_query(uri), &why) != 0) {
        s_reply_error(req, 400, why);
        s_log_request(method, path, 400, NULL, start);
        s_job_free(j);
        return;
    }
    if (evbuffer_get_length(in) > API_BODY_MAX) {
        char m[96];
        snprintf(m, sizeof m, "the request body is too large (at most %d bytes)", API_BODY_MAX);
        s_reply_error(req, 413, m);
        s_log_request(method, path, 413, NULL, start);
        s_job_free(j);
        return;
    }
    j->body_len = evbuffer_get_length(in);
    j->body = xmalloc(j->body_len + 1);
    evbuffer_remove(in, j->body, j->body_len);
    j->body[j->body_len] = '\0';
    j->authorization = s_header(req, "Authorization");
    j->cookie = s_header(req, "Cookie");
    j->requested_with = s_header(req, API_CSRF_HEADER);
    j->content_type = s_header(req, "Content-Type");
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
    strlcpy_p(j->peer, addr != NULL ? addr : "?", sizeof j->peer);
    j->req = req;

    pthread_mutex_lock(&s.mu);
    full = s.nq >= API_QUEUE_MAX || s.stopping;
    if (!full) {
        if (s.q_tail != NULL)
            s.q_tail->next = j;
        else
            s.q_head = j;
        s.q_tail = j;
        s.nq++;
        pthread_cond_signal(&s.cv);
    }
    pthread_mutex_unlock(&s.mu);
    if (full) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", API_BUSY_RETRY_S);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        s_reply_error(req, 503, "the API is busy; try again in a moment");
        https_log_limited(h, "api queue full: %d requests waiting", API_QUEUE_MAX);
        s_log_request(method, path, 503, NULL, start);
        s_job_free(j);
        return;
    }
    https_conn_on_close(h, req, s_on_conn_close, j);
}

/* --- the console's static files --------------------------------------------------------------- */

static const struct {
    const char *ext, *type;
} s_types[] = {
    { "html", "text/html; charset=utf-8" },
    { "js", "text/javascript; charset=utf-8" },
    { "css", "text/css; charset=utf-8" },
    { "svg", "image/svg+xml" },
    { "png", "image/png" },
    { "ico", "image/x-icon" },
    { "json", "application/json" },
    { "map", "application/json" },
    { "woff2", "font/woff2" },
};

/* The content type of a console path, NULL when it is not one we serve: only
 * [A-Za-z0-9._/-], no empty segment, no segment starting with '.' (so no ".." and no
 * dotfiles), one of the types above. */
static const char *s_static_type(const char *rel)
{
    const char *dot;

    if (*rel == '\0' || strlen(rel) > API_STATIC_PATH_MAX)
        return NULL;
    for (const char *c = rel; *c != '\0'; c++)
        if (!isalnum((unsigned char)*c) && strchr("._/-", *c) == NULL)
            return NULL;
    for (const char *seg = rel; seg != NULL; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
        if (*seg == '.' || *seg == '/' || *seg == '\0')
            return NULL;
    dot = strrchr(rel, '.');
    if (dot == NULL || strchr(dot, '/') != NULL)
        return NULL;
    for (size_t i = 0; i < ARRAY_LEN(s_types); i++)
        if (strcmp(dot + 1, s_types[i].ext) == 0)
            return s_types[i].type;
    return NULL;
}

static void s_static(https_t *h, struct evhttp_request *req, const char *rest, void *arg)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    const char *rel = *rest == '\0' ? "index.html" : rest, *type;
    char path[PATH_MAX + API_STATIC_PATH_MAX + 2];
    struct evbuffer *buf;
    struct stat st;
    off_t left;
    int fd;

    (void)h;
    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_add_header(out, "Allow", "GET");
        s_reply_error(req, 405, "use GET");
        return;
    }
    type = s_static_type(rel);
    if (!s.web_on || type == NULL) {
        s_reply_error(req, 404, "no such file");
        return;
    }
    snprintf(path, sizeof path, "%s/%s", s.web_root, rel);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > API_STATIC_MAX) {
        if (fd >= 0)
            close(fd);
        s_reply_error(req, 404, "no such file");
        return;
    }
    buf = evbuffer_new();
    for (left = st.st_size; left > 0;) {
        int n = evbuffer_read(buf, fd, (int)(left < 65536 ? left : 65536));
        if (n <= 0)
            break;
        left -= n;
    }
    close(fd);
    if (left != 0) {
        evbuffer_free(buf);
        s_reply_error(req, 404, "no such file");
        return;
    }
    evhttp_add_header(out, "Content-Type", type);
    evhttp_add_header(out, "Cache-Control", "no-cache");
    s_security_headers(out);
    evhttp_add_header(out, "Content-Security-Policy",
                      "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'");
    evhttp_add_header(out, "X-Frame-Options", "DENY");
    evhttp_add_header(out, "Referrer-Policy", "no-referrer");
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

/* --- life ------------------------------------------------------------------------------------- */

int api_mount(struct https *h, const struct api_options *opt, char *err, size_t errlen)
{
    int fds[2];
    sigset_t all, old;
    struct stat st;

    if (s.mounted) {
        snprintf(err, errlen, "api: mounted twice");
        return -1;
    }
    if (s_routes_check(err, errlen) != 0)
        return -1;
    s.h = h;
    s.dsn = xstrdup(opt->dsn);
    s.web_on = false;
    if (opt->web_root == NULL || *opt->web_root == '\0') {
        log_info("web_root is empty: the web console is off; the API still answers");
    } else if (strlen(opt->web_root) >= sizeof s.web_root || stat(opt->web_root, &st) != 0 ||
               !S_ISDIR(st.st_mode)) {
        log_warn("web_root %s is not a directory: the web console is off; the API still answers",
                 opt->web_root);
    } else {
        strlcpy_p(s.web_root, opt->web_root, sizeof s.web_root);
        s.web_on = true;
    }
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "api: pipe: %s", strerror(errno));
        return -1;
    }
    s.pipe_rd = fds[0];
    s.pipe_wr = fds[1];
    if (event_assign(&s.done_ev, https_base(h), s.pipe_rd, EV_READ | EV_PERSIST, s_on_done,
                     NULL) != 0 ||
        event_add(&s.done_ev, NULL) != 0 || https_route(h, "/api/", s_api, NULL) != 0 ||
        https_route(h, "/metrics", s_api, NULL) != 0 ||
        https_route(h, "/", s_static, NULL) != 0) {
        snprintf(err, errlen, "api: cannot mount its routes on the HTTPS server");
        return -1;
    }
    s.mounted = true;
    /* Workers block every signal: SIGTERM/SIGINT belong to the main thread's loop. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; s.nworkers < API_WORKERS; s.nworkers++) {
        int rc = pthread_create(&s.workers[s.nworkers], NULL, s_worker, NULL);
        if (rc != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            snprintf(err, errlen, "api: cannot start a worker thread: %s", strerror(rc));
            return -1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    log_info("api ready workers=%d console=%s", API_WORKERS, s.web_on ? s.web_root : "off");
    return 0;
}

/* After https_free: the connections are closed (every job gone) and the event went with the
 * base. Waits for the workers' current requests, then frees what is left. A no-op when the API
 * was never mounted. */
void api_stop(void)
{
    struct job *lists[2], *j;

    pthread_mutex_lock(&s.mu);
    s.stopping = true;
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    for (size_t i = 0; i < s.nworkers; i++)
        pthread_join(s.workers[i], NULL);
    s.nworkers = 0;
    lists[0] = s.q_head;
    lists[1] = s.done_head;
    s.q_head = s.q_tail = s.done_head = s.done_tail = NULL;
    s.nq = 0;
    for (size_t i = 0; i < 2; i++)
        while ((j = lists[i]) != NULL) {
            lists[i] = j->next;
            if (j->gone && j->orphaned)
                evhttp_request_free(j->req);
            s_job_free(j);
        }
    if (s.pipe_rd >= 0)
        close(s.pipe_rd);
    if (s.pipe_wr >= 0)
        close(s.pipe_wr);
    s.pipe_rd = s.pipe_wr = -1;
    free(s.dsn);
    s.dsn = NULL;
    s.mounted = false;
}
