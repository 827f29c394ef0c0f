/* test_scan_latency: the scan latency histogram the scan service keeps (issue 6 point 3): each
 * latency lands in the bucket whose bound is the first >= it (Prometheus' le), everything above
 * the last bound in the extra bucket; the counters add up; and they survive the trip through
 * ScanStats as the manager forwards it inside Health, whose bucket count is bounded at decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "portcullis.pb-c.h"
#include "scan_latency.h"
#include "wire.h"

static void test_bucket(void **state)
{
    (void)state;
    assert_int_equal(scan_latency_bucket(0), 0);
    assert_int_equal(scan_latency_bucket(1), 0);   /* le=1 ms holds 1 */
    assert_int_equal(scan_latency_bucket(2), 1);
    assert_int_equal(scan_latency_bucket(3), 2);   /* 2 < 3 <= 5 */
    assert_int_equal(scan_latency_bucket(1000), 9);
    assert_int_equal(scan_latency_bucket(1001), 10);
    assert_int_equal(scan_latency_bucket(10000), SCAN_LATENCY_NBOUNDS - 1);
    assert_int_equal(scan_latency_bucket(10001), SCAN_LATENCY_NBOUNDS); /* above every bound */
    assert_int_equal(scan_latency_bucket(UINT64_MAX), SCAN_LATENCY_NBOUNDS);
    /* every bound is its own bucket's upper edge, one more is the next bucket's */
    for (size_t i = 0; i < SCAN_LATENCY_NBOUNDS; i++) {
        assert_int_equal(scan_latency_bucket(SCAN_LATENCY_BOUNDS_MS[i]), i);
        assert_int_equal(scan_latency_bucket(SCAN_LATENCY_BOUNDS_MS[i] + 1ull), i + 1);
        if (i > 0)
            assert_true(SCAN_LATENCY_BOUNDS_MS[i] > SCAN_LATENCY_BOUNDS_MS[i - 1]);
    }
}

static void test_counters(void **state)
{
    static const uint64_t ms[] = { 0, 1, 4, 4, 30, 999, 20000 };
    struct scan_latency h;
    uint64_t total = 0, sum = 0;

    (void)state;
    memset(&h, 0, sizeof h);
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        scan_latency_add(&h, ms[i]);
        sum += ms[i];
    }
    assert_int_equal(h.count, sizeof ms / sizeof ms[0]);
    assert_int_equal(h.sum_ms, sum);
    assert_int_equal(h.buckets[0], 2);                    /* 0, 1 */
    assert_int_equal(h.buckets[2], 2);                    /* 4, 4 */
    assert_int_equal(h.buckets[5], 1);                    /* 30: 25 < x <= 50 */
    assert_int_equal(h.buckets[9], 1);                    /* 999 */
    assert_int_equal(h.buckets[SCAN_LATENCY_NBOUNDS], 1); /* 20000 */
    for (size_t i = 0; i < SCAN_LATENCY_NBUCKETS; i++)
        total += h.buckets[i];
    assert_int_equal(total, h.count); /* so +Inf equals _count on the parent */
}

static void test_travels_in_health(void **state)
{
    Portcullis__ScanStats ss = PORTCULLIS__SCAN_STATS__INIT, *back;
    Portcullis__Health hl = PORTCULLIS__HEALTH__INIT, *hback;
    struct scan_latency h;
    uint8_t *buf;
    size_t len;

    (void)state;
    memset(&h, 0, sizeof h);
    scan_latency_add(&h, 7);
    scan_latency_add(&h, 12000);
    ss.scan_ms_buckets = h.buckets;
    ss.n_scan_ms_buckets = SCAN_LATENCY_NBUCKETS;
    ss.scan_ms_sum = h.sum_ms;
    ss.scan_ms_count = h.count;
    hl.stats = &ss; /* the manager forwards the scan service's ScanStats as it came */
    len = portcullis__health__get_packed_size(&hl);
    buf = malloc(len);
    assert_non_null(buf);
    portcullis__health__pack(&hl, buf);
    hback = portcullis__health__unpack(NULL, len, buf);
    assert_non_null(hback);
    back = hback->stats;
    assert_non_null(back);
    assert_int_equal(back->n_scan_ms_buckets, SCAN_LATENCY_NBUCKETS);
    assert_int_equal(back->scan_ms_buckets[3], 1);                    /* 7: 5 < x <= 10 */
    assert_int_equal(back->scan_ms_buckets[SCAN_LATENCY_NBOUNDS], 1); /* 12000 */
    assert_int_equal(back->scan_ms_sum, 12007);
    assert_int_equal(back->scan_ms_count, 2);
    portcullis__health__free_unpacked(hback, NULL);
    free(buf);
}

/* A Health whose ScanStats has n buckets, through wire_unpack: decoded or refused. */
static bool s_health_decodes(size_t n)
{
    uint64_t buckets[WIRE_LATENCY_BUCKETS_MAX + 1] = { 0 };
    Portcullis__ScanStats ss = PORTCULLIS__SCAN_STATS__INIT;
    Portcullis__Health hl = PORTCULLIS__HEALTH__INIT;
    Portcullis__Envelope env = PORTCULLIS__ENVELOPE__INIT;
    envelope_t *back;
    uint8_t *buf;
    size_t len;

    ss.scan_ms_buckets = buckets;
    ss.n_scan_ms_buckets = n;
    hl.stats = &ss;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_HEALTH;
    env.health = &hl;
    len = portcullis__envelope__get_packed_size(&env);
    buf = malloc(len);
    assert_non_null(buf);
    portcullis__envelope__pack(&env, buf);
    back = wire_unpack(buf, len);
    free(buf);
    if (back == NULL)
        return false;
    portcullis__envelope__free_unpacked(back, NULL);
    return true;
}

static void test_wire_limit(void **state)
{
    (void)state;
    assert_true(s_health_decodes(SCAN_LATENCY_NBUCKETS));
    assert_true(s_health_decodes(WIRE_LATENCY_BUCKETS_MAX));
    assert_false(s_health_decodes(WIRE_LATENCY_BUCKETS_MAX + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_travels_in_health),
        cmocka_unit_test(test_wire_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
