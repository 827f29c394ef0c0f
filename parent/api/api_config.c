/* api_config: the REST routes for the cluster's configuration (R3.2, R3.7, R4.3, R5.1, R5.2,
 * R6.1): settings, the MTA retry timetable, policy rules, areas, anti-spam rules, the
 * web-reputation lists, component updates and notification mail. Each handler checks the
 * JSON body's shape and hands the values to the parent/admin operation the `portcullis` CLI
 * uses (which validates them the way a child would); it answers what the CLI prints with
 * --json, and a change answers the configuration version it made. */
#include "api/api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_notify.h"
#include "admin/admin_update.h"
#include "mta_retry.h"
#include "policy.h"
#include "util.h"

#define CONFIG_ERR_MAX 1024          /* bytes of an admin_* error message */
#define CONFIG_AREA_DAYS_MAX 1000000 /* retention_days taken from JSON; admin_area_* says 1..60 */
#define CONFIG_FAILURE_AT_DEFAULT (9 * 3600 + 15 * 60) /* GET /mta: a failure at 09:15 … */
#define CONFIG_FIRST_RUN_DEFAULT (5 * 60)              /* … and the first queue run 5 min on */
#define CONFIG_SETTING_VALUE_MAX 64  /* bytes of a number or bool turned into a setting's text */

static const char *const s_no_fields[] = { NULL };

/* A change's answer: obj (may be NULL → a new object) with config_version; 0 means nothing
 * needed to change, said as such. */
static void s_changed(struct api_resp *rs, json_t *obj, uint64_t version)
{
    if (obj == NULL)
        obj = json_object();
    json_object_set_new(obj, "config_version", json_integer((json_int_t)version));
    json_object_set_new(obj, "changed", json_boolean(version != 0));
    api_ok(rs, obj);
}

/* An admin_* change's failure. The admin messages name a missing thing as "no rule is
 * named …", "no area is named …", "no clamav version …": a 404 when the path named it
 * (named), a 400 when the body did (a rule's action naming no area is a bad body). */
static void s_fail(struct api_resp *rs, const char *err, bool named)
{
    if (strncmp(err, "database", 8) == 0 || strncmp(err, "cannot connect", 14) == 0)
        api_fail(rs, 503, "%s", err);
    else if (strstr(err, "already") != NULL || strstr(err, " is used by ") != NULL)
        api_fail(rs, 409, "%s", err);
    else if (named && (strncmp(err, "no ", 3) == 0 || strncmp(err, "unknown component", 17) == 0))
        api_fail(rs, 404, "%s", err);
    else
        api_fail(rs, 400, "%s", err);
}

/* An admin_* reader's result: 200 or the failure. */
static void s_answer(struct api_resp *rs, json_t *obj, const char *err)
{
    if (obj == NULL)
        api_fail_admin(rs, err);
    else
        api_ok(rs, obj);
}

/* ?key=N within min..max, def when absent. 0 ok, -1 answered 400. */
static int s_query_int(const struct api_req *rq, struct api_resp *rs, const char *key,
                       int64_t def, int64_t min, int64_t max, int64_t *out)
{
    const char *v = api_query(rq, key);

    *out = def;
    if (v == NULL)
        return 0;
    if (parse_int64(v, out) != 0 || *out < min || *out > max) {
        api_fail(rs, 400, "query field \"%s\" must be a number from %" PRId64 " to %" PRId64,
                 key, min, max);
        return -1;
    }
    return 0;
}

/* --- nested body objects (conditions, actions, wrs entries) --------------------------------- */

static int s_obj_only(struct api_resp *rs, const json_t *o, const char *where,
                      const char *const *allowed)
{
    const char *k;
    json_t *v;

    if (!json_is_object(o)) {
        api_fail(rs, 400, "%s must be an object", where);
        return -1;
    }
    json_object_foreach((json_t *)o, k, v) {
        size_t i;
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], k) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            api_fail(rs, 400, "%s: unknown field \"%.64s\"", where, k);
            return -1;
        }
    }
    return 0;
}

