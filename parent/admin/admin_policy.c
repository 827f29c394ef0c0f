/* admin_policy: policy rules and areas (R5.1, R5.2) in PostgreSQL, and their part of the
 * configuration snapshot. A change loads the whole set under a lock, edits it in memory,
 * validates it with policy_compile() (the children's own check), and only then writes it, with
 * a new configuration version and a NOTIFY, in the same transaction. */
#include "admin/admin.h"
#include "admin/admin_update.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "log.h"
#include "policy.h"
#include "util.h"

#define ADMIN_POLICY_LOCK "1886351989"  /* advisory lock: one policy change at a time */

/* The rules (in order) and areas as stored; the protobuf form is what policy_compile takes. */
struct pset {
    Portcullis__PolicyRule **rules;
    size_t nrules;
    Portcullis__Area **areas;
    size_t nareas;
    uint64_t version;
};

/* --- rules in protobuf form ------------------------------------------------------------------ */

Portcullis__PolicyRule *admin_policy_rule_new(const char *name)
{
    Portcullis__PolicyRule *r = xcalloc(1, sizeof *r);

    portcullis__policy_rule__init(r);
    /* Every string is our own copy: free_unpacked frees them all. */
    r->name = xstrdup(name);
    r->scope = xstrdup("any");
    r->match = xstrdup("all");
    r->enabled = true;
    return r;
}

void admin_policy_rule_add_domain(Portcullis__PolicyRule *r, const char *domain)
{
    r->domains = xrealloc(r->domains, (r->n_domains + 1) * sizeof *r->domains);
    r->domains[r->n_domains++] = xstrdup(domain);
}

void admin_policy_rule_add_condition(Portcullis__PolicyRule *r, const char *kind,
                                     const char *value, bool negate)
{
    Portcullis__Condition *c = xcalloc(1, sizeof *c);

    portcullis__condition__init(c);
    c->kind = xstrdup(kind);
    c->value = xstrdup(value != NULL ? value : "");
    c->negate = negate;
    r->conditions = xrealloc(r->conditions, (r->n_conditions + 1) * sizeof *r->conditions);
    r->conditions[r->n_conditions++] = c;
}

void admin_policy_rule_add_action(Portcullis__PolicyRule *r, const char *kind, const char *arg)
{
    Portcullis__Action *a = xcalloc(1, sizeof *a);

    portcullis__action__init(a);
    /* R5.1: quarantine and archive go to the default areas unless one is named. */
    if ((arg == NULL || *arg == '\0') && strcmp(kind, "quarantine") == 0)
        arg = ADMIN_AREA_DEFAULT_QUARANTINE;
    else if ((arg == NULL || *arg == '\0') && strcmp(kind, "archive") == 0)
        arg = ADMIN_AREA_DEFAULT_ARCHIVE;
    a->kind = xstrdup(kind);
    a->arg = xstrdup(arg != NULL ? arg : "");
    r->actions = xrealloc(r->actions, (r->n_actions + 1) * sizeof *r->actions);
    r->actions[r->n_actions++] = a;
}

static Portcullis__Area *s_area_new(const char *name, const char *kind, unsigned days)
{
    Portcullis__Area *a = xcalloc(1, sizeof *a);

    portcullis__area__init(a);
    a->name = xstrdup(name);
    a->kind = xstrdup(kind);
    a->retention_days = days;
    return a;
}

static Portcullis__PolicyRule *s_rule_copy(const Portcullis__PolicyRule *src)
{
    Portcullis__PolicyRule *r = admin_policy_rule_new(src->name);

    free(r->scope);
    free(r->match);
    r->scope = xstrdup(src->scope);
    r->match = xstrdup(src->match);
    r->enabled = src->enabled;
    for (size_t i = 0; i < src->n_domains; i++)
        admin_policy_rule_add_domain(r, src->domains[i]);
    for (size_t i = 0; i < src->n_conditions; i++)
        admin_policy_rule_add_condition(r, src->conditions[i]->kind, src->conditions[i]->value,
                                        src->conditions[i]->negate);
    for (size_t i = 0; i < src->n_actions; i++)
        admin_policy_rule_add_action(r, src->actions[i]->kind, src->actions[i]->arg);
    return r;
}

static void s_pset_free(struct pset *ps)
{
    for (size_t i = 0; i < ps->nrules; i++)
        portcullis__policy_rule__free_unpacked(ps->rules[i], NULL);
    for (size_t i = 0; i < ps->nareas; i++)
        portcullis__area__free_unpacked(ps->areas[i], NULL);
    free(ps->rules);
    free(ps->areas);
    memset(ps, 0, sizeof *ps);
}

