/* test_keytab: the enrolled keys the cluster loop judges links from (issue 12 point 2,
 * R10.1/R10.2): found by key and by id; a put replaces whatever held the same id (a re-keyed
 * child) or the same key (a key enrolled again under a new id, after a removal); bad keys are
 * not taken; a few thousand entries in any order stay searchable both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "cluster/keytab.h"

/* A valid-looking 40-character Z85 key made from n. */
static void s_key(char out[KEYS_Z85_LEN + 1], unsigned n)
{
    snprintf(out, KEYS_Z85_LEN + 1, "k%039u", n);
}

static void test_put_find(void **state)
{
    keytab_t *t = keytab_new();
    char k1[KEYS_Z85_LEN + 1], k2[KEYS_Z85_LEN + 1];
    const struct keytab_entry *e;

    (void)state;
    s_key(k1, 1);
    s_key(k2, 2);
    assert_null(keytab_by_key(t, k1));
    assert_null(keytab_by_id(t, 7));
    keytab_put(t, 7, k1, "child1");
    keytab_put(t, 3, k2, "child2");
    assert_int_equal(keytab_count(t), 2);
    e = keytab_by_key(t, k1);
    assert_non_null(e);
    assert_int_equal(e->id, 7);
    assert_string_equal(e->name, "child1");
    assert_string_equal(keytab_by_id(t, 3)->key, k2);
    assert_null(keytab_by_key(t, "short"));
    assert_null(keytab_by_key(t, NULL));
    keytab_put(t, 9, "too short", "x"); /* not a key: not taken */
    assert_int_equal(keytab_count(t), 2);
    keytab_free(&t);
    assert_null(t);
    keytab_free(&t); /* NULL-safe */
}

static void test_replace(void **state)
{
    keytab_t *t = keytab_new();
    char k1[KEYS_Z85_LEN + 1], k2[KEYS_Z85_LEN + 1], k3[KEYS_Z85_LEN + 1];

    (void)state;
    s_key(k1, 1);
    s_key(k2, 2);
    s_key(k3, 3);
    keytab_put(t, 1, k1, "a");
    keytab_put(t, 2, k2, "b");
    keytab_put(t, 1, k3, "a"); /* child a re-keyed: its old key no longer lets it in */
    assert_int_equal(keytab_count(t), 2);
    assert_null(keytab_by_key(t, k1));
    assert_int_equal(keytab_by_key(t, k3)->id, 1);
    keytab_put(t, 5, k2, "b"); /* b removed and enrolled again: a new id, the same key */
    assert_int_equal(keytab_count(t), 2);
    assert_null(keytab_by_id(t, 2));
    assert_int_equal(keytab_by_key(t, k2)->id, 5);
    keytab_put(t, 5, k3, "c"); /* both at once: id 5 and key k3 held by two entries */
    assert_int_equal(keytab_count(t), 1);
    assert_null(keytab_by_id(t, 1));
    assert_null(keytab_by_key(t, k2));
    assert_string_equal(keytab_by_id(t, 5)->name, "c");
    keytab_free(&t);
}

static void test_many(void **state)
{
    keytab_t *t = keytab_new();
    char k[KEYS_Z85_LEN + 1];
    const unsigned n = 5000;

    (void)state;
    for (unsigned i = 0; i < n; i++) { /* ids and keys in two different orders */
        unsigned j = (i * 7919u) % n; /* 7919 is prime to n: a permutation */
        s_key(k, j);
        keytab_put(t, (int64_t)(n - j), k, "c");
    }
    assert_int_equal(keytab_count(t), n);
    for (unsigned j = 0; j < n; j++) {
        s_key(k, j);
        assert_non_null(keytab_by_key(t, k));
        assert_int_equal(keytab_by_key(t, k)->id, (int64_t)(n - j));
        assert_string_equal(keytab_by_id(t, (int64_t)(n - j))->key, k);
    }
    assert_null(keytab_by_id(t, 0));
    assert_null(keytab_by_id(t, (int64_t)n + 1));
    keytab_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_find),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