static int s_obj_string(struct api_resp *rs, const json_t *o, const char *where,
                        const char *key, bool required, const char **out)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL && !required)
        return 1;
    if (!json_is_string(v)) {
        api_fail(rs, 400, "%s: field \"%s\" %s", where, key,
                 v == NULL ? "is missing" : "must be a string");
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        api_fail(rs, 400, "%s: field \"%s\" must not contain NUL characters", where, key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* The body's array field key (required or not), at most max elements. */
static int s_body_array(const struct api_req *rq, struct api_resp *rs, const char *key,
                        bool required, size_t max, const json_t **out)
{
    const json_t *v = rq->body != NULL ? json_object_get(rq->body, key) : NULL;

    if (v == NULL && !required)
        return 1;
    if (!json_is_array(v)) {
        api_fail(rs, 400, "field \"%s\" %s", key,
                 v == NULL ? "is missing" : "must be an array");
        return -1;
    }
    if (json_array_size(v) > max) {
        api_fail(rs, 400, "field \"%s\" has %zu elements; at most %zu", key, json_array_size(v),
                 max);
        return -1;
    }
    *out = v;
    return 0;
}

/* --- settings (R6.1) ------------------------------------------------------------------------ */

/* R8.8: a secret setting's value is shown masked to every role but admin. */
static void s_mask_for(const struct api_req *rq, json_t *setting)
{
    const struct setting_def *d;
    char masked[SETTINGS_VALUE_MAX];

    if (rq->role >= API_ROLE_ADMIN || setting == NULL ||
        (d = settings_find_key(json_string_value(json_object_get(setting, "key")))) == NULL ||
        !settings_is_secret(d->id) || !json_is_string(json_object_get(setting, "value")))
        return;
    settings_mask(json_string_value(json_object_get(setting, "value")), masked, sizeof masked);
    if (strcmp(masked, json_string_value(json_object_get(setting, "value"))) == 0)
        return; /* nothing secret in it (no password, no query) */
    json_object_set_new(setting, "value", json_string(masked));
    json_object_set_new(setting, "masked", json_true());
}

static void s_settings_list(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];
    json_t *all = admin_settings_describe(rq->db, NULL, err, sizeof err), *one;
    size_t i;

    if (all != NULL)
        json_array_foreach(json_object_get(all, "settings"), i, one)
            s_mask_for(rq, one);
    s_answer(rs, all, err);
}

/* {"config_version": N, "setting": {key, type, value, default, min, max, unit, description}} */
static json_t *s_setting_one(PGconn *db, const char *key, char *err, size_t errlen)
{
    json_t *all = admin_settings_describe(db, key, err, errlen), *o;

    if (all == NULL)
        return NULL;
    o = json_pack("{s:O, s:O}", "config_version", json_object_get(all, "config_version"),
                  "setting", json_array_get(json_object_get(all, "settings"), 0));
    json_decref(all);
    return o;
}

static void s_settings_get(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];
    json_t *o = s_setting_one(rq->db, rq->params[0], err, sizeof err);

    if (o != NULL)
        s_mask_for(rq, json_object_get(o, "setting"));
    s_answer(rs, o, err);
}

/* PUT /settings/{key} {value}: a string, number or bool; refused (400, nothing stored) when
 * the settings table's validator or the MTA retry check says no. */
static void s_settings_put(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "value", NULL };
    const char *key = rq->params[0];
    char err[CONFIG_ERR_MAX], text[CONFIG_SETTING_VALUE_MAX];
    const char *value = text;
    const json_t *v = rq->body != NULL ? json_object_get(rq->body, "value") : NULL;
    uint64_t version;
    json_t *o;

    snprintf(rs->target, sizeof rs->target, "%s", key);
    if (api_body_only(rq, rs, allowed) != 0)
        return;
    if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)) {
        value = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(text, sizeof text, "%.17g", json_real_value(v)); /* the validator refuses */
    } else if (json_is_boolean(v)) {
        snprintf(text, sizeof text, "%s", json_is_true(v) ? "true" : "false");
    } else {
        api_fail(rs, 400, "field \"value\" %s", v == NULL ? "is missing"
                          : "must be a string, a number or true/false");
        return;
    }
    if (settings_find_key(key) == NULL) {
        api_fail(rs, 404, "unknown setting '%.128s' (GET /api/v1/settings lists them)", key);
        return;
    }
    if (settings_is_secret(settings_find_key(key)->id)) { /* the audit log is for viewers too */
        char masked[SETTINGS_VALUE_MAX];
        settings_mask(value, masked, sizeof masked);
        snprintf(rs->detail, sizeof rs->detail, "%.256s", masked);
    } else {
        snprintf(rs->detail, sizeof rs->detail, "%.256s", value);
    }
    if (admin_settings_set(rq->db, key, value, &version, err, sizeof err) != 0) {
        /* the value is refused unless the database failed */
        if (strncmp(err, "database", 8) == 0)
            api_fail(rs, 503, "%s", err);
        else
            api_fail(rs, 400, "%s", err);
        return;
    }
    if ((o = s_setting_one(rq->db, key, err, sizeof err)) == NULL) {
        api_fail_admin(rs, err);
        return;
    }
    api_ok(rs, json_pack("{s:s, s:O, s:I}", "key", key,
                         "value", json_object_get(json_object_get(o, "setting"), "value"),
                         "config_version", (json_int_t)version));
    json_decref(o);
}