/* --- loading ------------------------------------------------------------------------------------ */

static void s_rule_from_json(Portcullis__PolicyRule *r, const char *domains, const char *conds,
                             const char *acts)
{
    json_t *d = json_loads(domains, 0, NULL), *c = json_loads(conds, 0, NULL);
    json_t *a = json_loads(acts, 0, NULL), *v;
    size_t i;

    json_array_foreach(d, i, v)
        admin_policy_rule_add_domain(r, json_string_value(v) ? json_string_value(v) : "");
    json_array_foreach(c, i, v) {
        const char *k = json_string_value(json_object_get(v, "kind"));
        admin_policy_rule_add_condition(r, k ? k : "",
                                        json_string_value(json_object_get(v, "value")),
                                        json_is_true(json_object_get(v, "negate")));
    }
    json_array_foreach(a, i, v) {
        const char *k = json_string_value(json_object_get(v, "kind"));
        admin_policy_rule_add_action(r, k ? k : "", json_string_value(json_object_get(v, "arg")));
    }
    json_decref(d);
    json_decref(c);
    json_decref(a);
}

/* Loads the version, the rules in order and the areas, inside the caller's transaction. */
static int s_load(PGconn *c, struct pset *ps, char *err, size_t errlen)
{
    PGresult *r;

    memset(ps, 0, sizeof *ps);
    if (admin_config_version(c, &ps->version, err, errlen) != 0)
        return -1;
    r = db_query(c, "SELECT name, scope, match, enabled, array_to_json(domains)::text, "
                    "conditions::text, actions::text FROM policy_rules ORDER BY position",
                 0, NULL, err, errlen);
    if (r == NULL)
        return -1;
    ps->nrules = (size_t)PQntuples(r);
    ps->rules = xcalloc(ps->nrules, sizeof *ps->rules);
    for (size_t i = 0; i < ps->nrules; i++) {
        Portcullis__PolicyRule *pr = admin_policy_rule_new(PQgetvalue(r, (int)i, 0));
        free(pr->scope);
        free(pr->match);
        pr->scope = xstrdup(PQgetvalue(r, (int)i, 1));
        pr->match = xstrdup(PQgetvalue(r, (int)i, 2));
        pr->enabled = strcmp(PQgetvalue(r, (int)i, 3), "t") == 0;
        s_rule_from_json(pr, PQgetvalue(r, (int)i, 4), PQgetvalue(r, (int)i, 5),
                         PQgetvalue(r, (int)i, 6));
        ps->rules[i] = pr;
    }
    PQclear(r);
    r = db_query(c, "SELECT name, kind, retention_days FROM areas ORDER BY id", 0, NULL, err,
                 errlen);
    if (r == NULL) {
        s_pset_free(ps);
        return -1;
    }
    ps->nareas = (size_t)PQntuples(r);
    ps->areas = xcalloc(ps->nareas, sizeof *ps->areas);
    for (size_t i = 0; i < ps->nareas; i++)
        ps->areas[i] = s_area_new(PQgetvalue(r, (int)i, 0), PQgetvalue(r, (int)i, 1),
                                  (unsigned)strtoul(PQgetvalue(r, (int)i, 2), NULL, 10));
    PQclear(r);
    return 0;
}

static int s_load_snapshot(PGconn *c, struct pset *ps, char *err, size_t errlen)
{
    int rc;

    if (db_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err, errlen) != 0)
        return -1;
    rc = s_load(c, ps, err, errlen);
    db_rollback(c);
    return rc;
}

/* --- changing ----------------------------------------------------------------------------------- */

/* BEGIN, take the policy lock, load: the set cannot change under us until commit. */
static int s_begin(PGconn *c, struct pset *ps, char *err, size_t errlen)
{
    if (db_begin(c, err, errlen) != 0)
        return -1;
    if (db_exec(c, "SELECT pg_advisory_xact_lock(" ADMIN_POLICY_LOCK ")", 0, NULL, err,
                errlen) != 0 || s_load(c, ps, err, errlen) != 0) {
        db_rollback(c);
        return -1;
    }
    return 0;
}

static int s_validate(const struct pset *ps, char *err, size_t errlen)
{
    /* Spam rules are checked by admin_spam.c: nothing here refers to them. */
    policy_t *p = policy_compile(ps->rules, ps->nrules, ps->areas, ps->nareas, NULL, 0, err,
                                 errlen);

    if (p == NULL)
        return -1;
    policy_free(&p);
    return 0;
}

