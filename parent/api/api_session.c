/* api_session: log-in and log-out of the console, who am I, users (admin) and API tokens
 * (issue 6 point 1). The operations are admin_users.c's, shared with `portcullis user …`;
 * here only the HTTP shape: bodies checked field by field, the session cookie, the log-in
 * rate limit (api_auth.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_users.h"
#include "api/api.h"
#include "api/api_auth.h"
#include "util.h"

#define API_COOKIE_ATTRS "HttpOnly; Secure; SameSite=Strict; Path=/"

/* --- log-in, log-out, me ---------------------------------------------------------------------- */

static void s_login(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "user", "password", NULL };
    const char *user = NULL, *password = NULL;
    char role[ADMIN_ROLE_MAX], secret[ADMIN_CRED_SECRET_HEX + 1], expires[40], err[256];
    int64_t uid = 0, cid = 0;
    unsigned wait_s = 0;
    int rc;

    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "user", true, &user) != 0 ||
        api_body_string(rq, rs, "password", true, &password) != 0)
        return;
    if (strlen(user) > ADMIN_USER_NAME_MAX || !admin_user_name_valid(user)) {
        api_fail(rs, 400, "field \"user\" is not a user name");
        return;
    }
    rq->user = user; /* the audit row's actor and target: who tried */
    strlcpy_p(rs->target, user, sizeof rs->target);
    if (!api_login_allowed(rq->peer, user, &wait_s)) {
        rs->retry_after_s = wait_s;
        api_fail(rs, 429, "too many failed log-ins for %s from this address; try again in %u s",
                 user, wait_s);
        return;
    }
    rc = admin_user_check_password(rq->db, user, password, &uid, role, err, sizeof err);
    if (rc < 0) {
        api_fail(rs, 503, "database unavailable");
        return;
    }
    if (rc > 0) {
        api_login_failed(rq->peer, user);
        api_fail(rs, 401, "wrong user name or password");
        return;
    }
    api_login_succeeded(rq->peer, user);
    if (admin_credential_create(rq->db, uid, "session", "console", ADMIN_SESSION_TTL_S, secret,
                                expires, &cid, err, sizeof err) != 0) {
        api_fail_admin(rs, err);
        return;
    }
    snprintf(rs->set_cookie, sizeof rs->set_cookie, "%s=%s; " API_COOKIE_ATTRS "; Max-Age=%d",
             API_SESSION_COOKIE, secret, ADMIN_SESSION_TTL_S);
    api_ok(rs, json_pack("{s:s, s:s, s:s}", "user", user, "role", role, "expires_at", expires));
}

static void s_logout(struct api_req *rq, struct api_resp *rs)
{
    char err[256];

    if (!rq->via_session) {
        api_fail(rs, 400, "log-out ends console sessions; revoke a token with "
                          "DELETE " API_PREFIX "/tokens/{id}");
        return;
    }
    if (admin_credential_revoke(rq->db, rq->user_id, rq->credential_id, err, sizeof err) != 0) {
        api_fail_admin(rs, err);
        return;
    }
    snprintf(rs->set_cookie, sizeof rs->set_cookie, "%s=; " API_COOKIE_ATTRS "; Max-Age=0",
             API_SESSION_COOKIE);
    strlcpy_p(rs->target, rq->user, sizeof rs->target);
    api_ok(rs, json_pack("{s:b}", "logged_out", 1));
}

static void s_me(struct api_req *rq, struct api_resp *rs)
{
    api_ok(rs, json_pack("{s:s, s:s, s:s, s:I}", "user", rq->user, "role",
                         api_role_name(rq->role), "auth", rq->via_session ? "session" : "token",
                         "credential_id", (json_int_t)rq->credential_id));
}

/* --- users ------------------------------------------------------------------------------------ */

static void s_users_list(struct api_req *rq, struct api_resp *rs)
{
    char err[256];
    json_t *j = admin_user_list(rq->db, err, sizeof err);

    if (j == NULL)
        api_fail_admin(rs, err);
    else
        api_ok(rs, j);
}

