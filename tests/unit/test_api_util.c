/* Unit tests for api_util.c (roles, body fields, admin error mapping) and the log-in rate
 * limit of api_auth.c: blocked at API_LOGIN_FAILURES_MAX failures, not one before; keyed by
 * peer and name; the table bounded with the oldest key forgotten. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "api/api_auth.h"

static void test_roles(void **state)
{
    enum api_role r;

    (void)state;
    assert_int_equal(api_role_parse("viewer", &r), 0);
    assert_int_equal(r, API_ROLE_VIEWER);
    assert_int_equal(api_role_parse("admin", &r), 0);
    assert_int_equal(r, API_ROLE_ADMIN);
    assert_int_equal(api_role_parse("none", &r), -1); /* not a role a user can have */
    assert_int_equal(api_role_parse("Admin", &r), -1);
    assert_int_equal(api_role_parse(NULL, &r), -1);
    assert_string_equal(api_role_name(API_ROLE_OPERATOR), "operator");
    assert_string_equal(api_role_name(API_ROLE_NONE), "none");
}

static void test_body_fields(void **state)
{
    struct api_req rq = { 0 };
    struct api_resp rs = { 0 };
    const char *s = "untouched";
    int64_t n = 7;
    bool b = false;
    static const char *const allowed[] = { "name", "n", "b", "nul", NULL };

    (void)state;
    rq.body = json_pack("{s:s, s:I, s:b, s:n, s:s#}", "name", "x", "n", (json_int_t)5, "b", 1,
                        "null", "nul", "a\0b", (size_t)3);
    assert_int_equal(api_body_string(&rq, &rs, "name", true, &s), 0);
    assert_string_equal(s, "x");
    assert_int_equal(api_body_string(&rq, &rs, "missing", false, &s), 1);
    assert_string_equal(s, "x");
    assert_int_equal(api_body_string(&rq, &rs, "null", false, &s), 1); /* null = absent */
    assert_int_equal(api_body_string(&rq, &rs, "missing", true, &s), -1);
    assert_int_equal(rs.status, 400);
    assert_non_null(strstr(rs.error, "\"missing\" is required"));
    assert_int_equal(api_body_string(&rq, &rs, "n", true, &s), -1);
    assert_non_null(strstr(rs.error, "must be a string"));
    assert_int_equal(api_body_string(&rq, &rs, "nul", true, &s), -1);
    assert_non_null(strstr(rs.error, "NUL"));
    /* the range's ends are in it, one past is not */
    assert_int_equal(api_body_int(&rq, &rs, "n", true, 5, 5, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(api_body_int(&rq, &rs, "n", true, 6, 10, &n), -1);
    assert_int_equal(api_body_int(&rq, &rs, "n", true, 0, 4, &n), -1);
    assert_non_null(strstr(rs.error, "between 0 and 4"));
    assert_int_equal(api_body_int(&rq, &rs, "name", true, 0, 4, &n), -1);
    assert_int_equal(api_body_bool(&rq, &rs, "b", true, &b), 0);
    assert_true(b);
    assert_int_equal(api_body_bool(&rq, &rs, "n", true, &b), -1);
    assert_int_equal(api_body_only(&rq, &rs, allowed), -1);
    assert_non_null(strstr(rs.error, "unknown field \"null\""));
    json_decref(rq.body);
    rq.body = NULL; /* no body counts as {} */
    memset(&rs, 0, sizeof rs);
    assert_int_equal(api_body_only(&rq, &rs, allowed), 0);
    assert_int_equal(api_body_string(&rq, &rs, "name", false, &s), 1);
}

static void test_ok_fail_query(void **state)
{
    struct api_kv kv[] = { { "a", "1" }, { "b", "" } };
    struct api_req rq = { .query = kv, .nquery = 2 };
    struct api_resp rs = { 0 };

    (void)state;
    assert_string_equal(api_query(&rq, "a"), "1");
    assert_string_equal(api_query(&rq, "b"), "");
    assert_null(api_query(&rq, "c"));
    api_ok(&rs, json_object());
    assert_int_equal(rs.status, 200);
    api_fail(&rs, 404, "no such %s", "thing"); /* drops the half-built answer */
    assert_null(rs.json);
    assert_string_equal(rs.error, "no such thing");
    api_ok(&rs, NULL);
    assert_int_equal(rs.status, 500);
}

static void test_fail_admin(void **state)
{
    static const struct {
        const char *err;
        int status;
    } cases[] = {
        { "no such user: bob", 404 },
        { "unknown child x", 404 },
        { "refused: bob is the last enabled admin", 409 },
        { "user bob exists already", 409 },
        { "child1 is down", 503 },
        { "database unavailable", 503 },
        { "a password has 10 to 1024 characters", 400 },
        { "", 400 },
    };
    struct api_resp rs;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&rs, 0, sizeof rs);
        api_fail_admin(&rs, cases[i].err);
        assert_int_equal(rs.status, cases[i].status);
        assert_true(rs.error[0] != '\0');
    }
}