/* --- the MTA retry timetable (R4.3) --------------------------------------------------------- */

/* ?failure_at=HH:MM (default 09:15) &first_run_after=5m (Postfix time, default 5m). */
static void s_mta(struct api_req *rq, struct api_resp *rs)
{
    const char *fa = api_query(rq, "failure_at"), *fr = api_query(rq, "first_run_after");
    int64_t failure_at = CONFIG_FAILURE_AT_DEFAULT, first_run = CONFIG_FIRST_RUN_DEFAULT;
    char err[CONFIG_ERR_MAX], extra;
    int h, m;

    if (fa != NULL) {
        if (sscanf(fa, "%d:%d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 || m < 0 || m > 59) {
            api_fail(rs, 400, "query field \"failure_at\" takes HH:MM (00:00 to 23:59)");
            return;
        }
        failure_at = (int64_t)h * 3600 + m * 60;
    }
    if (fr != NULL && mta_retry_parse_time(fr, &first_run) != 0) {
        api_fail(rs, 400, "query field \"first_run_after\" takes a time like 5m or 300s");
        return;
    }
    s_answer(rs, admin_mta_timetable(rq->db, failure_at, first_run, err, sizeof err), err);
}

/* --- policy rules (R5.1) -------------------------------------------------------------------- */

static void s_policy_list(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];

    s_answer(rs, admin_policy_list(rq->db, err, sizeof err), err);
}

/* conditions [{kind, value?, negate?}] and actions [{kind, arg?}] into r; -1 answered 400. */
static int s_policy_parts(const struct api_req *rq, struct api_resp *rs,
                          Portcullis__PolicyRule *r)
{
    static const char *const cond_fields[] = { "kind", "value", "negate", NULL };
    static const char *const act_fields[] = { "kind", "arg", NULL };
    const json_t *conds = NULL, *acts = NULL, *e;
    char where[48];
    size_t i;

    if (s_body_array(rq, rs, "conditions", false, POLICY_CONDITIONS_MAX, &conds) < 0 ||
        s_body_array(rq, rs, "actions", true, POLICY_ACTIONS_MAX, &acts) < 0)
        return -1;
    json_array_foreach(conds, i, e) {
        const char *kind, *value = "";
        const json_t *neg;
        snprintf(where, sizeof where, "conditions[%zu]", i);
        if (s_obj_only(rs, e, where, cond_fields) != 0 ||
            s_obj_string(rs, e, where, "kind", true, &kind) < 0 ||
            s_obj_string(rs, e, where, "value", false, &value) < 0)
            return -1;
        neg = json_object_get(e, "negate");
        if (neg != NULL && !json_is_boolean(neg)) {
            api_fail(rs, 400, "%s: field \"negate\" must be true or false", where);
            return -1;
        }
        admin_policy_rule_add_condition(r, kind, value, json_is_true(neg));
    }
    if (json_array_size(acts) == 0) {
        api_fail(rs, 400, "a rule needs at least one action (deliver, delete, quarantine, "
                          "archive, tag_subject, add_header, notify)");
        return -1;
    }
    json_array_foreach(acts, i, e) {
        const char *kind, *arg = "";
        snprintf(where, sizeof where, "actions[%zu]", i);
        if (s_obj_only(rs, e, where, act_fields) != 0 ||
            s_obj_string(rs, e, where, "kind", true, &kind) < 0 ||
            s_obj_string(rs, e, where, "arg", false, &arg) < 0)
            return -1;
        admin_policy_rule_add_action(r, kind, arg); /* the default area when arg is "" */
    }
    return 0;
}

