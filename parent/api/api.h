/* api: the parent's REST API (issue 6; R5.4, R5.12, R6, R7.5) on its HTTPS listener.
 *
 * Shape: the HTTPS thread (parent/http/https.c) only moves bytes. A request under /api/ or
 * /metrics is matched against the route tables below there (404 / 405 at once), copied into a
 * job and handed to a small pool of worker threads (api_server.c), each with its own PGconn.
 * The worker authenticates (session cookie or bearer token, api_auth.c), checks the route's
 * role (403), parses the JSON body (400), runs the handler — which may block: handlers call
 * the same parent/admin operations as the CLI — writes the audit row for a change, and posts
 * the reply back to the HTTPS thread. Handlers never see libevent.
 *
 * Route tables live with their handlers (api_session.c, api_fleet.c, api_config.c,
 * api_stored.c, api_metrics.c …) and are listed once in api_routes.c; docs/api/openapi.yaml
 * describes exactly these routes (tests/integration/test_api.py compares them through
 * `portcullis-parent --routes`). */
#ifndef PORTCULLIS_API_H
#define PORTCULLIS_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define API_PREFIX "/api/v1"
#define API_PARAMS_MAX 4            /* {name} segments in a route pattern */
#define API_QUERY_MAX 32            /* query-string fields kept; more → 400 */
#define API_PATH_MAX 1024           /* bytes of a request path with its query */
#define API_ERROR_MAX 512           /* bytes of an error message */
#define API_TARGET_MAX 256          /* bytes of an audit target */

enum api_role {
    API_ROLE_NONE = 0,              /* the route needs no log-in (POST /login only) */
    API_ROLE_VIEWER = 1,            /* reads state: status, settings, logs, searches */
    API_ROLE_OPERATOR = 2,          /* + acts on mail and children: release, delete, download,
                                     * show, reconcile, child commands */
    API_ROLE_ADMIN = 3,             /* + changes configuration, children's enrolment, users */
};

const char *api_role_name(enum api_role r);            /* "viewer", … ("none") */
int api_role_parse(const char *s, enum api_role *out); /* 0 ok, -1 unknown */

struct api_kv {
    const char *key, *value;        /* decoded */
};

/* A request as a handler sees it; everything is owned by the server for the call. */
struct api_req {
    PGconn *db;                     /* the worker's connection (never NULL in a handler) */
    const char *method;             /* "GET", "POST", "PUT", "DELETE" */
    const char *path;               /* without the query string */
    const char *params[API_PARAMS_MAX]; /* the pattern's {…} segments in order, decoded */
    const struct api_kv *query;     /* decoded query fields */
    size_t nquery;
    json_t *body;                   /* the parsed JSON body (an object), NULL when none came */
    const char *user;               /* the authenticated user (the audit actor); "" for NONE */
    int64_t user_id;                /* 0 for NONE */
    enum api_role role;
    const char *peer;               /* client address */
    int64_t credential_id;          /* the api_credentials row used (session or token) */
    bool via_session;               /* authenticated by the console's session cookie */
};

/* What a handler answers. Status 0 means 200. Either json (owned, stolen by the server) or
 * raw data (owned malloc'd, freed by the server) with content_type (static string), or, for
 * status >= 400, error — api_fail() fills it. */
struct api_resp {
    int status;
    json_t *json;
    uint8_t *data;
    size_t len;
    const char *content_type;
    char filename[128];             /* data: Content-Disposition attachment name, "" none */
    char set_cookie[256];           /* a Set-Cookie header value, "" none (api_session.c) */
    char target[API_TARGET_MAX];    /* audit: what the change acted on ("" → the path) */
    char detail[API_ERROR_MAX];     /* audit: what was done, when worth saying */
    char error[API_ERROR_MAX];
    unsigned retry_after_s;         /* 429 / 503: a Retry-After header, 0 none */
};

typedef void (*api_handler_fn)(struct api_req *rq, struct api_resp *rs);