static int s_abort(PGconn *c, struct pset *ps)
{
    db_rollback(c);
    s_pset_free(ps);
    return -1;
}

static ssize_t s_rule_find(const struct pset *ps, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < ps->nrules; i++)
        if (strcmp(ps->rules[i]->name, name) == 0)
            return (ssize_t)i;
    snprintf(err, errlen, "no rule is named \"%.127s\" (see `portcullis policy list`)", name);
    return -1;
}

static ssize_t s_area_find(const struct pset *ps, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < ps->nareas; i++)
        if (strcmp(ps->areas[i]->name, name) == 0)
            return (ssize_t)i;
    snprintf(err, errlen, "no area is named \"%.127s\" (see `portcullis area list`)", name);
    return -1;
}

/* Writes the in-memory order as positions 1..n (one statement: the deferrable unique
 * constraint is checked at its end). */
static int s_write_order(PGconn *c, const struct pset *ps, char *err, size_t errlen)
{
    json_t *names = json_array();
    char *text;
    int rc;

    for (size_t i = 0; i < ps->nrules; i++)
        json_array_append_new(names, json_string(ps->rules[i]->name));
    text = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    {
        const char *p[] = { text };
        rc = db_exec(c, "UPDATE policy_rules SET position = o.n::int, updated_at = now() "
                        "FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS o(name, n) "
                        "WHERE policy_rules.name = o.name AND policy_rules.position <> o.n",
                     1, p, err, errlen);
    }
    free(text);
    return rc;
}

/* --- areas -------------------------------------------------------------------------------------- */

/* Rule name and action number of the first rule that sends mail to area i; NULL if none. */
static const char *s_area_user(const struct pset *ps, const char *area, size_t *action)
{
    for (size_t i = 0; i < ps->nrules; i++) {
        for (size_t j = 0; j < ps->rules[i]->n_actions; j++) {
            const Portcullis__Action *a = ps->rules[i]->actions[j];
            if ((strcmp(a->kind, "quarantine") == 0 || strcmp(a->kind, "archive") == 0) &&
                strcmp(a->arg, area) == 0) {
                *action = j + 1;
                return ps->rules[i]->name;
            }
        }
    }
    return NULL;
}

json_t *admin_area_list(PGconn *c, char *err, size_t errlen)
{
    struct pset ps;
    json_t *out, *arr;

    if (s_load_snapshot(c, &ps, err, errlen) != 0)
        return NULL;
    out = json_object();
    arr = json_array();
    json_object_set_new(out, "config_version", json_integer((json_int_t)ps.version));
    for (size_t i = 0; i < ps.nareas; i++) {
        const Portcullis__Area *a = ps.areas[i];
        json_t *o = json_object(), *users = json_array();
        for (size_t r = 0; r < ps.nrules; r++)
            for (size_t j = 0; j < ps.rules[r]->n_actions; j++)
                if (strcmp(ps.rules[r]->actions[j]->kind, a->kind) == 0 &&
                    strcmp(ps.rules[r]->actions[j]->arg, a->name) == 0) {
                    json_array_append_new(users, json_string(ps.rules[r]->name));
                    break;
                }
        json_object_set_new(o, "name", json_string(a->name));
        json_object_set_new(o, "kind", json_string(a->kind));
        json_object_set_new(o, "retention_days", json_integer(a->retention_days));
        json_object_set_new(o, "used_by", users);
        json_array_append_new(arr, o);
    }
    json_object_set_new(out, "areas", arr);
    s_pset_free(&ps);
    return out;
}

int admin_area_add(PGconn *c, const char *name, const char *kind, unsigned retention_days,
                   uint64_t *version, char *err, size_t errlen)
{
    struct pset ps;
    char days[16], reason[256];
    const char *p[] = { name, kind, days };

    *version = 0;
    if (s_begin(c, &ps, err, errlen) != 0)
        return -1;
    if (s_area_find(&ps, name, err, errlen) >= 0) {
        snprintf(err, errlen, "an area named \"%.127s\" already exists; choose another name or "
                              "change its retention with `portcullis area set`", name);
        return s_abort(c, &ps);
    }
    ps.areas = xrealloc(ps.areas, (ps.nareas + 1) * sizeof *ps.areas);
    ps.areas[ps.nareas++] = s_area_new(name, kind, retention_days);
    if (s_validate(&ps, err, errlen) != 0)
        return s_abort(c, &ps);
    snprintf(days, sizeof days, "%u", retention_days);
    snprintf(reason, sizeof reason, "area add \"%.127s\" %s", name, kind);
    if (db_exec(c, "INSERT INTO areas (name, kind, retention_days) VALUES ($1, $2, $3::int)", 3,
                p, err, errlen) != 0)
        return s_abort(c, &ps);
    s_pset_free(&ps);
    return admin_config_commit(c, reason, version, err, errlen);
}

