/* admin_spam: the anti-spam rules (R5.1) in the spam_rules table (007) and their part of the
 * configuration snapshot. Like admin_policy.c: a change loads the whole set under a lock, edits
 * it in memory, validates it with policy_compile() (the children's own check, so a bad regex is
 * refused here with the rule's name), and only then writes it, with a new configuration version
 * and a NOTIFY, in the same transaction. Positions stay dense 1..n. */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "policy.h"
#include "util.h"

#define ADMIN_SPAM_LOCK "1886351990" /* advisory lock: one anti-spam change at a time */

/* The rules in order, all of them (disabled too: enabling one must not need a new check). */
struct sset {
    Portcullis__SpamRule **rules;
    bool *enabled;
    size_t n;
};

static Portcullis__SpamRule *s_rule_new(const char *name, const char *kind, const char *value,
                                        double score)
{
    Portcullis__SpamRule *r = xcalloc(1, sizeof *r);

    portcullis__spam_rule__init(r);
    /* Our own copies: free_unpacked frees them. */
    r->name = xstrdup(name);
    r->kind = xstrdup(kind);
    r->value = xstrdup(value != NULL ? value : "");
    r->score = score;
    return r;
}

static void s_sset_free(struct sset *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        portcullis__spam_rule__free_unpacked(ss->rules[i], NULL);
    free(ss->rules);
    free(ss->enabled);
    memset(ss, 0, sizeof *ss);
}

/* Inside the caller's transaction. */
static int s_load(PGconn *c, struct sset *ss, char *err, size_t errlen)
{
    PGresult *r = db_query(c, "SELECT name, kind, value, score, enabled FROM spam_rules "
                              "ORDER BY position", 0, NULL, err, errlen);

    memset(ss, 0, sizeof *ss);
    if (r == NULL)
        return -1;
    ss->n = (size_t)PQntuples(r);
    ss->rules = xcalloc(ss->n, sizeof *ss->rules);
    ss->enabled = xcalloc(ss->n, sizeof *ss->enabled);
    for (size_t i = 0; i < ss->n; i++) {
        int row = (int)i;
        ss->rules[i] = s_rule_new(PQgetvalue(r, row, 0), PQgetvalue(r, row, 1),
                                  PQgetvalue(r, row, 2), strtod(PQgetvalue(r, row, 3), NULL));
        ss->enabled[i] = strcmp(PQgetvalue(r, row, 4), "t") == 0;
    }
    PQclear(r);
    return 0;
}

static int s_validate(const struct sset *ss, char *err, size_t errlen)
{
    policy_t *p = policy_compile(NULL, 0, NULL, 0, ss->rules, ss->n, err, errlen);

    if (p == NULL)
        return -1;
    policy_free(&p);
    return 0;
}

static int s_begin(PGconn *c, struct sset *ss, char *err, size_t errlen)
{
    if (db_begin(c, err, errlen) != 0)
        return -1;
    if (db_exec(c, "SELECT pg_advisory_xact_lock(" ADMIN_SPAM_LOCK ")", 0, NULL, err,
                errlen) != 0 || s_load(c, ss, err, errlen) != 0) {
        db_rollback(c);
        return -1;
    }
    return 0;
}

static int s_abort(PGconn *c, struct sset *ss)
{
    db_rollback(c);
    s_sset_free(ss);
    return -1;
}

/* New configuration version, NOTIFY (delivered at commit), COMMIT; rolls back on failure. */
static int s_finish(PGconn *c, struct sset *ss, const char *reason, uint64_t *version,
                    char *err, size_t errlen)
{
    s_sset_free(ss);
    return admin_config_commit(c, reason, version, err, errlen);
}

static ssize_t s_find(const struct sset *ss, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < ss->n; i++)
        if (strcmp(ss->rules[i]->name, name) == 0)
            return (ssize_t)i;
    snprintf(err, errlen, "no spam rule is named \"%.127s\" (see `portcullis spam list`)", name);
    return -1;
}

/* Positions 1..n in the order of ss (the deferrable unique key is checked at the statement's
 * end, so the renumbering may pass through duplicates). */
static int s_write_order(PGconn *c, const struct sset *ss, char *err, size_t errlen)
{
    json_t *names = json_array();
    char *text;
    int rc;

    for (size_t i = 0; i < ss->n; i++)
        json_array_append_new(names, json_string(ss->rules[i]->name));
    text = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    {
        const char *p[] = { text };
        rc = db_exec(c, "UPDATE spam_rules SET position = o.n::int, updated_at = now() "
                        "FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY "
                        "AS o(name, n) WHERE spam_rules.name = o.name "
                        "AND spam_rules.position <> o.n", 1, p, err, errlen);
    }
    free(text);
    return rc;
}

json_t *admin_spam_list(PGconn *c, char *err, size_t errlen)
{
    struct sset ss;
    uint64_t version;
    json_t *out, *arr;

    if (db_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err, errlen) != 0)
        return NULL;
    if (admin_config_version(c, &version, err, errlen) != 0 || s_load(c, &ss, err, errlen) != 0) {
        db_rollback(c);
        return NULL;
    }
    db_rollback(c);
    out = json_object();
    arr = json_array();
    json_object_set_new(out, "config_version", json_integer((json_int_t)version));
    for (size_t i = 0; i < ss.n; i++) {
        const Portcullis__SpamRule *r = ss.rules[i];
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s, s:f, s:b}", "position",
                                             (json_int_t)(i + 1), "name", r->name, "kind",
                                             r->kind, "value", r->value, "score", r->score,
                                             "enabled", (int)ss.enabled[i]));
    }
    json_object_set_new(out, "rules", arr);
    s_sset_free(&ss);
    return out;
}

