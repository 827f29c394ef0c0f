/* test_sps_request: the smart-protection look-up request (R2.1): a POST /v1/lookup body turned
 * into digests or refused with a message — at the batch limit and one past, bad hex, case,
 * duplicates, wrong shapes, and the body size limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sps/sps_request.h"

#define HEX_A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define HEX_B "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static uint8_t s_d[SPS_BATCH_MAX][SPS_DIGEST_LEN];

static int s_parse(const char *body, size_t *n, char *err, size_t errlen)
{
    return sps_request_parse(body, strlen(body), s_d, n, err, errlen);
}

/* {"sha256": [count digests]}: digest i is HEX_A with its first byte set to i % 256. */
static char *s_batch(size_t count)
{
    size_t cap = 32 + count * (SPS_HEX_LEN + 4);
    char *b = malloc(cap), *p = b;

    p += sprintf(p, "{\"sha256\": [");
    for (size_t i = 0; i < count; i++)
        p += sprintf(p, "%s\"%02zx%s\"", i ? "," : "", i % 256, &HEX_A[2]);
    sprintf(p, "]}");
    return b;
}

static void test_one_digest_both_cases(void **state)
{
    char err[256], hex[SPS_HEX_LEN + 1];
    size_t n;

    (void)state;
    assert_int_equal(s_parse("{\"sha256\": [\"" HEX_A "\"]}", &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s_d[0][0], 0x00);
    assert_int_equal(s_d[0][31], 0xff);
    sps_request_hex_encode(s_d[0], hex);
    assert_string_equal(hex, HEX_A);

    assert_int_equal(s_parse("{\"sha256\":[\"FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100\"]}",
                             &n, err, sizeof err), 0);
    sps_request_hex_encode(s_d[0], hex);
    assert_string_equal(hex, HEX_B);
}

static void test_duplicates_kept_in_order(void **state)
{
    char err[256];
    size_t n;

    (void)state;
    assert_int_equal(s_parse("{\"sha256\": [\"" HEX_A "\", \"" HEX_B "\", \"" HEX_A "\"]}", &n, err,
                             sizeof err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(s_d[0], s_d[2], SPS_DIGEST_LEN);
    assert_int_equal(s_d[1][0], 0xff);
}

static void test_batch_at_limit_and_one_past(void **state)
{
    char err[256], *b;
    size_t n;

    (void)state;
    b = s_batch(SPS_BATCH_MAX);
    assert_true(strlen(b) <= SPS_BODY_MAX);
    assert_int_equal(s_parse(b, &n, err, sizeof err), 0);
    assert_int_equal(n, SPS_BATCH_MAX);
    assert_int_equal(s_d[SPS_BATCH_MAX - 1][0], (SPS_BATCH_MAX - 1) % 256);
    free(b);

    b = s_batch(SPS_BATCH_MAX + 1);
    assert_int_equal(s_parse(b, &n, err, sizeof err), -1);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "1 to 1000"));
    free(b);
}

static void test_body_size_limit(void **state)
{
    char err[256], *b = malloc(SPS_BODY_MAX + 2);
    size_t n;

    (void)state;
    /* At the limit the size passes and the content is judged; one past, the size refuses. */
    memset(b, ' ', SPS_BODY_MAX + 1);
    memcpy(b, "{\"sha256\": [\"" HEX_A "\"]}", 13 + SPS_HEX_LEN + 3);
    assert_int_equal(sps_request_parse(b, SPS_BODY_MAX, s_d, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sps_request_parse(b, SPS_BODY_MAX + 1, s_d, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "over"));
    free(b);
}

struct bad_case {
    const char *body;
    const char *message; /* a piece of the error */
};

static const struct bad_case s_bad[] = {
    { "", "not valid JSON" },
    { "{\"sha256\": [", "not valid JSON" },
    { "[\"" HEX_A "\"]", "must be an object" },
    { "{\"sha256\": \"" HEX_A "\"}", "must be an object" },
    { "{\"digests\": [\"" HEX_A "\"]}", "must be an object" },
    { "{\"sha256\": [\"" HEX_A "\"], \"x\": 1}", "unknown member" },
    { "{\"sha256\": [\"" HEX_A "\"], \"sha256\": []}", "not valid JSON" },
    { "{\"sha256\": []}", "1 to 1000" },
    { "{\"sha256\": [\"" HEX_A "0\"]}", "sha256[0] is not" },                 /* 65 chars */
    { "{\"sha256\": [\"" HEX_A "\", \"0011\"]}", "sha256[1] is not" },       /* short */
    { "{\"sha256\": [\"g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]}",
      "sha256[0] is not" },                                                  /* not hex */
    { "{\"sha256\": [\" 0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]}",
      "sha256[0] is not" },
    { "{\"sha256\": [17]}", "sha256[0] is not" },
    { "{\"sha256\": [null]}", "sha256[0] is not" },
    { "{\"sha256\": [\"00112233445566778899aabbccddeeff00112233445566778899aabbccddee\\u0000f\"]}",
      "not valid JSON" },                                                    /* NUL inside */
};

static void test_bad_bodies_refused(void **state)
{
    char err[256];
    size_t n = 99;

    (void)state;
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        err[0] = '\0';
        if (s_parse(s_bad[i].body, &n, err, sizeof err) != -1 ||
            strstr(err, s_bad[i].message) == NULL)
            fail_msg("case %zu: body %s: err \"%s\", wanted \"%s\"", i, s_bad[i].body, err,
                     s_bad[i].message);
        assert_int_equal(n, 0);
    }
}

static void test_hex_decode(void **state)
{
    uint8_t d[SPS_DIGEST_LEN];

    (void)state;
    assert_int_equal(sps_request_hex_decode(HEX_A, SPS_HEX_LEN, d), 0);
    assert_int_equal(sps_request_hex_decode(HEX_A, SPS_HEX_LEN - 1, d), -1);
    assert_int_equal(sps_request_hex_decode(HEX_A "0", SPS_HEX_LEN + 1, d), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_digest_both_cases),
        cmocka_unit_test(test_duplicates_kept_in_order),
        cmocka_unit_test(test_batch_at_limit_and_one_past),
        cmocka_unit_test(test_body_size_limit),
        cmocka_unit_test(test_bad_bodies_refused),
        cmocka_unit_test(test_hex_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