int admin_area_set_retention(PGconn *c, const char *name, unsigned retention_days,
                             uint64_t *version, char *err, size_t errlen)
{
    struct pset ps;
    char days[16], reason[256];
    const char *p[] = { name, days };
    ssize_t i;

    *version = 0;
    if (s_begin(c, &ps, err, errlen) != 0)
        return -1;
    if ((i = s_area_find(&ps, name, err, errlen)) < 0)
        return s_abort(c, &ps);
    if (ps.areas[i]->retention_days == retention_days) {
        db_rollback(c);
        s_pset_free(&ps);
        return 0;
    }
    ps.areas[i]->retention_days = retention_days;
    if (s_validate(&ps, err, errlen) != 0)
        return s_abort(c, &ps);
    snprintf(days, sizeof days, "%u", retention_days);
    snprintf(reason, sizeof reason, "area set \"%.127s\" retention_days=%u", name, retention_days);
    if (db_exec(c, "UPDATE areas SET retention_days = $2::int WHERE name = $1", 2, p, err,
                errlen) != 0)
        return s_abort(c, &ps);
    s_pset_free(&ps);
    return admin_config_commit(c, reason, version, err, errlen);
}

int admin_area_remove(PGconn *c, const char *name, uint64_t *version, char *err, size_t errlen)
{
    struct pset ps;
    char reason[256];
    const char *p[] = { name }, *user;
    size_t action;
    ssize_t i;

    *version = 0;
    if (s_begin(c, &ps, err, errlen) != 0)
        return -1;
    if ((i = s_area_find(&ps, name, err, errlen)) < 0)
        return s_abort(c, &ps);
    if ((user = s_area_user(&ps, name, &action)) != NULL) {
        snprintf(err, errlen, "area \"%.127s\" is used by rule \"%.127s\" (action %zu); change "
                              "or remove that rule first", name, user, action);
        return s_abort(c, &ps);
    }
    portcullis__area__free_unpacked(ps.areas[i], NULL);
    memmove(&ps.areas[i], &ps.areas[i + 1], (ps.nareas - (size_t)i - 1) * sizeof *ps.areas);
    ps.nareas--;
    if (s_validate(&ps, err, errlen) != 0)
        return s_abort(c, &ps);
    snprintf(reason, sizeof reason, "area remove \"%.127s\"", name);
    if (db_exec(c, "DELETE FROM areas WHERE name = $1", 1, p, err, errlen) != 0)
        return s_abort(c, &ps);
    s_pset_free(&ps);
    return admin_config_commit(c, reason, version, err, errlen);
}

/* --- rules -------------------------------------------------------------------------------------- */

static json_t *s_rule_json(const Portcullis__PolicyRule *r, size_t position)
{
    json_t *o = json_object(), *d = json_array(), *cs = json_array(), *as = json_array();

    if (position > 0)
        json_object_set_new(o, "position", json_integer((json_int_t)position));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "enabled", json_boolean(r->enabled));
    json_object_set_new(o, "scope", json_string(r->scope));
    json_object_set_new(o, "match", json_string(r->match));
    for (size_t i = 0; i < r->n_domains; i++)
        json_array_append_new(d, json_string(r->domains[i]));
    for (size_t i = 0; i < r->n_conditions; i++)
        json_array_append_new(cs, json_pack("{s:s, s:s, s:b}", "kind", r->conditions[i]->kind,
                                            "value", r->conditions[i]->value, "negate",
                                            (int)r->conditions[i]->negate));
    for (size_t i = 0; i < r->n_actions; i++)
        json_array_append_new(as, json_pack("{s:s, s:s}", "kind", r->actions[i]->kind, "arg",
                                            r->actions[i]->arg));
    json_object_set_new(o, "domains", d);
    json_object_set_new(o, "conditions", cs);
    json_object_set_new(o, "actions", as);
    return o;
}

