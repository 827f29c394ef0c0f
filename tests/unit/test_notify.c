/* Unit tests: notification mail formatting and addresses (R5.11, R2.4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailaddr.h"
#include "sched/notify.h"

static void test_addresses(void **state)
{
    char out[MAILADDR_LIST_MAX][MAILADDR_MAX + 1], why[256];
    size_t n;

    (void)state;
    assert_true(mailaddr_valid("admin@example.test", 18));
    assert_false(mailaddr_valid("admin", 5));
    assert_false(mailaddr_valid("@example.test", 13));
    assert_false(mailaddr_valid("admin@", 6));
    assert_false(mailaddr_valid("a@b@c", 5));
    assert_false(mailaddr_valid("a b@c.test", 10));
    assert_false(mailaddr_valid("a@c.test\r\nBcc: x@y", 18));
    assert_false(mailaddr_valid("<a@c.test>", 10));
    assert_false(mailaddr_valid("a@.test", 7));

    assert_int_equal(mailaddr_list_split(" a@x.test , b@y.test", out, MAILADDR_LIST_MAX, &n, why,
                                         sizeof why), 0);
    assert_int_equal(n, 2);
    assert_string_equal(out[0], "a@x.test");
    assert_string_equal(out[1], "b@y.test");
    assert_int_equal(mailaddr_list_split("", out, MAILADDR_LIST_MAX, &n, why, sizeof why), 0);
    assert_int_equal(n, 0);
    assert_int_equal(mailaddr_list_split("a@x.test,,b@y.test", out, MAILADDR_LIST_MAX, &n, why,
                                         sizeof why), -1);
    assert_int_equal(mailaddr_list_split("a@x.test, nope", out, MAILADDR_LIST_MAX, &n, why,
                                         sizeof why), -1);
    assert_non_null(strstr(why, "nope"));
    assert_int_equal(mailaddr_list_split("a@x.t,b@x.t", out, 1, &n, why, sizeof why), -1);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(notify_backoff_s(1), NOTIFY_RETRY_MIN_S);
    assert_int_equal(notify_backoff_s(2), 2 * NOTIFY_RETRY_MIN_S);
    assert_int_equal(notify_backoff_s(3), 4 * NOTIFY_RETRY_MIN_S);
    assert_int_equal(notify_backoff_s(50), NOTIFY_RETRY_MAX_S);
}

static void test_format_headers_and_injection(void **state)
{
    char *m;

    (void)state;
    /* A subject carrying a line break cannot add a header; the body is CRLF throughout. */
    m = notify_format("portcullis@p.test", "admin@x.test", "Disk\r\nBcc: victim@y.test",
                      "line one\nline two\n", 0, "id-1@p.test");
    assert_non_null(strstr(m, "Subject: Disk  Bcc: victim@y.test\r\n"));
    assert_null(strstr(m, "\r\nBcc:"));
    assert_non_null(strstr(m, "From: Portcullis <portcullis@p.test>\r\n"));
    assert_non_null(strstr(m, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
    assert_non_null(strstr(m, "Message-ID: <id-1@p.test>\r\n"));
    assert_non_null(strstr(m, "Auto-Submitted: auto-generated\r\n\r\nline one\r\nline two\r\n"));
    assert_null(strstr(m, "two\n\n")); /* no bare LF */
    free(m);
}

static void test_format_utf8_subject_and_long_lines(void **state)
{
    char body[3000], *m, *p;
    size_t longest = 0, cur = 0;

    (void)state;
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    m = notify_format("a@p.test", "b@x.test",
                      "Quarantäne: Plattenplatz über 90 % — bitte prüfen, Quarantänebereich voll",
                      body, 0, "id@p.test");
    /* RFC 2047 encoded words, each at most 75 characters, none splitting a UTF-8 sequence. */
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?"));
    for (p = strstr(m, "=?UTF-8?B?"); p != NULL; p = strstr(p + 1, "=?UTF-8?B?")) {
        char *e = strstr(p + 10, "?=");
        assert_non_null(e);
        assert_true(e + 2 - p <= 75);
    }
    for (p = strstr(m, "\r\n\r\n") + 4; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            cur = 0;
            continue;
        }
        if (++cur > longest)
            longest = cur;
    }
    assert_true(longest <= NOTIFY_LINE_MAX);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_format_headers_and_injection),
        cmocka_unit_test(test_format_utf8_subject_and_long_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