/* The rule's scope, match, enabled and domains from the body; -1 answered 400. */
static int s_policy_head(const struct api_req *rq, struct api_resp *rs,
                         Portcullis__PolicyRule *r)
{
    const char *scope, *match;
    const json_t *domains = NULL, *d;
    bool enabled;
    int rc;
    size_t i;

    if ((rc = api_body_string(rq, rs, "scope", false, &scope)) < 0)
        return -1;
    if (rc == 0) {
        free(r->scope);
        r->scope = xstrdup(scope);
    }
    if ((rc = api_body_string(rq, rs, "match", false, &match)) < 0)
        return -1;
    if (rc == 0) {
        free(r->match);
        r->match = xstrdup(match);
    }
    if ((rc = api_body_bool(rq, rs, "enabled", false, &enabled)) < 0)
        return -1;
    if (rc == 0)
        r->enabled = enabled;
    if (s_body_array(rq, rs, "domains", false, POLICY_RULES_MAX, &domains) < 0)
        return -1;
    json_array_foreach(domains, i, d) {
        if (!json_is_string(d) || strlen(json_string_value(d)) != json_string_length(d)) {
            api_fail(rs, 400, "domains[%zu] must be a string", i);
            return -1;
        }
        admin_policy_rule_add_domain(r, json_string_value(d));
    }
    return 0;
}

static void s_policy_add(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "name", "position", "enabled", "scope", "domains",
                                           "match", "conditions", "actions", NULL };
    char err[CONFIG_ERR_MAX];
    Portcullis__PolicyRule *r;
    const char *name;
    int64_t position = 0;
    uint64_t version;

    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "name", true, &name) != 0 ||
        api_body_int(rq, rs, "position", false, 1, POLICY_RULES_MAX + 1, &position) < 0)
        return;
    snprintf(rs->target, sizeof rs->target, "%s", name);
    r = admin_policy_rule_new(name);
    if (s_policy_head(rq, rs, r) == 0 && s_policy_parts(rq, rs, r) == 0) {
        if (admin_policy_add(rq->db, r, (unsigned)position, &version, err, sizeof err) != 0)
            s_fail(rs, err, false);
        else
            s_changed(rs, json_pack("{s:s, s:I}", "name", name, "position", (json_int_t)position),
                      version);
    }
    portcullis__policy_rule__free_unpacked(r, NULL);
}

/* PUT /policy/rules/{name} {position?, enabled?}: at least one; the move goes first. */
static void s_policy_change(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "position", "enabled", NULL };
    const char *name = rq->params[0];
    char err[CONFIG_ERR_MAX];
    int64_t position;
    bool enabled;
    int has_pos, has_en;
    uint64_t version = 0;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (api_body_only(rq, rs, allowed) != 0 ||
        (has_pos = api_body_int(rq, rs, "position", false, 1, POLICY_RULES_MAX, &position)) < 0 ||
        (has_en = api_body_bool(rq, rs, "enabled", false, &enabled)) < 0)
        return;
    if (has_pos != 0 && has_en != 0) {
        api_fail(rs, 400, "give \"position\" (from 1, first) or \"enabled\" (true or false)");
        return;
    }
    /* one transaction: a move that succeeded is never left behind by a failed switch */
    if (admin_policy_change(rq->db, name, has_pos == 0 ? (unsigned)position : 0,
                            has_en == 0 ? (enabled ? 1 : 0) : -1, &version, err,
                            sizeof err) != 0) {
        s_fail(rs, err, true);
        return;
    }
    snprintf(rs->detail, sizeof rs->detail, "%s%s%s", has_pos == 0 ? "moved" : "",
             has_pos == 0 && has_en == 0 ? ", " : "",
             has_en == 0 ? (enabled ? "enabled" : "disabled") : "");
    s_changed(rs, json_pack("{s:s}", "name", name), version);
}

static void s_policy_remove(struct api_req *rq, struct api_resp *rs)
{
    const char *name = rq->params[0];
    char err[CONFIG_ERR_MAX];
    uint64_t version;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (admin_policy_remove(rq->db, name, &version, err, sizeof err) != 0)
        s_fail(rs, err, true);
    else
        s_changed(rs, json_pack("{s:s}", "name", name), version);
}

/* --- areas (R5.2) --------------------------------------------------------------------------- */

static void s_area_list(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];

    s_answer(rs, admin_area_list(rq->db, err, sizeof err), err);
}