json_t *admin_policy_list(PGconn *c, char *err, size_t errlen)
{
    struct pset ps;
    json_t *out, *arr;

    if (s_load_snapshot(c, &ps, err, errlen) != 0)
        return NULL;
    out = json_object();
    arr = json_array();
    json_object_set_new(out, "config_version", json_integer((json_int_t)ps.version));
    for (size_t i = 0; i < ps.nrules; i++)
        json_array_append_new(arr, s_rule_json(ps.rules[i], i + 1));
    json_object_set_new(out, "rules", arr);
    s_pset_free(&ps);
    return out;
}

int admin_policy_add(PGconn *c, const Portcullis__PolicyRule *rule, unsigned position,
                     uint64_t *version, char *err, size_t errlen)
{
    struct pset ps;
    json_t *j;
    char *dj, *cj, *aj, reason[256];
    size_t at;
    int rc;

    *version = 0;
    if (s_begin(c, &ps, err, errlen) != 0)
        return -1;
    if (position > ps.nrules + 1) {
        snprintf(err, errlen, "position %u is out of range: from 1 to %zu (there are %zu rules)",
                 position, ps.nrules + 1, ps.nrules);
        return s_abort(c, &ps);
    }
    if (ps.nrules > 0 && s_rule_find(&ps, rule->name, err, errlen) >= 0) {
        snprintf(err, errlen, "a rule named \"%.127s\" already exists; choose another name or "
                              "remove it first", rule->name);
        return s_abort(c, &ps);
    }
    at = position == 0 ? ps.nrules : position - 1;
    ps.rules = xrealloc(ps.rules, (ps.nrules + 1) * sizeof *ps.rules);
    memmove(&ps.rules[at + 1], &ps.rules[at], (ps.nrules - at) * sizeof *ps.rules);
    ps.rules[at] = s_rule_copy(rule);
    ps.nrules++;
    if (s_validate(&ps, err, errlen) != 0)
        return s_abort(c, &ps);

    j = s_rule_json(ps.rules[at], 0);
    dj = json_dumps(json_object_get(j, "domains"), JSON_COMPACT);
    cj = json_dumps(json_object_get(j, "conditions"), JSON_COMPACT);
    aj = json_dumps(json_object_get(j, "actions"), JSON_COMPACT);
    json_decref(j);
    {
        const char *p[] = { rule->name, rule->scope, dj, rule->match, cj, aj,
                            rule->enabled ? "true" : "false" };
        /* Last for now (n+1 is free: positions are 1..n); s_write_order puts it in place. */
        rc = db_exec(c, "INSERT INTO policy_rules (name, position, scope, domains, match, "
                        "conditions, actions, enabled) VALUES ($1, "
                        "(SELECT coalesce(max(position), 0) + 1 FROM policy_rules), $2, "
                        "ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4, $5::jsonb, "
                        "$6::jsonb, $7::boolean)", 7, p, err, errlen);
    }
    free(dj);
    free(cj);
    free(aj);
    if (rc != 0 || s_write_order(c, &ps, err, errlen) != 0)
        return s_abort(c, &ps);
    snprintf(reason, sizeof reason, "policy add \"%.127s\" at %zu", rule->name, at + 1);
    s_pset_free(&ps);
    return admin_config_commit(c, reason, version, err, errlen);
}

int admin_policy_remove(PGconn *c, const char *name, uint64_t *version, char *err,
                        size_t errlen)
{
    struct pset ps;
    char reason[256];
    const char *p[] = { name };
    ssize_t i;

    *version = 0;
    if (s_begin(c, &ps, err, errlen) != 0)
        return -1;
    if ((i = s_rule_find(&ps, name, err, errlen)) < 0)
        return s_abort(c, &ps);
    portcullis__policy_rule__free_unpacked(ps.rules[i], NULL);
    memmove(&ps.rules[i], &ps.rules[i + 1], (ps.nrules - (size_t)i - 1) * sizeof *ps.rules);
    ps.nrules--;
    if (s_validate(&ps, err, errlen) != 0)
        return s_abort(c, &ps);
    snprintf(reason, sizeof reason, "policy remove \"%.127s\"", name);
    if (db_exec(c, "DELETE FROM policy_rules WHERE name = $1", 1, p, err, errlen) != 0 ||
        s_write_order(c, &ps, err, errlen) != 0)
        return s_abort(c, &ps);
    s_pset_free(&ps);
    return admin_config_commit(c, reason, version, err, errlen);
}

