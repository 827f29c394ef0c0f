/* test_ers_zones: the ers.zones format (R3.1): accepted forms, the code table an answer maps
 * through, limits at and one past each bound, and refusals that say what is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ers_zones.h"

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

static void test_parse_and_map(void **state)
{
    struct ers_zones z;
    char err[256] = "";

    (void)state;
    assert_int_equal(ers_zones_parse(" Zen.Example. = 127.0.0.2:spam , 127.0.0.4:exploit ;"
                                     "dnsbl.example=ANY:listed;", &z, err, sizeof err), 0);
    assert_int_equal(z.nzones, 2);
    assert_string_equal(z.zones[0].name, "zen.example"); /* lowercase, no trailing dot */
    assert_int_equal(z.zones[0].ncodes, 2);
    assert_string_equal(ers_zones_listing(&z.zones[0], IP(127, 0, 0, 2)), "spam");
    assert_string_equal(ers_zones_listing(&z.zones[0], IP(127, 0, 0, 4)), "exploit");
    assert_null(ers_zones_listing(&z.zones[0], IP(127, 0, 0, 3)));
    assert_string_equal(ers_zones_listing(&z.zones[1], IP(127, 0, 0, 9)), "listed");
    assert_int_equal(ers_zones_parse("", &z, err, sizeof err), 0);
    assert_int_equal(z.nzones, 0);
    assert_int_equal(ers_zones_parse("   ", NULL, err, sizeof err), 0);
}

static void s_many(char *buf, size_t n, int zones, int codes)
{
    size_t k = 0;

    buf[0] = '\0';
    for (int i = 0; i < zones; i++) {
        k += (size_t)snprintf(buf + k, n - k, "%sz%d.example=", i ? ";" : "", i);
        for (int c = 0; c < codes; c++)
            k += (size_t)snprintf(buf + k, n - k, "%s127.0.0.%d:l%d", c ? "," : "", c + 1, c);
    }
}

static void test_limits(void **state)
{
    char buf[8192], err[256], zone[ERS_ZONE_LEN_MAX + 16];

    (void)state;
    s_many(buf, sizeof buf, ERS_ZONES_MAX, 1);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), 0);
    s_many(buf, sizeof buf, ERS_ZONES_MAX + 1, 1);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 16 zones"));
    s_many(buf, sizeof buf, 1, ERS_CODES_MAX);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), 0);
    s_many(buf, sizeof buf, 1, ERS_CODES_MAX + 1);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 32 codes"));
    /* zone names: ERS_ZONE_LEN_MAX bytes in labels of at most 63 */
    memset(zone, 'a', sizeof zone);
    for (size_t i = 60; i < ERS_ZONE_LEN_MAX; i += 61)
        zone[i] = '.';
    snprintf(buf, sizeof buf, "%.*s=any:x", ERS_ZONE_LEN_MAX, zone);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), 0);
    snprintf(buf, sizeof buf, "%.*s=any:x", ERS_ZONE_LEN_MAX + 1, zone);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), -1);
    /* listing names: 63 bytes, not 64 */
    memset(zone, 'x', sizeof zone);
    snprintf(buf, sizeof buf, "bl.example=any:%.*s", ERS_LISTING_LEN_MAX, zone);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), 0);
    snprintf(buf, sizeof buf, "bl.example=any:%.*s", ERS_LISTING_LEN_MAX + 1, zone);
    assert_int_equal(ers_zones_parse(buf, NULL, err, sizeof err), -1);
}

struct rcase {
    const char *value, *msg;
};

static const struct rcase s_refusals[] = {
    { "bl.example", "has no '=' after the zone" },
    { "=any:x", "is not a DNS zone name" },
    { "bl..example=any:x", "is not a DNS zone name" },
    { "-bl.example=any:x", "is not a DNS zone name" },
    { "bl_x.example=any:x", "is not a DNS zone name" },
    { "bl.example=", "is not CODE:LISTING" },
    { "bl.example=127.0.0.2", "is not CODE:LISTING" },
    { "bl.example=127.0.0.2:", "is not a listing name" },
    { "bl.example=127.0.0.2:a b", "is not a listing name" },
    { "bl.example=1.2.3:x", "is not an IPv4 address or 'any'" },
    { "bl.example=::1:x", "is not an IPv4 address" },
    { "bl.example=any:x,", "is not CODE:LISTING" },
    { "bl.example=any:x;;", "has no '=' after the zone" },
};

static void test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_refusals / sizeof s_refusals[0]; i++) {
        char err[256] = "";
        if (ers_zones_parse(s_refusals[i].value, NULL, err, sizeof err) != -1)
            fail_msg("case %zu \"%s\" accepted", i, s_refusals[i].value);
        if (strstr(err, s_refusals[i].msg) == NULL)
            fail_msg("case %zu \"%s\": error \"%s\" lacks \"%s\"", i, s_refusals[i].value, err,
                     s_refusals[i].msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_map),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
