/* Unit tests for smtp_data (DATA framing: terminator, dot-unstuffing, bare LF/CR in both modes,
 * split input, size and line limits) and for the matching dot-stuffing encoder in smtp_client.
 * R1.2, R8.5 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "scan/smtp_data.h"
#include "smtp_client.h"

#define BIG 1000000

struct decoded {
    enum smtp_data_status st;
    size_t consumed;
    char body[8192];
    size_t len;
    struct smtp_data d;
    enum smtp_bare_mode mode; /* set before s_decode */
};

/* Feeds in as one chunk. */
static void s_decode(const char *in, size_t len, uint64_t max_size, uint64_t max_line,
                     struct decoded *out)
{
    struct evbuffer *b = evbuffer_new();

    smtp_data_init(&out->d, max_size, max_line, out->mode);
    out->st = smtp_data_feed(&out->d, in, len, &out->consumed, b);
    out->len = evbuffer_get_length(b);
    assert_true(out->len < sizeof out->body);
    evbuffer_remove(b, out->body, out->len);
    out->body[out->len] = '\0';
    evbuffer_free(b);
}

/* In normalize mode (the tests of framing; reject mode has its own). */
static void s_expect(const char *wire, const char *body)
{
    struct decoded r = { .mode = SMTP_BARE_NORMALIZE };

    s_decode(wire, strlen(wire), BIG, BIG, &r);
    assert_int_equal(r.st, SMTP_DATA_END);
    assert_int_equal(r.consumed, strlen(wire));
    assert_string_equal(r.body, body);
    assert_false(smtp_data_over_limit(&r.d));
}

static void test_simple(void **state)
{
    (void)state;
    s_expect("Subject: x\r\n\r\nhello\r\n.\r\n", "Subject: x\r\n\r\nhello\r\n");
}

static void test_empty_message(void **state)
{
    (void)state;
    s_expect(".\r\n", "");
}

static void test_dot_unstuffing(void **state)
{
    (void)state;
    s_expect("..leading\r\n.\r\n", ".leading\r\n");
    s_expect("..\r\n.\r\n", ".\r\n");           /* a line of one dot, stuffed */
    s_expect("...\r\n.\r\n", "..\r\n");
    s_expect(".x\r\n.\r\n", "x\r\n");            /* unstuffed "." at line start: dropped */
    s_expect("a.\r\n.b.\r\n.\r\n", "a.\r\nb.\r\n"); /* dots elsewhere stay */
}

/* R8.5: only CRLF.CRLF ends the data; bare line ends are normalised to CRLF, and a "." line
 * after one is content (the relay stuffs it), so nothing can be smuggled after it. */
static void test_bare_lf_normalized(void **state)
{
    (void)state;
    s_expect("a\nb\r\n.\r\n", "a\r\nb\r\n");
    s_expect("a\r\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n");     /* ".\n" is no end */
    s_expect("a\n.\nMAIL FROM:<x@y>\r\n.\r\n",          /* the smuggling attempt */
             "a\r\n.\r\nMAIL FROM:<x@y>\r\n");
    s_expect("a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n");     /* bare LF, then ".\r\n" */
    s_expect("a\n..b\r\n.\r\n", "a\r\n.b\r\n");
}

static void test_bare_cr_normalized(void **state)
{
    (void)state;
    s_expect("a\rb\r\n.\r\n", "a\r\nb\r\n");
    s_expect("a\r\r\n.\r\n", "a\r\n\r\n");
    s_expect("a\r.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n");     /* "\r.\r\n" is no end */
    s_expect(".\rx\r\n.\r\n", ".\r\nx\r\n");             /* ".\r" then not LF */
}

