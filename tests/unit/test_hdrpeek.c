/* test_hdrpeek: the header fields a reconciliation takes from a stored file that has no index
 * row (R5.3): From, To/Cc, Subject; folded lines, odd forms, limits, and bytes that could not
 * go into the database as text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/hdrpeek.h"

static struct hdrpeek *s_parse(const char *text)
{
    struct hdrpeek *h = malloc(sizeof *h);
    hdrpeek_parse(text, strlen(text), h);
    return h;
}

static void test_plain(void **state)
{
    struct hdrpeek *h = s_parse("Return-Path: <x@y>\r\nFrom: \"Alice A\" <alice@origin.test>\r\n"
                                "To: <bob@child1.test>, Carol <carol@child1.test>\r\n"
                                "Cc: dave@child1.test\r\nSubject: hello\r\n world\r\n\r\n"
                                "From: body@not.header\r\n");
    (void)state;
    assert_string_equal(h->sender, "alice@origin.test");
    assert_int_equal(h->nrcpts, 3);
    assert_string_equal(h->rcpts[0], "bob@child1.test");
    assert_string_equal(h->rcpts[1], "carol@child1.test");
    assert_string_equal(h->rcpts[2], "dave@child1.test");
    assert_string_equal(h->subject, "hello world");
    free(h);
}

static void test_odd(void **state)
{
    struct hdrpeek *h = s_parse("from:bare@origin.test\nTO: undisclosed-recipients:;\n"
                                "SUBJECT:\t=?utf-8?q?caf=C3=A9?= \xff\x01\n");
    (void)state;
    assert_string_equal(h->sender, "bare@origin.test");
    assert_int_equal(h->nrcpts, 0);
    assert_string_equal(h->subject, "=?utf-8?q?caf=C3=A9?= ??");
    free(h);
    h = s_parse("");
    assert_string_equal(h->sender, "");
    assert_int_equal(h->nrcpts, 0);
    free(h);
}

static void test_limits(void **state)
{
    size_t n = HDRPEEK_RCPT_MAX + 10, o = 0;
    char *buf = malloc(n * 40 + 64);
    struct hdrpeek *h;
    (void)state;

    o += (size_t)sprintf(buf + o, "To: ");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(buf + o, "%s<u%zu@x.test>", i ? ", " : "", i);
    sprintf(buf + o, "\r\nSubject: %0*d\r\n\r\n", 2000, 7);
    h = s_parse(buf);
    assert_int_equal(h->nrcpts, HDRPEEK_RCPT_MAX);
    assert_int_equal(strlen(h->subject), HDRPEEK_SUBJECT_MAX);
    free(h);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_odd),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