/* First: it relies on an empty limiter table (key 0 is the oldest entry). */
static void test_login_table_bounded(void **state)
{
    char name[32];
    unsigned wait_s = 0;

    (void)state;
    for (int i = 0; i < API_LOGIN_FAILURES_MAX; i++)
        api_login_failed("192.0.2.1", "evicted");
    assert_false(api_login_allowed("192.0.2.1", "evicted", &wait_s));
    for (int i = 0; i < API_LOGIN_TABLE_MAX; i++) {
        snprintf(name, sizeof name, "filler%d", i);
        api_login_failed("192.0.2.2", name);
    }
    assert_true(api_login_allowed("192.0.2.1", "evicted", &wait_s)); /* forgotten */
}

static void test_login_limit(void **state)
{
    unsigned wait_s = 0;

    (void)state;
    for (int i = 0; i < API_LOGIN_FAILURES_MAX - 1; i++)
        api_login_failed("198.51.100.1", "alice");
    assert_true(api_login_allowed("198.51.100.1", "alice", &wait_s));
    api_login_failed("198.51.100.1", "alice");
    assert_false(api_login_allowed("198.51.100.1", "alice", &wait_s));
    assert_true(wait_s > 0 && wait_s <= API_LOGIN_WINDOW_S);
    assert_true(api_login_allowed("198.51.100.1", "bob", &wait_s));   /* another name */
    assert_true(api_login_allowed("198.51.100.2", "alice", &wait_s)); /* another address */
    api_login_succeeded("198.51.100.3", "carol");                     /* unknown: no-op */
    api_login_failed("198.51.100.3", "carol");
    api_login_succeeded("198.51.100.3", "carol"); /* a success forgets the failures */
    for (int i = 0; i < API_LOGIN_FAILURES_MAX - 1; i++)
        api_login_failed("198.51.100.3", "carol");
    assert_true(api_login_allowed("198.51.100.3", "carol", &wait_s));
}

/* Issue 6 point 1: spraying many names from one address meets the address's own limit. */
static void test_login_peer_ceiling(void **state)
{
    char name[32];
    unsigned wait_s = 0;

    (void)state;
    for (int i = 0; i < API_LOGIN_PEER_FAILURES_MAX - 1; i++) {
        snprintf(name, sizeof name, "spray%d", i);
        api_login_failed("203.0.113.9", name);
    }
    assert_true(api_login_allowed("203.0.113.9", "fresh-name", &wait_s));
    api_login_failed("203.0.113.9", "one-more");
    assert_false(api_login_allowed("203.0.113.9", "fresh-name", &wait_s));
    assert_true(wait_s > 0 && wait_s <= API_LOGIN_WINDOW_S);
    assert_true(api_login_allowed("203.0.113.10", "fresh-name", &wait_s)); /* another address */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_table_bounded),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_body_fields),
        cmocka_unit_test(test_ok_fail_query),
        cmocka_unit_test(test_fail_admin),
        cmocka_unit_test(test_login_limit),
        cmocka_unit_test(test_login_peer_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