/* Reject mode: the message is read to its true end, nothing is kept, the caller refuses it. */
static void test_bare_rejected(void **state)
{
    static const char *const wires[] = {
        "a\nb\r\n.\r\n", "a\rb\r\n.\r\n", "a\r\n.\nMAIL FROM:<x@y>\r\n.\r\n",
        "a\r.\r\nRCPT TO:<z@y>\r\n.\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof wires / sizeof wires[0]; i++) {
        struct decoded r = { .mode = SMTP_BARE_REJECT };
        s_decode(wires[i], strlen(wires[i]), BIG, BIG, &r);
        assert_int_equal(r.st, SMTP_DATA_END);
        assert_int_equal(r.consumed, strlen(wires[i]));
        assert_true(r.d.bare_newline);
        assert_true(smtp_data_over_limit(&r.d));
        assert_int_equal(r.len, 0);
    }
    {
        struct decoded r = { .mode = SMTP_BARE_REJECT };
        s_decode("clean\r\n.\r\n", 10, BIG, BIG, &r);
        assert_false(smtp_data_over_limit(&r.d));
        assert_string_equal(r.body, "clean\r\n");
    }
}

static void test_not_terminated(void **state)
{
    struct decoded r = { .mode = SMTP_BARE_REJECT };
    const char *in = "a\r\n. \r\n.x\r\n";

    (void)state;
    s_decode(in, strlen(in), BIG, BIG, &r);
    assert_int_equal(r.st, SMTP_DATA_MORE);
    assert_int_equal(r.consumed, strlen(in));
    assert_string_equal(r.body, "a\r\n \r\nx\r\n");
}

static void test_pipelined_bytes_left(void **state)
{
    struct decoded r = { .mode = SMTP_BARE_REJECT };
    const char *in = "a\r\n.\r\nMAIL FROM:<x@y>\r\n";

    (void)state;
    s_decode(in, strlen(in), BIG, BIG, &r);
    assert_int_equal(r.st, SMTP_DATA_END);
    assert_int_equal(r.consumed, 6);
    assert_string_equal(r.body, "a\r\n");
}

/* Every split into two chunks, and byte by byte, decodes like the whole. */
static void test_split_everywhere(void **state)
{
    const char *in = "x\r\n..y\r\n.z\r\nbare\n.\r.\r\nend\r\n.\r\nQUIT\r\n";
    const char *want = "x\r\n.y\r\nz\r\nbare\r\n.\r\n.\r\nend\r\n";
    size_t len = strlen(in), end = strlen(in) - strlen("QUIT\r\n");

    (void)state;
    for (size_t cut = 0; cut <= len; cut++) {
        struct smtp_data d;
        struct evbuffer *b = evbuffer_new();
        size_t used1 = 0, used2 = 0;
        char body[256];
        enum smtp_data_status st;

        smtp_data_init(&d, BIG, BIG, SMTP_BARE_NORMALIZE);
        st = smtp_data_feed(&d, in, cut, &used1, b);
        if (st == SMTP_DATA_MORE) {
            assert_int_equal(used1, cut);
            st = smtp_data_feed(&d, in + cut, len - cut, &used2, b);
        }
        assert_int_equal(st, SMTP_DATA_END);
        assert_int_equal(used1 + used2, end);
        memset(body, 0, sizeof body);
        evbuffer_remove(b, body, sizeof body - 1);
        assert_string_equal(body, want);
        evbuffer_free(b);
    }
    {
        struct smtp_data d;
        struct evbuffer *b = evbuffer_new();
        char body[256] = { 0 };
        size_t i, used;

        smtp_data_init(&d, BIG, BIG, SMTP_BARE_NORMALIZE);
        for (i = 0; i < len; i++)
            if (smtp_data_feed(&d, in + i, 1, &used, b) == SMTP_DATA_END)
                break;
        assert_int_equal(i + 1, end);
        evbuffer_remove(b, body, sizeof body - 1);
        assert_string_equal(body, want);
        evbuffer_free(b);
    }
}

