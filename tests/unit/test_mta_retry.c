/* test_mta_retry: the retry timetable of R4.3 against seed 003's table, the R4.2 check, and
 * Postfix time values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mta_retry.h"

#define MIN 60
#define HOUR 3600

/* Seed 003: failure at 9:15, queue runs at 9:20, 9:35, …; retries at 9:35, 10:05, 11:05, then
 * hourly; the 25th at 9:05 next day; the 26th at 10:05 next day, past the 1 d lifetime. */
static void test_seed_003_table(void **state)
{
    struct mta_retry r;
    struct mta_attempt a[64];
    size_t n;
    (void)state;

    mta_retry_defaults(&r);
    n = mta_retry_timetable(&r, 5 * MIN, a, 64);
    assert_int_equal(n, 26);
    assert_int_equal(a[0].at, 20 * MIN);          /* 9:35 */
    assert_int_equal(a[0].backoff, 15 * MIN);
    assert_int_equal(a[1].at, 50 * MIN);          /* 10:05 */
    assert_int_equal(a[1].backoff, 30 * MIN);
    assert_int_equal(a[2].at, 1 * HOUR + 50 * MIN); /* 11:05 */
    assert_int_equal(a[2].backoff, 60 * MIN);
    assert_int_equal(a[3].at, 2 * HOUR + 50 * MIN); /* 12:05 */
    assert_int_equal(a[4].at, 3 * HOUR + 50 * MIN); /* 13:05 */
    assert_int_equal(a[5].at, 4 * HOUR + 50 * MIN); /* 14:05 */
    for (size_t i = 3; i < n; i++)
        assert_int_equal(a[i].at - a[i - 1].at, HOUR);
    assert_int_equal(a[24].retry, 25);
    assert_int_equal(a[24].at, 23 * HOUR + 50 * MIN); /* 9:05 next day */
    assert_false(a[24].bounce);
    assert_int_equal(a[25].retry, 26);
    assert_int_equal(a[25].at, 24 * HOUR + 50 * MIN); /* 10:05 next day */
    assert_true(a[25].bounce);
}

/* The queue run that falls exactly when the backoff ends retries ("30 minutes or more"). */
static void test_exact_boundary_retries(void **state)
{
    struct mta_retry r = { 600, 600, 1200, 3600, 0 };
    struct mta_attempt a[16];
    size_t n;
    (void)state;

    n = mta_retry_timetable(&r, 600, a, 16);
    assert_true(n >= 3);
    assert_int_equal(a[0].at, 600);
    assert_int_equal(a[1].at, 1800);  /* backoff 1200 after 600 */
    assert_int_equal(a[2].at, 3000);
    assert_int_equal(a[3].at, 4200);
    assert_true(a[3].bounce);
    assert_int_equal(n, 4);
}

static void test_row_limit(void **state)
{
    struct mta_retry r = { 1, 1, 1, 1000000, 0 };
    struct mta_attempt a[8];
    (void)state;
    assert_int_equal(mta_retry_timetable(&r, 1, a, 8), 8);
}

static void test_check_r4_2(void **state)
{
    struct mta_retry r;
    char err[256];
    (void)state;

    mta_retry_defaults(&r);
    assert_int_equal(mta_retry_check(&r, err, sizeof err), 0);
    r.minimal_backoff_time = 899; /* below queue_run_delay: refused */
    assert_int_equal(mta_retry_check(&r, err, sizeof err), -1);
    assert_non_null(strstr(err, "mta.minimal_backoff_time"));
    assert_non_null(strstr(err, "mta.queue_run_delay"));
    mta_retry_defaults(&r);
    r.maximal_backoff_time = 600;
    assert_int_equal(mta_retry_check(&r, err, sizeof err), -1);
    assert_non_null(strstr(err, "mta.maximal_backoff_time"));
    mta_retry_defaults(&r);
    r.bounce_queue_lifetime = -1;
    assert_int_equal(mta_retry_check(&r, err, sizeof err), -1);
}

static void test_parse_time(void **state)
{
    int64_t v;
    (void)state;
    assert_int_equal(mta_retry_parse_time("900s", &v), 0);
    assert_int_equal(v, 900);
    assert_int_equal(mta_retry_parse_time("900", &v), 0);
    assert_int_equal(v, 900);
    assert_int_equal(mta_retry_parse_time("15m", &v), 0);
    assert_int_equal(v, 900);
    assert_int_equal(mta_retry_parse_time("1d", &v), 0);
    assert_int_equal(v, 86400);
    assert_int_equal(mta_retry_parse_time("2w", &v), 0);
    assert_int_equal(v, 14 * 86400);
    assert_int_equal(mta_retry_parse_time("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(mta_retry_parse_time("1x", &v), -1);
    assert_int_equal(mta_retry_parse_time("1dd", &v), -1);
    assert_int_equal(mta_retry_parse_time("-1d", &v), -1);
    assert_int_equal(mta_retry_parse_time("", &v), -1);
    assert_int_equal(mta_retry_parse_time("99999999999w", &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_003_table),
        cmocka_unit_test(test_exact_boundary_retries),
        cmocka_unit_test(test_row_limit),
        cmocka_unit_test(test_check_r4_2),
        cmocka_unit_test(test_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