/* role (when given) must name a role: 0, or -1 answered. */
static int s_role_field(const char *role, struct api_resp *rs)
{
    enum api_role r;

    if (role != NULL && api_role_parse(role, &r) != 0) {
        api_fail(rs, 400, "field \"role\" must be admin, operator or viewer");
        return -1;
    }
    return 0;
}

static void s_user_add(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "name", "role", "password", NULL };
    const char *name = NULL, *role = NULL, *password = NULL;
    char err[256];

    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "name", true, &name) != 0 ||
        api_body_string(rq, rs, "role", true, &role) != 0 ||
        api_body_string(rq, rs, "password", true, &password) != 0 || s_role_field(role, rs) != 0)
        return;
    strlcpy_p(rs->target, name, sizeof rs->target);
    snprintf(rs->detail, sizeof rs->detail, "role=%s", role);
    if (admin_user_add(rq->db, name, role, password, err, sizeof err) != 0) {
        api_fail_admin(rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s, s:s}", "user", name, "role", role));
}

static void s_user_change(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "role", "password", "disabled", NULL };
    const char *name = rq->params[0], *role = NULL, *password = NULL;
    bool disabled = false;
    int has_disabled;
    char err[256];
    json_t *j;

    strlcpy_p(rs->target, name, sizeof rs->target);
    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "role", false, &role) < 0 ||
        api_body_string(rq, rs, "password", false, &password) < 0 ||
        (has_disabled = api_body_bool(rq, rs, "disabled", false, &disabled)) < 0 ||
        s_role_field(role, rs) != 0)
        return;
    if (role == NULL && password == NULL && has_disabled != 0) {
        api_fail(rs, 400, "nothing to change: give role, password or disabled");
        return;
    }
    snprintf(rs->detail, sizeof rs->detail, "%s%s%s%s", role != NULL ? "role=" : "",
             role != NULL ? role : "", password != NULL ? " password-changed" : "",
             has_disabled == 0 ? (disabled ? " disabled" : " enabled") : "");
    if (admin_user_update(rq->db, name, role, password, has_disabled == 0 ? (int)disabled : -1,
                          err, sizeof err) != 0) {
        api_fail_admin(rs, err);
        return;
    }
    j = json_pack("{s:s}", "user", name);
    if (j != NULL && role != NULL)
        json_object_set_new(j, "role", json_string(role));
    if (j != NULL && password != NULL)
        json_object_set_new(j, "password_changed", json_true());
    if (j != NULL && has_disabled == 0)
        json_object_set_new(j, "disabled", json_boolean(disabled));
    api_ok(rs, j);
}

