/* keytab: the enrolled children's CURVE keys, in memory (R10.1, R10.2). The ZAP handler, a
 * new peer's first message and an enrolled child's EnrollRequest are answered from it, so a
 * reconnect storm of thousands of children costs the cluster loop no database round trip.
 *
 * A table is loaded whole in a database thread (keytab_load) and handed to the loop, which
 * keeps the only reference; the loop adds a key it learns from an accepted enrolment
 * (keytab_put) until the next load replaces the table. */
#ifndef PORTCULLIS_KEYTAB_H
#define PORTCULLIS_KEYTAB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define KEYTAB_NAME_MAX 64 /* bytes of a child name with its NUL (the schema allows 63) */

struct keytab_entry {
    int64_t id;
    char key[KEYS_Z85_LEN + 1];
    char name[KEYTAB_NAME_MAX];
};

typedef struct keytab keytab_t;

/* Every enrolled child with a key. NULL with err filled. */
keytab_t *keytab_load(PGconn *db, char *err, size_t errlen);
/* An empty table (before the first load, and for tests). */
keytab_t *keytab_new(void);
/* The entry of an enrolled key, or NULL. */
const struct keytab_entry *keytab_by_key(const keytab_t *t, const char *key_z85);
/* The entry of an enrolled child's id, or NULL. */
const struct keytab_entry *keytab_by_id(const keytab_t *t, int64_t id);
/* Adds or replaces the entry of id (and of its key). */
void keytab_put(keytab_t *t, int64_t id, const char *key_z85, const char *name);
size_t keytab_count(const keytab_t *t);
void keytab_free(keytab_t **tp);

#endif