static void s_area_add(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "name", "kind", "retention_days", NULL };
    char err[CONFIG_ERR_MAX];
    const char *name, *kind;
    int64_t days = ADMIN_AREA_RETENTION_DEFAULT;
    uint64_t version;

    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "name", true, &name) != 0 ||
        api_body_string(rq, rs, "kind", true, &kind) != 0 ||
        api_body_int(rq, rs, "retention_days", false, 0, CONFIG_AREA_DAYS_MAX, &days) < 0)
        return;
    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (admin_area_add(rq->db, name, kind, (unsigned)days, &version, err, sizeof err) != 0)
        s_fail(rs, err, false);
    else
        s_changed(rs, json_pack("{s:s, s:s, s:I}", "name", name, "kind", kind,
                                "retention_days", (json_int_t)days), version);
}

static void s_area_change(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "retention_days", NULL };
    const char *name = rq->params[0];
    char err[CONFIG_ERR_MAX];
    int64_t days;
    uint64_t version;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_int(rq, rs, "retention_days", true, 0, CONFIG_AREA_DAYS_MAX, &days) != 0)
        return;
    snprintf(rs->detail, sizeof rs->detail, "retention %" PRId64 " days", days);
    if (admin_area_set_retention(rq->db, name, (unsigned)days, &version, err, sizeof err) != 0)
        s_fail(rs, err, true);
    else
        s_changed(rs, json_pack("{s:s, s:I}", "name", name, "retention_days", (json_int_t)days),
                  version);
}

static void s_area_remove(struct api_req *rq, struct api_resp *rs)
{
    const char *name = rq->params[0];
    char err[CONFIG_ERR_MAX];
    uint64_t version;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (admin_area_remove(rq->db, name, &version, err, sizeof err) != 0)
        s_fail(rs, err, true);
    else
        s_changed(rs, json_pack("{s:s}", "name", name), version);
}

/* --- anti-spam rules (R5.1) ----------------------------------------------------------------- */

static void s_spam_list(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];

    s_answer(rs, admin_spam_list(rq->db, err, sizeof err), err);
}

static void s_spam_add(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "name", "kind", "value", "score", "position", NULL };
    char err[CONFIG_ERR_MAX];
    const char *name, *kind, *value;
    const json_t *score = rq->body != NULL ? json_object_get(rq->body, "score") : NULL;
    int64_t position = 0;
    uint64_t version;

    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_string(rq, rs, "name", true, &name) != 0 ||
        api_body_string(rq, rs, "kind", true, &kind) != 0 ||
        api_body_string(rq, rs, "value", true, &value) != 0 ||
        api_body_int(rq, rs, "position", false, 1, POLICY_SPAM_RULES_MAX + 1, &position) < 0)
        return;
    if (!json_is_number(score)) {
        api_fail(rs, 400, "field \"score\" %s", score == NULL ? "is missing"
                          : "must be a number from -100 to 100 (e.g. 2.5)");
        return;
    }
    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (admin_spam_add(rq->db, name, kind, value, json_number_value(score), (unsigned)position,
                       &version, err, sizeof err) != 0)
        s_fail(rs, err, false);
    else
        s_changed(rs, json_pack("{s:s}", "name", name), version);
}

static void s_spam_change(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "enabled", NULL };
    const char *name = rq->params[0];
    char err[CONFIG_ERR_MAX];
    bool enabled;
    uint64_t version;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (api_body_only(rq, rs, allowed) != 0 ||
        api_body_bool(rq, rs, "enabled", true, &enabled) != 0)
        return;
    snprintf(rs->detail, sizeof rs->detail, "%s", enabled ? "enabled" : "disabled");
    if (admin_spam_set_enabled(rq->db, name, enabled, &version, err, sizeof err) != 0)
        s_fail(rs, err, true);
    else
        s_changed(rs, json_pack("{s:s, s:b}", "name", name, "enabled", enabled), version);
}

static void s_spam_remove(struct api_req *rq, struct api_resp *rs)
{
    const char *name = rq->params[0];
    char err[CONFIG_ERR_MAX];
    uint64_t version;

    snprintf(rs->target, sizeof rs->target, "%s", name);
    if (admin_spam_remove(rq->db, name, &version, err, sizeof err) != 0)
        s_fail(rs, err, true);
    else
        s_changed(rs, json_pack("{s:s}", "name", name), version);
}

/* --- web reputation (R3.2) ------------------------------------------------------------------ */