static void s_user_remove(struct api_req *rq, struct api_resp *rs)
{
    char err[256];

    strlcpy_p(rs->target, rq->params[0], sizeof rs->target);
    if (admin_user_remove(rq->db, rq->params[0], err, sizeof err) != 0) {
        api_fail_admin(rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s}", "removed", rq->params[0]));
}

/* --- tokens ----------------------------------------------------------------------------------- */

static void s_tokens_list(struct api_req *rq, struct api_resp *rs)
{
    const char *all = api_query(rq, "all"), *kind = api_query(rq, "kind");
    bool everyone = all != NULL && strcmp(all, "1") == 0;
    char err[256];
    json_t *j;

    if (all != NULL && strcmp(all, "1") != 0 && strcmp(all, "0") != 0) {
        api_fail(rs, 400, "all must be 1 or 0");
        return;
    }
    if (kind != NULL && strcmp(kind, "session") != 0 && strcmp(kind, "token") != 0) {
        api_fail(rs, 400, "kind must be session or token");
        return;
    }
    if (everyone && rq->role < API_ROLE_ADMIN) {
        api_fail(rs, 403, "everyone's tokens (all=1) need the admin role; you are %s",
                 api_role_name(rq->role));
        return;
    }
    j = admin_credential_list(rq->db, everyone ? 0 : rq->user_id, kind, err, sizeof err);
    if (j == NULL)
        api_fail_admin(rs, err);
    else
        api_ok(rs, j);
}

static void s_token_create(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "label", "ttl_hours", NULL };
    const char *label = "";
    int64_t hours = ADMIN_API_TOKEN_TTL_DEFAULT_S / 3600, id = 0;
    char secret[ADMIN_CRED_SECRET_HEX + 1], expires[40], err[256];

    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "label", false, &label) < 0 ||
        api_body_int(rq, rs, "ttl_hours", false, 1, ADMIN_API_TOKEN_TTL_MAX_S / 3600, &hours) < 0)
        return;
    if (strlen(label) > ADMIN_API_LABEL_MAX) {
        api_fail(rs, 400, "field \"label\" has at most %d characters", ADMIN_API_LABEL_MAX);
        return;
    }
    strlcpy_p(rs->target, rq->user, sizeof rs->target);
    if (admin_credential_create(rq->db, rq->user_id, "token", label, hours * 3600, secret,
                                expires, &id, err, sizeof err) != 0) {
        api_fail_admin(rs, err);
        return;
    }
    snprintf(rs->target, sizeof rs->target, "token %" PRId64 " of %s", id, rq->user);
    snprintf(rs->detail, sizeof rs->detail, "label=\"%.100s\" expires_at=%s", label, expires);
    api_ok(rs, json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)id, "token", secret,
                         "expires_at", expires, "label", label, "role", api_role_name(rq->role)));
}

static void s_token_revoke(struct api_req *rq, struct api_resp *rs)
{
    int64_t id;
    char err[256];

    snprintf(rs->target, sizeof rs->target, "token %.64s", rq->params[0]);
    if (parse_int64(rq->params[0], &id) != 0 || id <= 0) {
        api_fail(rs, 400, "a token id is a positive whole number");
        return;
    }
    /* an admin may end anyone's; others only their own (someone else's is "no such token") */
    if (admin_credential_revoke(rq->db, rq->role >= API_ROLE_ADMIN ? 0 : rq->user_id, id, err,
                                sizeof err) != 0) {
        api_fail_admin(rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:I}", "revoked", (json_int_t)id));
}

static const struct api_route s_routes[] = {
    { "POST", API_PREFIX "/login", API_ROLE_NONE, "login", s_login,
      "log in with user and password; sets the console's session cookie" },
    { "POST", API_PREFIX "/logout", API_ROLE_VIEWER, "logout", s_logout,
      "end the console session in use" },
    { "GET", API_PREFIX "/me", API_ROLE_VIEWER, NULL, s_me, "who is logged in, with which role" },
    { "GET", API_PREFIX "/users", API_ROLE_ADMIN, NULL, s_users_list, "list users" },
    { "POST", API_PREFIX "/users", API_ROLE_ADMIN, "user add", s_user_add, "add a user" },
    { "PUT", API_PREFIX "/users/{name}", API_ROLE_ADMIN, "user change", s_user_change,
      "change a user's role or password, disable or enable them" },
    { "DELETE", API_PREFIX "/users/{name}", API_ROLE_ADMIN, "user remove", s_user_remove,
      "remove a user" },
    { "GET", API_PREFIX "/tokens", API_ROLE_VIEWER, NULL, s_tokens_list,
      "your live sessions and tokens (all=1: everyone's, admin)" },
    { "POST", API_PREFIX "/tokens", API_ROLE_VIEWER, "token create", s_token_create,
      "a bearer token for yourself, with your role (shown once)" },
    { "DELETE", API_PREFIX "/tokens/{id}", API_ROLE_VIEWER, "token revoke", s_token_revoke,
      "end a token or session (yours; an admin's: anyone's)" },
};

const struct api_route_table api_table_session = { s_routes, ARRAY_LEN(s_routes) };
