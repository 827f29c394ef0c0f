/* keytab: see keytab.h. Two sorted arrays of the same entries, one by key and one by id, for
 * binary search both ways; a few thousand children fit in a few hundred kilobytes and a
 * table is rebuilt whole by each load, so nothing cleverer pays. */
#include "cluster/keytab.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "util.h"

struct keytab {
    struct keytab_entry *by_key, *by_id;
    size_t n, cap;
};

static int s_cmp_key(const void *a, const void *b)
{
    return strcmp(((const struct keytab_entry *)a)->key, ((const struct keytab_entry *)b)->key);
}

static int s_cmp_id(const void *a, const void *b)
{
    int64_t x = ((const struct keytab_entry *)a)->id, y = ((const struct keytab_entry *)b)->id;
    return x < y ? -1 : x > y;
}

keytab_t *keytab_new(void)
{
    return xcalloc(1, sizeof(keytab_t));
}

static void s_reserve(keytab_t *t, size_t n)
{
    if (n <= t->cap)
        return;
    t->cap = t->cap ? 2 * t->cap : 64;
    while (t->cap < n)
        t->cap *= 2;
    t->by_key = xrealloc(t->by_key, t->cap * sizeof *t->by_key);
    t->by_id = xrealloc(t->by_id, t->cap * sizeof *t->by_id);
}

keytab_t *keytab_load(PGconn *db, char *err, size_t errlen)
{
    PGresult *r = db_query(db, "SELECT id, public_key, name FROM children "
                               "WHERE enrolment = 'enrolled' AND public_key IS NOT NULL",
                           0, NULL, err, errlen);
    keytab_t *t;
    int rows;

    if (r == NULL)
        return NULL;
    t = keytab_new();
    rows = PQntuples(r);
    s_reserve(t, (size_t)rows);
    for (int i = 0; i < rows; i++) {
        struct keytab_entry *e = &t->by_key[t->n];
        if (parse_int64(PQgetvalue(r, i, 0), &e->id) != 0 ||
            strlen(PQgetvalue(r, i, 1)) != KEYS_Z85_LEN)
            continue; /* the schema forbids both */
        memcpy(e->key, PQgetvalue(r, i, 1), KEYS_Z85_LEN + 1);
        strlcpy_p(e->name, PQgetvalue(r, i, 2), sizeof e->name);
        t->n++;
    }
    PQclear(r);
    if (t->n == 0)
        return t; /* no child yet: nothing allocated, nothing to sort */
    memcpy(t->by_id, t->by_key, t->n * sizeof *t->by_id);
    qsort(t->by_key, t->n, sizeof *t->by_key, s_cmp_key);
    qsort(t->by_id, t->n, sizeof *t->by_id, s_cmp_id);
    return t;
}

/* Index of the first entry not below probe in a sorted array (the insertion point). */
static size_t s_lower(const struct keytab_entry *a, size_t n, const struct keytab_entry *probe,
                      int (*cmp)(const void *, const void *))
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(&a[mid], probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const struct keytab_entry *s_find(const struct keytab_entry *a, size_t n,
                                         const struct keytab_entry *probe,
                                         int (*cmp)(const void *, const void *))
{
    size_t i = s_lower(a, n, probe, cmp);
    return i < n && cmp(&a[i], probe) == 0 ? &a[i] : NULL;
}

const struct keytab_entry *keytab_by_key(const keytab_t *t, const char *key_z85)
{
    struct keytab_entry probe;

    if (t == NULL || key_z85 == NULL || strlen(key_z85) != KEYS_Z85_LEN)
        return NULL;
    memcpy(probe.key, key_z85, KEYS_Z85_LEN + 1);
    return s_find(t->by_key, t->n, &probe, s_cmp_key);
}

const struct keytab_entry *keytab_by_id(const keytab_t *t, int64_t id)
{
    struct keytab_entry probe = { .id = id };

    return t != NULL ? s_find(t->by_id, t->n, &probe, s_cmp_id) : NULL;
}

/* Removes the entry equal to probe from a, if there is one. */
static void s_remove(struct keytab_entry *a, size_t n, const struct keytab_entry *probe,
                     int (*cmp)(const void *, const void *))
{
    size_t i = s_lower(a, n, probe, cmp);

    if (i < n && cmp(&a[i], probe) == 0)
        memmove(&a[i], &a[i + 1], (n - i - 1) * sizeof *a);
}

static void s_insert(struct keytab_entry *a, size_t n, const struct keytab_entry *e,
                     int (*cmp)(const void *, const void *))
{
    size_t i = s_lower(a, n, e, cmp);

    memmove(&a[i + 1], &a[i], (n - i) * sizeof *a);
    a[i] = *e;
}

void keytab_put(keytab_t *t, int64_t id, const char *key_z85, const char *name)
{
    struct keytab_entry e = { .id = id };
    const struct keytab_entry *old;

    if (key_z85 == NULL || strlen(key_z85) != KEYS_Z85_LEN)
        return;
    memcpy(e.key, key_z85, KEYS_Z85_LEN + 1);
    strlcpy_p(e.name, name, sizeof e.name);
    /* Whatever held this id or this key before is gone: both are unique in the table. */
    while ((old = keytab_by_id(t, id)) != NULL || (old = keytab_by_key(t, e.key)) != NULL) {
        struct keytab_entry gone = *old;
        s_remove(t->by_key, t->n, &gone, s_cmp_key);
        s_remove(t->by_id, t->n, &gone, s_cmp_id);
        t->n--;
    }
    s_reserve(t, t->n + 1);
    s_insert(t->by_key, t->n, &e, s_cmp_key);
    s_insert(t->by_id, t->n, &e, s_cmp_id);
    t->n++;
}

size_t keytab_count(const keytab_t *t)
{
    return t != NULL ? t->n : 0;
}

void keytab_free(keytab_t **tp)
{
    if (tp == NULL || *tp == NULL)
        return;
    free((*tp)->by_key);
    free((*tp)->by_id);
    free(*tp);
    *tp = NULL;
}
