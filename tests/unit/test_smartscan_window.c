/* Unit tests for smartscan_window: "N look-up failures within W" (R2.3) at the threshold, one
 * before it, and with old failures expired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "scan/smartscan_window.h"

static void test_threshold_at_and_one_before(void **state)
{
    struct smartscan_window w;

    (void)state;
    smartscan_window_init(&w, 3, 60000);
    assert_false(smartscan_window_fail(&w, 1000));
    assert_false(smartscan_window_fail(&w, 2000)); /* one before */
    assert_int_equal(smartscan_window_count(&w, 2000), 2);
    assert_true(smartscan_window_fail(&w, 3000));  /* at */
    assert_int_equal(smartscan_window_count(&w, 3000), 3);
    smartscan_window_fini(&w);
}

static void test_old_failures_expire(void **state)
{
    struct smartscan_window w;

    (void)state;
    smartscan_window_init(&w, 3, 60000);
    assert_false(smartscan_window_fail(&w, 0));
    assert_false(smartscan_window_fail(&w, 10000));
    /* the first is 60 s old: out of the window, only two inside */
    assert_false(smartscan_window_fail(&w, 60000));
    assert_int_equal(smartscan_window_count(&w, 60000), 2);
    assert_true(smartscan_window_fail(&w, 60001)); /* 10 000, 60 000, 60 001 */
    assert_int_equal(smartscan_window_count(&w, 200000), 0);
    smartscan_window_fini(&w);
}

static void test_edge_of_window(void **state)
{
    struct smartscan_window w;

    (void)state;
    smartscan_window_init(&w, 2, 1000);
    assert_false(smartscan_window_fail(&w, 5000));
    assert_true(smartscan_window_fail(&w, 5999));  /* 999 ms apart: inside */
    smartscan_window_clear(&w);
    assert_false(smartscan_window_fail(&w, 7000));
    assert_false(smartscan_window_fail(&w, 8000)); /* 1000 ms apart: outside */
    smartscan_window_fini(&w);
}

static void test_threshold_one_and_clamp(void **state)
{
    struct smartscan_window w;

    (void)state;
    smartscan_window_init(&w, 1, 1000);
    assert_true(smartscan_window_fail(&w, 1));
    smartscan_window_fini(&w);
    smartscan_window_init(&w, 0, 1000); /* clamped to 1 */
    assert_int_equal(w.threshold, 1);
    smartscan_window_fini(&w);
    smartscan_window_init(&w, SMARTSCAN_WINDOW_MAX + 1, 1000);
    assert_int_equal(w.threshold, SMARTSCAN_WINDOW_MAX);
    smartscan_window_fini(&w);
}

static void test_defaults_ten_in_three_minutes(void **state)
{
    struct smartscan_window w;

    (void)state;
    smartscan_window_init(&w, 10, 180000);
    for (int i = 0; i < 9; i++)
        assert_false(smartscan_window_fail(&w, (uint64_t)i * 20000)); /* 0 … 160 s */
    assert_true(smartscan_window_fail(&w, 179999));
    smartscan_window_clear(&w);
    for (int i = 0; i < 9; i++)
        assert_false(smartscan_window_fail(&w, 1000000 + (uint64_t)i * 20000));
    assert_false(smartscan_window_fail(&w, 1000000 + 180000)); /* the first has just expired */
    smartscan_window_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_at_and_one_before),
        cmocka_unit_test(test_old_failures_expire),
        cmocka_unit_test(test_edge_of_window),
        cmocka_unit_test(test_threshold_one_and_clamp),
        cmocka_unit_test(test_defaults_ten_in_three_minutes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