struct api_route {
    const char *method;             /* "GET", "POST", "PUT", "DELETE" */
    const char *pattern;            /* "/api/v1/children/{name}/approve", "/metrics" */
    enum api_role role;             /* the least role allowed */
    const char *audit;              /* audit action for a change ("settings set"), NULL for a
                                     * read or an operation admin_* audits itself */
    api_handler_fn fn;
    const char *summary;            /* one line: `portcullis-parent --routes`, the docs */
};

struct api_route_table {
    const struct api_route *routes;
    size_t n;
};

/* Each module's table (defined with its handlers as
 *   static const struct api_route s_routes[] = {…};
 *   const struct api_route_table api_table_session = { s_routes, ARRAY_LEN(s_routes) };) */
extern const struct api_route_table api_table_session;  /* api_session.c: login, users, tokens */
extern const struct api_route_table api_table_fleet;    /* api_fleet.c: status, time series */
extern const struct api_route_table api_table_metrics;  /* api_metrics.c: /metrics */
extern const struct api_route_table api_table_children; /* api_children.c */
/* api_children.c: the daemon's parent.conf, which POST /children quotes (public endpoints,
 * state_dir's public key); set once before api_mount, borrowed for the process's life. */
struct conf;
void api_children_set_conf(const struct conf *conf);
extern const struct api_route_table api_table_config;   /* api_config.c: settings, mta, policy,
                                                         * areas, spam, wrs, updates, notify */
extern const struct api_route_table api_table_stored;   /* api_stored.c: quarantine, archive */
extern const struct api_route_table api_table_logs;     /* api_logs.c: tracking, events, audit */
/* GET /status and GET /children: admin_status, as `portcullis status --json` (api_fleet.c). */
void api_fleet_status(struct api_req *rq, struct api_resp *rs);
void api_fleet_child_health(struct api_req *rq, struct api_resp *rs);
/* All of them, in api_routes.c: every route the API serves. */
extern const struct api_route_table *const api_route_tables[];
extern const size_t api_route_tables_n;

/* --- helpers for handlers (api_util.c) ------------------------------------------------------ */
/* status >= 400 with the message (printf); the body becomes {"error": message}. */
void api_fail(struct api_resp *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* 200 with json (stolen; NULL json → 500 "out of memory"). */
void api_ok(struct api_resp *rs, json_t *json);
/* The query field's value, NULL when absent. */
const char *api_query(const struct api_req *rq, const char *key);
/* Body fields. Each returns 0 and sets *out, 1 when absent and not required (out untouched),
 * or -1 having answered 400 naming the field ("field \"x\" must be a string"). A missing body
 * counts as an empty object. */
int api_body_string(const struct api_req *rq, struct api_resp *rs, const char *key,
                    bool required, const char **out);
int api_body_int(const struct api_req *rq, struct api_resp *rs, const char *key, bool required,
                 int64_t min, int64_t max, int64_t *out);
int api_body_bool(const struct api_req *rq, struct api_resp *rs, const char *key,
                  bool required, bool *out);
/* Fails 400 naming the first field of the body not in the NULL-terminated list. */
int api_body_only(const struct api_req *rq, struct api_resp *rs, const char *const *allowed);
/* An admin_* failure: 404 when err says "unknown"/"no such"/"not found", 409 for "refused"/
 * "in use"/"already", 503 for "down"/"did not answer"/"database", else 400. */
void api_fail_admin(struct api_resp *rs, const char *err);

/* --- the server (api_server.c) --------------------------------------------------------------- */
struct https;
struct api_options {
    const char *dsn;                /* the workers' database */
    const char *web_root;           /* the console's static files; "" none */
};
#define API_WORKERS 4               /* worker threads (each one PGconn) */
#define API_QUEUE_MAX 64            /* requests waiting for a worker; more → 503 */
#define API_BODY_MAX (256 * 1024)   /* bytes of a JSON request body */

/* Mounts /api/, /metrics and the console's static files on h; starts the workers. */
int api_mount(struct https *h, const struct api_options *opt, char *err, size_t errlen);
void api_stop(void);
/* Prints "METHOD PATTERN ROLE" per route (portcullis-parent --routes). */
void api_print_routes(FILE *f);

#endif