/* Size counts the unstuffed message with CRLF line ends. */
static void test_size_limit(void **state)
{
    struct decoded r = { .mode = SMTP_BARE_REJECT };

    (void)state;
    s_decode("12345678\r\n.\r\n", 13, 10, BIG, &r); /* exactly 10 bytes */
    assert_int_equal(r.st, SMTP_DATA_END);
    assert_false(r.d.too_big);
    assert_int_equal(r.d.size, 10);
    assert_string_equal(r.body, "12345678\r\n");

    s_decode("123456789\r\n.\r\nNOOP\r\n", 20, 10, BIG, &r); /* 11: one over */
    assert_int_equal(r.st, SMTP_DATA_END);                  /* still read to the end */
    assert_int_equal(r.consumed, 14);
    assert_true(r.d.too_big);
    assert_true(smtp_data_over_limit(&r.d));
    assert_int_equal(r.d.size, 11);
    assert_int_equal(r.len, 0);                             /* nothing kept */

    s_decode("..\r\n.\r\n", 7, 3, BIG, &r); /* stuffing does not count: ".\r\n" is 3 */
    assert_false(r.d.too_big);
}

static void test_line_limit(void **state)
{
    char in[1100];
    struct decoded r = { .mode = SMTP_BARE_REJECT };

    (void)state;
    memset(in, 'x', 1000);
    memcpy(in + 1000, "\r\n.\r\n", 6);
    s_decode(in, strlen(in), BIG, 1000, &r); /* 1000 bytes: at the limit */
    assert_int_equal(r.st, SMTP_DATA_END);
    assert_false(r.d.line_too_long);
    assert_int_equal(r.len, 1002);

    memset(in, 'x', 1001);
    memcpy(in + 1001, "\r\n.\r\n", 6);
    s_decode(in, strlen(in), BIG, 1000, &r); /* one over */
    assert_int_equal(r.st, SMTP_DATA_END);
    assert_true(r.d.line_too_long);
    assert_true(smtp_data_over_limit(&r.d));
    assert_int_equal(r.len, 0);
}

static void s_stuff(const char *body, char *out, size_t n)
{
    struct evbuffer *in = evbuffer_new(), *o = evbuffer_new();
    size_t len;

    evbuffer_add(in, body, strlen(body));
    smtp_client_dot_stuff(o, in);
    assert_int_equal(evbuffer_get_length(in), 0);
    len = evbuffer_get_length(o);
    assert_true(len < n);
    evbuffer_remove(o, out, len);
    out[len] = '\0';
    evbuffer_free(in);
    evbuffer_free(o);
}

static void test_stuffing(void **state)
{
    char out[256];

    (void)state;
    s_stuff("", out, sizeof out);
    assert_string_equal(out, ".\r\n");
    s_stuff(".a\r\nb\r\n.\r\n", out, sizeof out);
    assert_string_equal(out, "..a\r\nb\r\n..\r\n.\r\n");
    s_stuff("no line end", out, sizeof out);
    assert_string_equal(out, "no line end\r\n.\r\n");
    s_stuff("x\r\n..\r\n", out, sizeof out);
    assert_string_equal(out, "x\r\n...\r\n.\r\n");
}

/* decode(stuff(body)) == body, and stuff(decode(wire)) == wire for canonical wire text. */
static void test_round_trip(void **state)
{
    static const char *const bodies[] = {
        "", "a\r\n", ".\r\n", "..\r\n", ".a\r\n.b\r\n\r\n.\r\n", "x\r\n.\r\n.\r\n..\r\n",
        "From: a\r\n\r\n. leading space\r\n", "tab\t.\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char wire[512], back[512];
        struct decoded r = { .mode = SMTP_BARE_REJECT };

        s_stuff(bodies[i], wire, sizeof wire);
        s_decode(wire, strlen(wire), BIG, BIG, &r);
        assert_int_equal(r.st, SMTP_DATA_END);
        assert_int_equal(r.consumed, strlen(wire));
        assert_string_equal(r.body, bodies[i]);
        s_stuff(r.body, back, sizeof back);
        assert_string_equal(back, wire);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_dot_unstuffing),
        cmocka_unit_test(test_bare_lf_normalized),
        cmocka_unit_test(test_bare_cr_normalized),
        cmocka_unit_test(test_bare_rejected),
        cmocka_unit_test(test_not_terminated),
        cmocka_unit_test(test_pipelined_bytes_left),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_stuffing),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
