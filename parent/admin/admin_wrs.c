/* admin_wrs: the web-reputation block-lists (R3.2) in the wrs_entries table: imports (merge
 * or replace, one transaction with a new configuration version and its NOTIFY, like
 * admin_settings_set), the listing, and the entries of the parent's snapshot. */
#include "admin/admin.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util.h"

static bool s_domain_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > ADMIN_WRS_DOMAIN_MAX || s[0] == '.' || strstr(s, "..") != NULL)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return false;
    return true;
}

/* An absolute URL: scheme "://" host, printable, no spaces. */
static bool s_url_ok(const char *s)
{
    const char *sep = strstr(s, "://");

    if (sep == NULL || sep == s || strlen(s) > WIRE_WRS_PATTERN_MAX || sep[3] == '\0' ||
        strchr("/?#", sep[3]) != NULL)
        return false;
    for (const char *p = s; p < sep; p++)
        if (!isalpha((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return false;
    for (const char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return false;
    return true;
}

static bool s_category_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > WIRE_WRS_CATEGORY_MAX)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            return false;
    return true;
}

int admin_wrs_entry_check(const char *kind, char *pattern, long long level,
                          const char *category, const char **why)
{
    if (strcmp(kind, "domain") != 0 && strcmp(kind, "url") != 0) {
        *why = "kind must be \"domain\" or \"url\"";
        return -1;
    }
    if (strcmp(kind, "domain") == 0) {
        size_t n;
        for (char *p = pattern; *p != '\0'; p++)
            *p = (char)tolower((unsigned char)*p);
        while ((n = strlen(pattern)) > 1 && pattern[n - 1] == '.')
            pattern[n - 1] = '\0';
        if (!s_domain_ok(pattern)) {
            *why = "not a domain name (letters, digits, '-', '.'; at most 253 bytes)";
            return -1;
        }
    } else if (!s_url_ok(pattern)) {
        *why = "not an absolute URL (scheme://host…, no spaces, at most 255 bytes)";
        return -1;
    }
    if (level < 1 || level > 100) {
        *why = "level must be a number from 1 to 100";
        return -1;
    }
    if (!s_category_ok(category)) {
        *why = "category must be 1 to 63 letters, digits, '_' or '-'";
        return -1;
    }
    return 0;
}

int admin_wrs_import(PGconn *c, const struct admin_wrs_entry *e, size_t n, bool replace,
                     uint64_t *version, size_t *total, char *err, size_t errlen)
{
    char reason[96], level[16];
    PGresult *r;

    if (n > ADMIN_WRS_ENTRIES_MAX) {
        snprintf(err, errlen, "%zu entries; the web-reputation lists hold at most %d", n,
                 ADMIN_WRS_ENTRIES_MAX);
        return -1;
    }
    snprintf(reason, sizeof reason, "wrs import %zu entries%s", n, replace ? " (replace)" : "");
    if (db_begin(c, err, errlen) != 0)
        return -1;
    if (replace && db_exec(c, "DELETE FROM wrs_entries", 0, NULL, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *p[] = { e[i].kind, e[i].pattern, level, e[i].category };
        snprintf(level, sizeof level, "%u", e[i].level);
        if (db_exec(c, "INSERT INTO wrs_entries (kind, pattern, level, category) "
                       "VALUES ($1, $2, $3::int, $4) ON CONFLICT (kind, pattern) DO UPDATE "
                       "SET level = EXCLUDED.level, category = EXCLUDED.category", 4, p, err,
                    errlen) != 0)
            goto fail;
    }
    if ((r = db_query(c, "SELECT count(*) FROM wrs_entries", 0, NULL, err, errlen)) == NULL)
        goto fail;
    *total = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (*total > ADMIN_WRS_ENTRIES_MAX) {
        snprintf(err, errlen, "the lists would hold %zu entries, at most %d: nothing imported "
                 "(use --replace, or remove entries first)", *total, ADMIN_WRS_ENTRIES_MAX);
        goto fail;
    }
    return admin_config_commit(c, reason, version, err, errlen);
fail:
    db_rollback(c);
    return -1;
}

json_t *admin_wrs_list(PGconn *c, size_t limit, char *err, size_t errlen)
{
    char lim[24];
    const char *p[] = { lim };
    PGresult *r;
    json_t *out, *arr;

    snprintf(lim, sizeof lim, "%zu", limit);
    if ((r = db_query(c, "SELECT count(*) FROM wrs_entries", 0, NULL, err, errlen)) == NULL)
        return NULL;
    out = json_object();
    json_object_set_new(out, "count", json_integer(strtoll(PQgetvalue(r, 0, 0), NULL, 10)));
    PQclear(r);
    r = db_query(c, "SELECT kind, pattern, level, category FROM wrs_entries ORDER BY kind, "
                    "pattern LIMIT $1::int", 1, p, err, errlen);
    if (r == NULL) {
        json_decref(out);
        return NULL;
    }
    arr = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(PQgetvalue(r, i, 0)));
        json_object_set_new(o, "pattern", json_string(PQgetvalue(r, i, 1)));
        json_object_set_new(o, "level", json_integer(strtoll(PQgetvalue(r, i, 2), NULL, 10)));
        json_object_set_new(o, "category", json_string(PQgetvalue(r, i, 3)));
        json_array_append_new(arr, o);
    }
    PQclear(r);
    json_object_set_new(out, "entries", arr);
    return out;
}

int admin_wrs_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err,
                            size_t errlen)
{
    char lim[24];
    const char *p[] = { lim };
    PGresult *r;
    int n;

    snprintf(lim, sizeof lim, "%d", ADMIN_WRS_ENTRIES_MAX); /* imports keep to it */
    r = db_query(c, "SELECT kind, pattern, level, category FROM wrs_entries ORDER BY kind, "
                    "pattern LIMIT $1::int", 1, p, err, errlen);
    if (r == NULL)
        return -1;
    n = PQntuples(r);
    snap->wrs = n > 0 ? xcalloc((size_t)n, sizeof *snap->wrs) : NULL;
    for (int i = 0; i < n; i++) {
        Portcullis__WrsEntry *w = xcalloc(1, sizeof *w);
        portcullis__wrs_entry__init(w);
        w->kind = xstrdup(PQgetvalue(r, i, 0));
        w->pattern = xstrdup(PQgetvalue(r, i, 1));
        w->level = (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10);
        w->category = xstrdup(PQgetvalue(r, i, 3));
        snap->wrs[i] = w;
    }
    snap->n_wrs = (size_t)n;
    PQclear(r);
    return 0;
}

void admin_wrs_snapshot_clear(Portcullis__ConfigSnapshot *snap)
{
    for (size_t i = 0; i < snap->n_wrs; i++) {
        free(snap->wrs[i]->kind);
        free(snap->wrs[i]->pattern);
        free(snap->wrs[i]->category);
        free(snap->wrs[i]);
    }
    free(snap->wrs);
    snap->wrs = NULL;
    snap->n_wrs = 0;
}