static void s_wrs_list(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];
    int64_t limit;

    if (s_query_int(rq, rs, "limit", ADMIN_WRS_LIST_DEFAULT, 0, ADMIN_WRS_ENTRIES_MAX,
                    &limit) != 0)
        return;
    s_answer(rs, admin_wrs_list(rq->db, (size_t)limit, err, sizeof err), err);
}

/* One entry of POST /wrs checked as the CLI's import checks a line; pattern gets an owned,
 * normalised copy. -1 answered 400 naming the entry. */
static int s_wrs_entry(struct api_resp *rs, const json_t *e, size_t i,
                       struct admin_wrs_entry *out, char **pattern)
{
    static const char *const fields[] = { "kind", "pattern", "level", "category", NULL };
    const json_t *level = json_object_get(e, "level");
    const char *kind, *pat, *cat, *why;
    char where[40];

    snprintf(where, sizeof where, "entries[%zu]", i);
    if (s_obj_only(rs, e, where, fields) != 0 ||
        s_obj_string(rs, e, where, "kind", true, &kind) < 0 ||
        s_obj_string(rs, e, where, "pattern", true, &pat) < 0 ||
        s_obj_string(rs, e, where, "category", true, &cat) < 0)
        return -1;
    if (!json_is_integer(level)) {
        api_fail(rs, 400, "%s: field \"level\" %s", where, level == NULL ? "is missing"
                          : "must be a number from 1 to 100");
        return -1;
    }
    *pattern = xstrdup(pat);
    if (admin_wrs_entry_check(kind, *pattern, (long long)json_integer_value(level), cat,
                              &why) != 0) {
        api_fail(rs, 400, "%s: %s; nothing imported", where, why);
        return -1;
    }
    *out = (struct admin_wrs_entry){ .kind = kind, .pattern = *pattern,
                                     .level = (unsigned)json_integer_value(level),
                                     .category = cat };
    return 0;
}

/* POST /wrs {entries: [...], replace?}: every entry is checked before anything is stored. */
static void s_wrs_import(struct api_req *rq, struct api_resp *rs)
{
    static const char *const allowed[] = { "entries", "replace", NULL };
    char err[CONFIG_ERR_MAX], **patterns;
    const json_t *entries, *e;
    struct admin_wrs_entry *ent;
    bool replace = false;
    size_t i, n, total = 0;
    uint64_t version = 0;
    int rc = 0;

    if (api_body_only(rq, rs, allowed) != 0 ||
        s_body_array(rq, rs, "entries", true, ADMIN_WRS_ENTRIES_MAX, &entries) != 0 ||
        api_body_bool(rq, rs, "replace", false, &replace) < 0)
        return;
    n = json_array_size(entries);
    ent = xcalloc(n + 1, sizeof *ent);
    patterns = xcalloc(n + 1, sizeof *patterns);
    json_array_foreach(entries, i, e) {
        if ((rc = s_wrs_entry(rs, e, i, &ent[i], &patterns[i])) != 0)
            break;
    }
    snprintf(rs->target, sizeof rs->target, "web-reputation lists");
    snprintf(rs->detail, sizeof rs->detail, "%zu entries%s", n, replace ? " (replace)" : "");
    if (rc == 0) {
        if (admin_wrs_import(rq->db, ent, n, replace, &version, &total, err, sizeof err) != 0)
            s_fail(rs, err, false);
        else
            s_changed(rs, json_pack("{s:I, s:I}", "imported", (json_int_t)n, "total",
                                    (json_int_t)total), version);
    }
    for (i = 0; i < n; i++)
        free(patterns[i]);
    free(patterns);
    free(ent);
}

/* --- component updates (R3.7) --------------------------------------------------------------- */

static void s_update_list(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];

    s_answer(rs, admin_update_list(rq->db, err, sizeof err), err);
}

/* POST /updates/{component}/{version}/use: an imported version becomes current (also an older
 * one: a rollback). Importing stays with the CLI: a package is larger than API_BODY_MAX. */
static void s_update_use(struct api_req *rq, struct api_resp *rs)
{
    const char *component = rq->params[0], *version = rq->params[1];
    char err[CONFIG_ERR_MAX];
    uint64_t cv = 0;

    snprintf(rs->target, sizeof rs->target, "%s %s", component, version);
    if (api_body_only(rq, rs, s_no_fields) != 0)
        return;
    if (admin_update_use(rq->db, component, version, &cv, err, sizeof err) != 0)
        s_fail(rs, err, true);
    else
        s_changed(rs, json_pack("{s:s, s:s}", "component", component, "version", version), cv);
}

