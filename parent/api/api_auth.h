/* api_auth: who is asking (issue 6 point 1): the console's session cookie or a bearer token,
 * looked up in api_credentials through admin_users; the CSRF rule for cookie-authenticated
 * changes; and the in-memory rate limit on failed log-ins (per peer address and user name). */
#ifndef PORTCULLIS_API_AUTH_H
#define PORTCULLIS_API_AUTH_H

#include <stdbool.h>

#include "admin/admin_users.h"
#include "api/api.h"

#define API_SESSION_COOKIE "portcullis_session"
#define API_CSRF_HEADER "X-Requested-With"
#define API_CSRF_VALUE "portcullis"
#define API_LOGIN_FAILURES_MAX 5    /* failed log-ins per peer and name within the window … */
#define API_LOGIN_WINDOW_S 300      /* … after which further tries get 429 until it passes */
#define API_LOGIN_PEER_FAILURES_MAX 50 /* failed log-ins per peer, whatever the names, within
                                        * the window: spraying names does not escape the limit */
#define API_LOGIN_TABLE_MAX 4096    /* peers × names remembered; the oldest is forgotten */

/* The request's headers that matter here (NULL when absent). */
struct api_auth_headers {
    const char *authorization;
    const char *cookie;
    const char *requested_with;
};

/* Authenticates rq (method set) from hd: fills user (storage for rq->user), user_id, role,
 * credential_id, via_session. 0 ok; -1 with rs answered: 401 missing, unknown or expired
 * credential, 403 a cookie-authenticated change without the CSRF header, 503 database. */
int api_auth(const struct api_auth_headers *hd, struct api_req *rq, struct api_resp *rs,
             char user[ADMIN_USER_NAME_MAX + 1]);

/* Log-in rate limit: false (retry_after_s set) while peer+user has API_LOGIN_FAILURES_MAX
 * failures, or peer API_LOGIN_PEER_FAILURES_MAX, within API_LOGIN_WINDOW_S. A success forgets
 * the peer+user failures only. */
bool api_login_allowed(const char *peer, const char *user, unsigned *retry_after_s);
void api_login_failed(const char *peer, const char *user);
void api_login_succeeded(const char *peer, const char *user);

#endif
