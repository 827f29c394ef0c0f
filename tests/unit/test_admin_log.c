/* Unit tests for the search inputs the CLI and the REST API share (admin_log.c: page sizes,
 * cursors) and for api_logs_filter (api_logs.c): which query fields a search takes, empty
 * values, limits at 1 and ADMIN_LOG_LIMIT_MAX and one past each, cursors. Times need the
 * database and are covered by tests/integration/test_api_stored.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin_log.h"
#include "api/api_logs.h"

static void test_limit_parse(void **state)
{
    static const struct {
        const char *text;
        int rc;
        int64_t value;
    } cases[] = {
        { "1", 0, 1 },        { "100", 0, 100 },   { "10000", 0, ADMIN_LOG_LIMIT_MAX },
        { "0", -1, 0 },       { "10001", -1, 0 },  { "-1", -1, 0 },
        { "+5", -1, 0 },      { " 5", -1, 0 },     { "5x", -1, 0 },
        { "", -1, 0 },        { "9999999999999999999", -1, 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -7;
        assert_int_equal(admin_log_limit_parse(cases[i].text, &v), cases[i].rc);
        if (cases[i].rc == 0)
            assert_int_equal(v, cases[i].value);
    }
    assert_int_equal(admin_log_limit_parse(NULL, &(int64_t){ 0 }), -1);
}

static void test_cursor_valid(void **state)
{
    (void)state;
    assert_true(admin_log_cursor_valid("1764000000000000.42"));
    assert_true(admin_log_cursor_valid("1.1"));
    assert_false(admin_log_cursor_valid("x"));
    assert_false(admin_log_cursor_valid("12.ab"));
    assert_false(admin_log_cursor_valid("1.2.3"));
    assert_false(admin_log_cursor_valid(".5"));
    assert_false(admin_log_cursor_valid("5."));
    assert_false(admin_log_cursor_valid("1234567890123456789.1")); /* 19 digits */
    assert_false(admin_log_cursor_valid(NULL));
}

/* api_logs_filter over query fields kv[0..n); rs gets the answer. */
static int s_filter(const struct api_kv *kv, size_t n, const char *const *allowed,
                    struct api_log_query *q, struct api_resp *rs)
{
    struct api_req rq = { .query = kv, .nquery = n };

    memset(rs, 0, sizeof *rs);
    return api_logs_filter(&rq, rs, allowed, NULL, q);
}

static void test_filter_fields(void **state)
{
    static const char *const allowed[] = { "sender", "child", "state", "limit", "after", NULL };
    const struct api_kv ok[] = { { "sender", "a@b.test" }, { "child", "child1" },
                                 { "state", "removed" }, { "limit", "10000" },
                                 { "after", "17.3" } };
    struct api_log_query q;
    struct api_resp rs;

    (void)state;
    assert_int_equal(s_filter(ok, 5, allowed, &q, &rs), 0);
    assert_string_equal(q.f.sender, "a@b.test");
    assert_string_equal(q.f.child, "child1");
    assert_string_equal(q.f.state, "removed");
    assert_string_equal(q.f.after, "17.3");
    assert_int_equal(q.f.limit, ADMIN_LOG_LIMIT_MAX);
    assert_null(q.f.since);
    assert_null(q.f.recipient);

    const struct api_kv unknown[] = { { "category", "all" } };   /* a field of another search */
    assert_int_equal(s_filter(unknown, 1, allowed, &q, &rs), -1);
    assert_int_equal(rs.status, 400);
    assert_non_null(strstr(rs.error, "category"));
    assert_non_null(strstr(rs.error, "sender, child"));

    const struct api_kv empty[] = { { "sender", "" } };
    assert_int_equal(s_filter(empty, 1, allowed, &q, &rs), -1);
    assert_int_equal(rs.status, 400);
    assert_non_null(strstr(rs.error, "sender"));
}

static void test_filter_limits_and_cursor(void **state)
{
    static const char *const allowed[] = { "limit", "after", NULL };
    static const char *const bad_limits[] = { "0", "10001", "ten", "-1" };
    struct api_log_query q;
    struct api_resp rs;

    (void)state;
    const struct api_kv one[] = { { "limit", "1" } };
    assert_int_equal(s_filter(one, 1, allowed, &q, &rs), 0);
    assert_int_equal(q.f.limit, 1);
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
        const struct api_kv kv[] = { { "limit", bad_limits[i] } };
        assert_int_equal(s_filter(kv, 1, allowed, &q, &rs), -1);
        assert_int_equal(rs.status, 400);
        assert_non_null(strstr(rs.error, "limit"));
        assert_non_null(strstr(rs.error, "10000"));
    }
    const struct api_kv cur[] = { { "after", "x" } };
    assert_int_equal(s_filter(cur, 1, allowed, &q, &rs), -1);
    assert_int_equal(rs.status, 400);
    assert_non_null(strstr(rs.error, "cursor"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_parse),
        cmocka_unit_test(test_cursor_valid),
        cmocka_unit_test(test_filter_fields),
        cmocka_unit_test(test_filter_limits_and_cursor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