int admin_policy_change(PGconn *c, const char *name, unsigned position, int enabled,
                        uint64_t *version, char *err, size_t errlen)
{
    struct pset ps;
    Portcullis__PolicyRule *r;
    char reason[256];
    const char *p[] = { name, enabled == 1 ? "true" : "false" };
    bool move, flip;
    ssize_t i;
    size_t to = 0;

    *version = 0;
    if (s_begin(c, &ps, err, errlen) != 0)
        return -1;
    if ((i = s_rule_find(&ps, name, err, errlen)) < 0)
        return s_abort(c, &ps);
    if (position != 0 && position > ps.nrules) {
        snprintf(err, errlen, "position %u is out of range: from 1 to %zu", position, ps.nrules);
        return s_abort(c, &ps);
    }
    if (position != 0)
        to = position - 1;
    move = position != 0 && to != (size_t)i;
    flip = enabled >= 0 && (bool)ps.rules[i]->enabled != (enabled == 1);
    if (!move && !flip) {
        db_rollback(c);
        s_pset_free(&ps);
        return 0;
    }
    r = ps.rules[i];
    if (flip)
        r->enabled = enabled == 1;
    if (move) {
        if (to < (size_t)i)
            memmove(&ps.rules[to + 1], &ps.rules[to], ((size_t)i - to) * sizeof *ps.rules);
        else
            memmove(&ps.rules[i], &ps.rules[i + 1], (to - (size_t)i) * sizeof *ps.rules);
        ps.rules[to] = r;
    }
    if (s_validate(&ps, err, errlen) != 0)
        return s_abort(c, &ps);
    if (move && flip)
        snprintf(reason, sizeof reason, "policy move \"%.127s\" to %u, %s", name, position,
                 enabled == 1 ? "enable" : "disable");
    else if (move)
        snprintf(reason, sizeof reason, "policy move \"%.127s\" to %u", name, position);
    else
        snprintf(reason, sizeof reason, "policy %s \"%.127s\"", enabled == 1 ? "enable" : "disable",
                 name);
    if ((move && s_write_order(c, &ps, err, errlen) != 0) ||
        (flip && db_exec(c, "UPDATE policy_rules SET enabled = $2::boolean, updated_at = now() "
                            "WHERE name = $1", 2, p, err, errlen) != 0))
        return s_abort(c, &ps);
    s_pset_free(&ps);
    return admin_config_commit(c, reason, version, err, errlen);
}

int admin_policy_move(PGconn *c, const char *name, unsigned position, uint64_t *version,
                      char *err, size_t errlen)
{
    if (position < 1) {
        snprintf(err, errlen, "position %u is out of range: positions start at 1", position);
        *version = 0;
        return -1;
    }
    return admin_policy_change(c, name, position, -1, version, err, errlen);
}

int admin_policy_set_enabled(PGconn *c, const char *name, bool enabled, uint64_t *version,
                             char *err, size_t errlen)
{
    return admin_policy_change(c, name, 0, enabled ? 1 : 0, version, err, errlen);
}

/* --- the configuration snapshot ----------------------------------------------------------------- */

int admin_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err, size_t errlen)
{
    struct pset ps;
    char cerr[1024];

    if (s_load_snapshot(c, &ps, err, errlen) != 0)
        return -1;
    /* Sent even if it does not compile (a newer, stricter child): the children refuse it with
     * the reason, which `portcullis status` shows; said here too. */
    if (s_validate(&ps, cerr, sizeof cerr) != 0)
        log_warn("configuration version=%" PRIu64 " has a policy the children will refuse: %s",
                 snap->version, cerr);
    snap->rules = ps.rules;
    snap->n_rules = ps.nrules;
    snap->areas = ps.areas;
    snap->n_areas = ps.nareas;
    if (admin_wrs_snapshot_fill(c, snap, err, errlen) != 0 ||
        admin_update_snapshot_fill(c, snap, err, errlen) != 0 ||
        admin_spam_snapshot_fill(c, snap, err, errlen) != 0) {
        admin_snapshot_clear(snap);
        return -1;
    }
    return 0;
}

void admin_snapshot_clear(Portcullis__ConfigSnapshot *snap)
{
    struct pset ps = { .rules = snap->rules, .nrules = snap->n_rules, .areas = snap->areas,
                       .nareas = snap->n_areas };

    s_pset_free(&ps);
    snap->rules = NULL;
    snap->n_rules = 0;
    snap->areas = NULL;
    snap->n_areas = 0;
    admin_wrs_snapshot_clear(snap);
    admin_update_snapshot_clear(snap);
    admin_spam_snapshot_clear(snap);
}