/* --- notification mail (R2.4, R5.11) -------------------------------------------------------- */

static void s_notify_list(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];
    int64_t limit;
    json_t *arr;

    if (s_query_int(rq, rs, "limit", ADMIN_NOTIFY_LIST_DEFAULT, 1, ADMIN_NOTIFY_LIST_MAX,
                    &limit) != 0)
        return;
    if ((arr = admin_notify_list(rq->db, (size_t)limit, err, sizeof err)) == NULL)
        api_fail_admin(rs, err);
    else
        api_ok(rs, json_pack("{s:o}", "notifications", arr));
}

static void s_notify_test(struct api_req *rq, struct api_resp *rs)
{
    char err[CONFIG_ERR_MAX];
    long long id;

    snprintf(rs->target, sizeof rs->target, "notify.admin_address");
    if (api_body_only(rq, rs, s_no_fields) != 0)
        return;
    if (admin_notify_test(rq->db, rq->user, &id, err, sizeof err) != 0)
        api_fail_admin(rs, err);
    else
        api_ok(rs, json_pack("{s:I}", "id", (json_int_t)id));
}

#define P API_PREFIX
static const struct api_route s_routes[] = {
    { "GET", P "/settings", API_ROLE_VIEWER, NULL, s_settings_list,
      "every setting with value, default, range, unit and description" },
    { "GET", P "/settings/{key}", API_ROLE_VIEWER, NULL, s_settings_get, "one setting" },
    { "PUT", P "/settings/{key}", API_ROLE_ADMIN, "settings set", s_settings_put,
      "change a setting (new configuration version)" },
    { "GET", P "/mta", API_ROLE_VIEWER, NULL, s_mta, "the upstream MTA's retry timetable" },
    { "GET", P "/policy/rules", API_ROLE_VIEWER, NULL, s_policy_list,
      "policy rules in evaluation order" },
    { "POST", P "/policy/rules", API_ROLE_ADMIN, "policy add", s_policy_add, "add a policy rule" },
    { "PUT", P "/policy/rules/{name}", API_ROLE_ADMIN, "policy change", s_policy_change,
      "move, enable or disable a policy rule" },
    { "DELETE", P "/policy/rules/{name}", API_ROLE_ADMIN, "policy remove", s_policy_remove,
      "remove a policy rule" },
    { "GET", P "/areas", API_ROLE_VIEWER, NULL, s_area_list, "quarantine and archive areas" },
    { "POST", P "/areas", API_ROLE_ADMIN, "area add", s_area_add, "add an area" },
    { "PUT", P "/areas/{name}", API_ROLE_ADMIN, "area change", s_area_change,
      "change an area's retention" },
    { "DELETE", P "/areas/{name}", API_ROLE_ADMIN, "area remove", s_area_remove,
      "remove an area no rule uses" },
    { "GET", P "/spam/rules", API_ROLE_VIEWER, NULL, s_spam_list, "anti-spam rules in order" },
    { "POST", P "/spam/rules", API_ROLE_ADMIN, "spam add", s_spam_add, "add an anti-spam rule" },
    { "PUT", P "/spam/rules/{name}", API_ROLE_ADMIN, "spam change", s_spam_change,
      "enable or disable an anti-spam rule" },
    { "DELETE", P "/spam/rules/{name}", API_ROLE_ADMIN, "spam remove", s_spam_remove,
      "remove an anti-spam rule" },
    { "GET", P "/wrs", API_ROLE_VIEWER, NULL, s_wrs_list,
      "how many web-reputation entries, and the first ones" },
    { "POST", P "/wrs", API_ROLE_ADMIN, "wrs import", s_wrs_import,
      "merge entries into (or replace) the web-reputation lists" },
    { "GET", P "/updates", API_ROLE_VIEWER, NULL, s_update_list,
      "stored component packages, which one is current" },
    { "POST", P "/updates/{component}/{version}/use", API_ROLE_ADMIN, "update use", s_update_use,
      "make a stored component version current (e.g. roll back)" },
    { "GET", P "/notifications", API_ROLE_VIEWER, NULL, s_notify_list,
      "notification mail, newest first, with delivery state" },
    { "POST", P "/notifications/test", API_ROLE_ADMIN, "notify test", s_notify_test,
      "queue a test mail to notify.admin_address" },
};
#undef P

const struct api_route_table api_table_config = { s_routes, ARRAY_LEN(s_routes) };
