/* api_children: the REST routes for children (R6.2, R7.1, R7.4): the fleet's children with
 * their enrolment, one-time enrolment tokens, approval, removal, and the commands to a whole
 * child (flush, reload, purge, apply-mta). Each handler is a thin shell over the parent/admin
 * operation the `portcullis child …` commands use, and answers what the CLI prints with --json. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_command.h"
#include "conf.h"
#include "util.h"

#define CHILDREN_ERR_MAX 1024       /* bytes of an admin_* error message */

static const struct conf *s_conf;   /* parent.conf, set once before the workers start */

void api_children_set_conf(const struct conf *conf)
{
    s_conf = conf;
}

/* The admin messages name a missing child as "no child named …", "no pending child named …"
 * or "… is not known": 404; no answer in time (the parent busy or down) 503; the rest as
 * api_fail_admin says ("already enrolled" 409, a down child 503). */
static void s_fail(struct api_resp *rs, const char *err)
{
    if (strncmp(err, "no child named", 14) == 0 || strncmp(err, "no pending child", 16) == 0 ||
        strstr(err, "is not known") != NULL)
        api_fail(rs, 404, "%s", err);
    else if (strncmp(err, "no answer", 9) == 0)
        api_fail(rs, 503, "%s", err);
    else
        api_fail_admin(rs, err);
}

/* POST /children {name}: a one-time enrolment token and the child.conf lines that use it. */
static void s_enroll(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "name", NULL };
    char err[CHILDREN_ERR_MAX], *conf_text = NULL;
    const char *name;
    json_t *o;

    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "name", true, &name) != 0)
        return;
    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (s_conf == NULL) {
        api_fail(rs, 503, "the API has no parent configuration to quote endpoints from");
        return;
    }
    if ((o = admin_enroll_offer(rq->db, s_conf, name, err, sizeof err)) == NULL) {
        s_fail(rs, err);
        return;
    }
    /* the lines to paste into the new child's child.conf, as the CLI prints them */
    if (asprintf(&conf_text, "name = %s\nparent_cluster = %s\nparent_enrol = %s\n"
                             "parent_public_key = %s\nenroll_token = %s\n", name,
                 json_string_value(json_object_get(o, "parent_cluster")),
                 json_string_value(json_object_get(o, "parent_enrol")),
                 json_string_value(json_object_get(o, "parent_public_key")),
                 json_string_value(json_object_get(o, "token"))) < 0) {
        json_decref(o);
        api_fail(rs, 500, "out of memory");
        return;
    }
    json_object_set_new(o, "child_conf", json_string(conf_text));
    free(conf_text);
    snprintf(rs->detail, sizeof rs->detail, "token valid %d hours", ADMIN_TOKEN_TTL_HOURS);
    api_ok(rs, o);
}

/* POST /children/{name}/approve {fingerprint}: a pending child is let in if the
 * administrator names its key's fingerprint (R8.3). */
static void s_approve(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "fingerprint", NULL };
    char err[CHILDREN_ERR_MAX];
    const char *name = rq->params[0], *fp;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "fingerprint", true, &fp) != 0)
        return;
    if (admin_child_approve(rq->db, name, fp, err, sizeof err) != 0) {
        s_fail(rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s, s:s}", "name", name, "enrolment", "enrolled"));
}

/* DELETE /children/{name}: the child and its key are forgotten. */
static void s_remove(struct api_req *rq, struct api_resp *rs)
{
    char err[CHILDREN_ERR_MAX];
    const char *name = rq->params[0];

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (admin_child_remove(rq->db, name, err, sizeof err) != 0) {
        s_fail(rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s, s:b}", "name", name, "removed", 1));
}

/* POST /children/{name}/commands/{kind} (R7.4): waits for the child's answer; a down child
 * or no answer in time is a 503 with the reason. admin_child_command audits it. */
static void s_command(struct api_req *rq, struct api_resp *rs)
{
    static const struct { const char *verb, *kind; } verbs[] = {
        { "flush", "flush" }, { "reload", "reload" }, { "purge", "purge" },
        { "apply-mta", "apply_mta" },
    };
    const char *name = rq->params[0], *verb = rq->params[1], *kind = NULL;
    char err[CHILDREN_ERR_MAX];
    json_t *detail = NULL;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    for (size_t i = 0; i < ARRAY_LEN(verbs); i++)
        if (strcmp(verbs[i].verb, verb) == 0)
            kind = verbs[i].kind;
    if (kind == NULL) {
        api_fail(rs, 404, "no command '%.64s' for a child: flush, reload, purge or apply-mta",
                 verb);
        return;
    }
    if (api_body_only(rq, rs, (const char *const[]){ NULL }) != 0)
        return;
    if (admin_child_command(rq->db, name, kind, rq->user, &detail, err, sizeof err) != 0) {
        s_fail(rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s, s:s, s:b, s:o?}", "child", name, "command", kind, "ok", 1,
                         "detail", detail));
}

static const struct api_route s_routes[] = {
    { "GET", API_PREFIX "/children", API_ROLE_VIEWER, NULL, api_fleet_status,
      "children with state, enrolment, heartbeat, configuration version and a summary of "
      "their health: filtered (state, name, lagging) and paged (limit, after)" },
    { "GET", API_PREFIX "/children/{name}/health", API_ROLE_VIEWER, NULL,
      api_fleet_child_health, "a child's whole last Health" },
    { "POST", API_PREFIX "/children", API_ROLE_ADMIN, "child enroll-token", s_enroll,
      "a one-time enrolment token and child.conf lines for a new child" },
    { "POST", API_PREFIX "/children/{name}/approve", API_ROLE_ADMIN, "child approve", s_approve,
      "let a pending child in" },
    { "DELETE", API_PREFIX "/children/{name}", API_ROLE_ADMIN, "child remove", s_remove,
      "forget a child and its key" },
    { "POST", API_PREFIX "/children/{name}/commands/{kind}", API_ROLE_OPERATOR, NULL, s_command,
      "flush, reload, purge or apply-mta on a child; waits for its answer" },
};

const struct api_route_table api_table_children = { s_routes, ARRAY_LEN(s_routes) };