int admin_spam_add(PGconn *c, const char *name, const char *kind, const char *value,
                   double score, unsigned position, uint64_t *version, char *err,
                   size_t errlen)
{
    struct sset ss;
    char reason[256], stext[48];
    size_t at;

    *version = 0;
    if (s_begin(c, &ss, err, errlen) != 0)
        return -1;
    if (position > ss.n + 1) {
        snprintf(err, errlen, "position %u is out of range: from 1 to %zu (there are %zu spam "
                              "rules)", position, ss.n + 1, ss.n);
        return s_abort(c, &ss);
    }
    if (ss.n > 0 && s_find(&ss, name, err, errlen) >= 0) {
        snprintf(err, errlen, "a spam rule named \"%.127s\" already exists; choose another name "
                              "or remove it first", name);
        return s_abort(c, &ss);
    }
    at = position == 0 ? ss.n : position - 1;
    ss.rules = xrealloc(ss.rules, (ss.n + 1) * sizeof *ss.rules);
    ss.enabled = xrealloc(ss.enabled, (ss.n + 1) * sizeof *ss.enabled);
    memmove(&ss.rules[at + 1], &ss.rules[at], (ss.n - at) * sizeof *ss.rules);
    memmove(&ss.enabled[at + 1], &ss.enabled[at], (ss.n - at) * sizeof *ss.enabled);
    ss.rules[at] = s_rule_new(name, kind, value, score);
    ss.enabled[at] = true;
    ss.n++;
    if (s_validate(&ss, err, errlen) != 0)
        return s_abort(c, &ss);
    snprintf(stext, sizeof stext, "%.17g", score); /* exact in double precision */
    {
        const char *p[] = { name, kind, value != NULL ? value : "", stext };
        /* Last for now (n+1 is free: positions are 1..n); s_write_order puts it in place. */
        if (db_exec(c, "INSERT INTO spam_rules (name, position, kind, value, score) VALUES ($1, "
                       "(SELECT coalesce(max(position), 0) + 1 FROM spam_rules), $2, $3, "
                       "$4::double precision)", 4, p, err, errlen) != 0 ||
            s_write_order(c, &ss, err, errlen) != 0)
            return s_abort(c, &ss);
    }
    snprintf(reason, sizeof reason, "spam add \"%.127s\" at %zu", name, at + 1);
    return s_finish(c, &ss, reason, version, err, errlen);
}

int admin_spam_remove(PGconn *c, const char *name, uint64_t *version, char *err, size_t errlen)
{
    struct sset ss;
    char reason[256];
    const char *p[] = { name };
    ssize_t i;

    *version = 0;
    if (s_begin(c, &ss, err, errlen) != 0)
        return -1;
    if ((i = s_find(&ss, name, err, errlen)) < 0)
        return s_abort(c, &ss);
    portcullis__spam_rule__free_unpacked(ss.rules[i], NULL);
    memmove(&ss.rules[i], &ss.rules[i + 1], (ss.n - (size_t)i - 1) * sizeof *ss.rules);
    memmove(&ss.enabled[i], &ss.enabled[i + 1], (ss.n - (size_t)i - 1) * sizeof *ss.enabled);
    ss.n--;
    if (db_exec(c, "DELETE FROM spam_rules WHERE name = $1", 1, p, err, errlen) != 0 ||
        s_write_order(c, &ss, err, errlen) != 0)
        return s_abort(c, &ss);
    snprintf(reason, sizeof reason, "spam remove \"%.127s\"", name);
    return s_finish(c, &ss, reason, version, err, errlen);
}

int admin_spam_set_enabled(PGconn *c, const char *name, bool enabled, uint64_t *version,
                           char *err, size_t errlen)
{
    struct sset ss;
    char reason[256];
    const char *p[] = { name, enabled ? "true" : "false" };
    ssize_t i;

    *version = 0;
    if (s_begin(c, &ss, err, errlen) != 0)
        return -1;
    if ((i = s_find(&ss, name, err, errlen)) < 0)
        return s_abort(c, &ss);
    if (ss.enabled[i] == enabled) {
        db_rollback(c);
        s_sset_free(&ss);
        return 0;
    }
    if (db_exec(c, "UPDATE spam_rules SET enabled = $2::boolean, updated_at = now() "
                   "WHERE name = $1", 2, p, err, errlen) != 0)
        return s_abort(c, &ss);
    snprintf(reason, sizeof reason, "spam %s \"%.127s\"", enabled ? "enable" : "disable", name);
    return s_finish(c, &ss, reason, version, err, errlen);
}

int admin_spam_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err,
                             size_t errlen)
{
    struct sset ss;
    size_t n = 0;

    if (db_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err, errlen) != 0)
        return -1;
    if (s_load(c, &ss, err, errlen) != 0) {
        db_rollback(c);
        return -1;
    }
    db_rollback(c);
    /* Only the enabled ones travel, in order; the rest are freed here. */
    for (size_t i = 0; i < ss.n; i++) {
        if (ss.enabled[i] && n < WIRE_SPAM_RULES_MAX)
            ss.rules[n++] = ss.rules[i];
        else
            portcullis__spam_rule__free_unpacked(ss.rules[i], NULL);
    }
    snap->spam_rules = ss.rules;
    snap->n_spam_rules = n;
    free(ss.enabled);
    return 0;
}

void admin_spam_snapshot_clear(Portcullis__ConfigSnapshot *snap)
{
    struct sset ss = { .rules = snap->spam_rules, .n = snap->n_spam_rules };

    s_sset_free(&ss);
    snap->spam_rules = NULL;
    snap->n_spam_rules = 0;
}
