/* api_auth: see api_auth.h. Credentials are opaque secrets of ADMIN_CRED_SECRET_HEX hex
 * characters; anything else is refused before the database is asked. The log-in limiter is a
 * small table under a mutex (the workers share it) keeping each key's last failure times. */
#include "api/api_auth.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define API_LOGIN_KEY_MAX 160       /* bytes of "peer\nname" kept as a limiter key */

/* --- credentials ------------------------------------------------------------------------------ */

static bool s_secret_valid(const char *s, size_t n)
{
    if (n != ADMIN_CRED_SECRET_HEX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* The value of cookie name in a Cookie header ("a=1; portcullis_session=…"); 0 found. */
static int s_cookie(const char *header, const char *name, const char **val, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = header;

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            *val = p + nl + 1;
            *len = strcspn(*val, "; \t");
            return 0;
        }
        p = strchr(p, ';');
    }
    return -1;
}

static bool s_is_change(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static int s_unauthorized(struct api_resp *rs, const char *why)
{
    api_fail(rs, 401, "%s", why);
    return -1;
}

int api_auth(const struct api_auth_headers *hd, struct api_req *rq, struct api_resp *rs,
             char user[ADMIN_USER_NAME_MAX + 1])
{
    char secret[ADMIN_CRED_SECRET_HEX + 1], role[ADMIN_ROLE_MAX], kind[ADMIN_ROLE_MAX];
    char err[256];
    const char *v = NULL;
    size_t n = 0;
    bool via_session = false;
    enum api_role r;
    int rc;

    if (hd->authorization != NULL) {
        if (strncasecmp(hd->authorization, "Bearer ", 7) != 0)
            return s_unauthorized(rs, "the Authorization header must be \"Bearer <token>\"");
        v = hd->authorization + 7;
        while (*v == ' ')
            v++;
        n = strcspn(v, " \t");
    } else if (hd->cookie != NULL && s_cookie(hd->cookie, API_SESSION_COOKIE, &v, &n) == 0) {
        via_session = true;
    } else {
        return s_unauthorized(rs, "log in first: a session cookie or a bearer token is required");
    }
    if (!s_secret_valid(v, n))
        return s_unauthorized(rs, via_session ? "your session has ended: log in again"
                                              : "the bearer token is unknown or expired");
    memcpy(secret, v, n);
    secret[n] = '\0';
    rc = admin_credential_lookup(rq->db, secret, &rq->credential_id, &rq->user_id, user, role,
                                 kind, err, sizeof err);
    if (rc < 0) {
        api_fail(rs, 503, "database unavailable");
        return -1;
    }
    if (rc > 0)
        return s_unauthorized(rs, via_session ? "your session has ended: log in again"
                                              : "the bearer token is unknown or expired");
    if (api_role_parse(role, &r) != 0) {
        api_fail(rs, 500, "user %s has an unknown role", user);
        return -1;
    }
    /* A session cookie is sent by the browser whatever page asks; a custom header is not
     * (cross-site requests cannot set one without CORS, which the parent never grants). */
    if (via_session && s_is_change(rq->method) &&
        (hd->requested_with == NULL || strcmp(hd->requested_with, API_CSRF_VALUE) != 0)) {
        api_fail(rs, 403, "changes from the console need the header " API_CSRF_HEADER ": "
                          API_CSRF_VALUE);
        return -1;
    }
    rq->user = user;
    rq->role = r;
    rq->via_session = via_session;
    return 0;
}

/* --- log-in rate limit ----------------------------------------------------------------------- */

#define API_LOGIN_RING API_LOGIN_PEER_FAILURES_MAX /* failure times kept per key */

/* Key "peer\nname" counts one name from one address; key "peer" (no newline: no name can
 * make it) counts every failure from the address. */
struct login_entry {
    char key[API_LOGIN_KEY_MAX];
    uint64_t fail_ms[API_LOGIN_RING]; /* ring of the last failures' times */
    unsigned nfail, next;
    uint64_t last_ms;
};

static pthread_mutex_t s_login_mu = PTHREAD_MUTEX_INITIALIZER;
static struct login_entry s_login[API_LOGIN_TABLE_MAX];
static size_t s_nlogin;

static void s_login_key(char key[API_LOGIN_KEY_MAX], const char *peer, const char *user)
{
    snprintf(key, API_LOGIN_KEY_MAX, "%s\n%s", peer != NULL ? peer : "", user != NULL ? user : "");
}

static struct login_entry *s_login_find(const char *key)
{
    for (size_t i = 0; i < s_nlogin; i++)
        if (strcmp(s_login[i].key, key) == 0)
            return &s_login[i];
    return NULL;
}

/* Whether key has limit failures within the window; retry_after_s gets the wait. Locked. */
static bool s_blocked(const char *key, unsigned limit, uint64_t now, unsigned *retry_after_s)
{
    uint64_t window = (uint64_t)API_LOGIN_WINDOW_S * 1000, oldest;
    struct login_entry *e = s_login_find(key);

    if (e == NULL || e->nfail < limit)
        return false;
    /* the oldest of the last `limit` failures */
    oldest = e->fail_ms[(e->next + API_LOGIN_RING - limit) % API_LOGIN_RING];
    if (now - oldest >= window)
        return false;
    *retry_after_s = (unsigned)((oldest + window - now + 999) / 1000);
    return true;
}

bool api_login_allowed(const char *peer, const char *user, unsigned *retry_after_s)
{
    char key[API_LOGIN_KEY_MAX], peer_key[API_LOGIN_KEY_MAX];
    uint64_t now = now_ms();
    bool blocked;

    s_login_key(key, peer, user);
    snprintf(peer_key, sizeof peer_key, "%s", peer != NULL ? peer : "");
    pthread_mutex_lock(&s_login_mu);
    blocked = s_blocked(key, API_LOGIN_FAILURES_MAX, now, retry_after_s) ||
              s_blocked(peer_key, API_LOGIN_PEER_FAILURES_MAX, now, retry_after_s);
    pthread_mutex_unlock(&s_login_mu);
    return !blocked;
}

/* Records a failure of key. Locked. */
static void s_record(const char *key, uint64_t now)
{
    struct login_entry *e = s_login_find(key);

    if (e == NULL) {
        if (s_nlogin < API_LOGIN_TABLE_MAX) {
            e = &s_login[s_nlogin++];
        } else { /* full: forget the key that failed longest ago */
            e = &s_login[0];
            for (size_t i = 1; i < s_nlogin; i++)
                if (s_login[i].last_ms < e->last_ms)
                    e = &s_login[i];
        }
        memset(e, 0, sizeof *e);
        strlcpy_p(e->key, key, sizeof e->key);
    }
    e->fail_ms[e->next] = now;
    e->next = (e->next + 1) % API_LOGIN_RING;
    if (e->nfail < API_LOGIN_RING)
        e->nfail++;
    e->last_ms = now;
}

void api_login_failed(const char *peer, const char *user)
{
    char key[API_LOGIN_KEY_MAX], peer_key[API_LOGIN_KEY_MAX];
    uint64_t now = now_ms();

    s_login_key(key, peer, user);
    snprintf(peer_key, sizeof peer_key, "%s", peer != NULL ? peer : "");
    pthread_mutex_lock(&s_login_mu);
    s_record(key, now);
    s_record(peer_key, now);
    pthread_mutex_unlock(&s_login_mu);
}

void api_login_succeeded(const char *peer, const char *user)
{
    char key[API_LOGIN_KEY_MAX];
    struct login_entry *e;

    s_login_key(key, peer, user);
    pthread_mutex_lock(&s_login_mu);
    e = s_login_find(key);
    if (e != NULL)
        *e = s_login[--s_nlogin];
    pthread_mutex_unlock(&s_login_mu);
}
