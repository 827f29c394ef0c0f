/* test_lookup_auth: the per-child look-up credential (R8.7) — both ends derive the same token
 * from their own secret and the other's public key, another child's key or name or another
 * look-up key gives another token, a low-order key gives none; the Authorization header parser
 * at its limits; the rating answer the look-up service passes on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_lookup.h"
#include "lookup_auth.h"

static void test_both_ends_agree(void **state)
{
    uint8_t lpk[32], lsk[32], cpk[32], csk[32], opk[32], osk[32], pub[32];
    char child_side[65], server_side[65], other[65];

    (void)state;
    lookup_keypair(lpk, lsk);
    lookup_keypair(cpk, csk);
    lookup_keypair(opk, osk);
    assert_int_equal(lookup_public_of(lsk, pub), 0);
    assert_memory_equal(pub, lpk, 32);
    assert_int_equal(lookup_token(csk, lpk, "child1", child_side), 0);
    assert_int_equal(lookup_token(lsk, cpk, "child1", server_side), 0);
    assert_string_equal(child_side, server_side);
    assert_int_equal(strlen(child_side), LOOKUP_TOKEN_HEX_LEN);
    assert_true(lookup_token_equal(child_side, server_side));
    /* the name is bound in: the same key under another name is another credential */
    assert_int_equal(lookup_token(csk, lpk, "child2", other), 0);
    assert_string_not_equal(other, child_side);
    assert_false(lookup_token_equal(other, child_side));
    /* another child's key */
    assert_int_equal(lookup_token(osk, lpk, "child1", other), 0);
    assert_string_not_equal(other, child_side);
    /* another look-up key (a parent that is not ours) */
    assert_int_equal(lookup_token(csk, opk, "child1", other), 0);
    assert_string_not_equal(other, child_side);
}

static void test_bad_inputs(void **state)
{
    uint8_t lpk[32], lsk[32], zero[32] = { 0 };
    char out[65];
    char longname[LOOKUP_NAME_MAX + 2];

    (void)state;
    lookup_keypair(lpk, lsk);
    /* a low-order public key gives no shared value */
    assert_int_equal(lookup_token(lsk, zero, "child1", out), -1);
    assert_int_equal(lookup_token(lsk, lpk, "", out), -1);
    assert_int_equal(lookup_token(lsk, lpk, "-child", out), -1);
    assert_int_equal(lookup_token(lsk, lpk, "a/b", out), -1);
    memset(longname, 'a', LOOKUP_NAME_MAX);
    longname[LOOKUP_NAME_MAX] = '\0';
    assert_int_equal(lookup_token(lsk, lpk, longname, out), 0); /* at the limit */
    longname[LOOKUP_NAME_MAX] = 'a';
    longname[LOOKUP_NAME_MAX + 1] = '\0';
    assert_int_equal(lookup_token(lsk, lpk, longname, out), -1); /* one past */
}

static void test_bearer_parse(void **state)
{
    char name[LOOKUP_NAME_MAX + 1], tok[LOOKUP_TOKEN_HEX_LEN + 1], h[256];
    const char *hex = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";

    (void)state;
    snprintf(h, sizeof h, "Bearer child1:%s", hex);
    assert_int_equal(lookup_bearer_parse(h, name, tok), 0);
    assert_string_equal(name, "child1");
    assert_string_equal(tok, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    snprintf(h, sizeof h, "bearer c.h-i_l:%s", hex);
    assert_int_equal(lookup_bearer_parse(h, name, tok), 0);
    assert_string_equal(name, "c.h-i_l");
    /* a name at the limit, and one past */
    snprintf(h, sizeof h, "Bearer %0*d:%s", LOOKUP_NAME_MAX, 0, hex);
    assert_int_equal(lookup_bearer_parse(h, name, tok), 0);
    snprintf(h, sizeof h, "Bearer %0*d:%s", LOOKUP_NAME_MAX + 1, 0, hex);
    assert_int_equal(lookup_bearer_parse(h, name, tok), -1);
    assert_int_equal(lookup_bearer_parse(NULL, name, tok), -1);
    assert_int_equal(lookup_bearer_parse("", name, tok), -1);
    assert_int_equal(lookup_bearer_parse("Basic dXNlcjpwYXNz", name, tok), -1);
    snprintf(h, sizeof h, "Bearer :%s", hex);
    assert_int_equal(lookup_bearer_parse(h, name, tok), -1);
    snprintf(h, sizeof h, "Bearer child1%s", hex);       /* no colon */
    assert_int_equal(lookup_bearer_parse(h, name, tok), -1);
    snprintf(h, sizeof h, "Bearer child1:%.63s", hex);   /* a token one short */
    assert_int_equal(lookup_bearer_parse(h, name, tok), -1);
    snprintf(h, sizeof h, "Bearer child1:%s0", hex);     /* one long */
    assert_int_equal(lookup_bearer_parse(h, name, tok), -1);
    snprintf(h, sizeof h, "Bearer child1:%.63sg", hex);  /* not hex */
    assert_int_equal(lookup_bearer_parse(h, name, tok), -1);
    snprintf(h, sizeof h, "Bearer ch/ld:%s", hex);
    assert_int_equal(lookup_bearer_parse(h, name, tok), -1);
}

static void test_rate_answer(void **state)
{
    char err[256], *out, big[16384];
    const char *ok = "{\"ratings\": [{\"url\": \"http://a.test/\", \"level\": 90, \"category\": "
                     "\"malware\", \"extra\": 1}, {\"url\": \"http://b.test/\", \"level\": 0}]}";
    size_t off;

    (void)state;
    out = http_lookup_rate_answer(ok, strlen(ok), err, sizeof err);
    assert_non_null(out);
    assert_string_equal(out, "{\"ratings\":[{\"url\":\"http://a.test/\",\"level\":90,\"category\":"
                             "\"malware\"},{\"url\":\"http://b.test/\",\"level\":0,\"category\":\"\"}]}");
    free(out);
    assert_null(http_lookup_rate_answer("[]", 2, err, sizeof err));
    assert_null(http_lookup_rate_answer("{\"ratings\": 1}", 14, err, sizeof err));
    {
        const char *bad[] = {
            "{\"ratings\": [{\"url\": \"u\", \"level\": 101}]}",
            "{\"ratings\": [{\"url\": \"u\", \"level\": -1}]}",
            "{\"ratings\": [{\"url\": 5, \"level\": 1}]}",
            "{\"ratings\": [{\"url\": \"u\", \"level\": \"9\"}]}",
            "{\"ratings\": [{\"url\": \"u\", \"level\": 9, \"category\": 3}]}",
            "{\"ratings\": [7]}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            assert_null(http_lookup_rate_answer(bad[i], strlen(bad[i]), err, sizeof err));
    }
    /* LOOKUP_RATE_URLS_MAX ratings pass, one more is refused */
    for (int n = LOOKUP_RATE_URLS_MAX; n <= LOOKUP_RATE_URLS_MAX + 1; n++) {
        off = (size_t)snprintf(big, sizeof big, "{\"ratings\": [");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(big + off, sizeof big - off,
                                    "%s{\"url\": \"u%d\", \"level\": 1}", i ? "," : "", i);
        snprintf(big + off, sizeof big - off, "]}");
        out = http_lookup_rate_answer(big, strlen(big), err, sizeof err);
        if (n == LOOKUP_RATE_URLS_MAX)
            assert_non_null(out);
        else
            assert_null(out);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_ends_agree),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bearer_parse),
        cmocka_unit_test(test_rate_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
