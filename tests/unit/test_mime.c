/* Unit tests for mime (GMime parse into policy facts): parts, names, types, depth and part
 * limits at and one past, header limits, malformed input that must neither crash nor hang,
 * URL extraction, and the message edits of tag_subject/add_header (edit.c). R5.1 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "scan/edit.h"
#include "scan/mime.h"

static const struct mime_limits s_lim = { .max_depth = 30, .max_parts = 1000,
                                          .max_decoded_size = 1u << 26, .max_headers = 1000,
                                          .max_header_length = 65536 };

static struct mime_result *s_parse(const char *m, const struct mime_limits *lim)
{
    return mime_parse(m, strlen(m), lim != NULL ? lim : &s_lim);
}

static const char *s_header(const struct mime_result *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static const char s_multi[] =
    "From: a@example.org\r\n"
    "To: b@example.org\r\n"
    "Subject: =?UTF-8?B?SGVsbG8gd8O2cmxk?=\r\n"
    "X-Folded: first\r\n second\r\n"
    "Message-ID: <abc.123@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
    "\r\n"
    "--XX\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=E9 see http://example.com/a?b=1, and www.example.net.\r\n"
    "--XX\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<a href=\"https://evil.example/x\">click</a>\r\n"
    "--XX\r\n"
    "Content-Type: application/octet-stream; name=\"setup.exe\"\r\n"
    "Content-Disposition: attachment; filename=\"setup.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "--XX--\r\n";

static void test_parts_and_headers(void **state)
{
    struct mime_result *r = s_parse(s_multi, NULL);
    struct policy_facts f = { 0 };

    (void)state;
    assert_int_equal(r->exceptions, 0);
    assert_string_equal(r->subject, "Hello w\xc3\xb6rld");
    assert_string_equal(r->message_id, "abc.123@example.org");
    assert_string_equal(s_header(r, "Subject"), "Hello w\xc3\xb6rld");
    assert_non_null(strstr(s_header(r, "X-Folded"), "first"));
    assert_null(strchr(s_header(r, "X-Folded"), '\n')); /* unfolded */
    assert_int_equal(r->nparts, 3);
    assert_string_equal(r->parts[0].declared_type, "text/plain");
    assert_int_equal(r->parts[0].depth, 1);
    assert_string_equal(r->parts[2].filename, "setup.exe");
    assert_string_equal(r->parts[2].declared_type, "application/octet-stream");
    assert_string_equal(r->parts[2].detected_type, "application/x-dosexec");
    assert_int_equal(r->parts[2].size, 57);
    assert_int_equal(r->ntexts, 2);
    assert_non_null(strstr(r->texts[0], "Caf\xc3\xa9")); /* charset converted */
    assert_int_equal(r->nurls, 3);
    assert_string_equal(r->urls[0], "http://example.com/a?b=1");
    assert_string_equal(r->urls[1], "www.example.net");
    assert_string_equal(r->urls[2], "https://evil.example/x");
    mime_facts_fill(r, &f);
    assert_int_equal(f.nparts, 3);
    assert_string_equal(f.parts[2].filename, "setup.exe");
    assert_int_equal(f.ntexts, 2);
    mime_result_free(&r);
    assert_null(r);
}

/* A message nested `levels` multiparts deep; its leaf is at depth `levels`. */
static char *s_nested(unsigned levels)
{
    size_t cap = 256 + levels * 200;
    char *m = malloc(cap);
    size_t n = (size_t)snprintf(m, cap, "Subject: deep\r\nMIME-Version: 1.0\r\n");

    for (unsigned i = 0; i < levels; i++)
        n += (size_t)snprintf(m + n, cap - n,
                              "Content-Type: multipart/mixed; boundary=\"b%u\"\r\n\r\n--b%u\r\n",
                              i, i);
    n += (size_t)snprintf(m + n, cap - n, "Content-Type: text/plain\r\n\r\nleaf\r\n");
    for (unsigned i = levels; i-- > 0;)
        n += (size_t)snprintf(m + n, cap - n, "--b%u--\r\n", i);
    return m;
}

static void test_depth_limit(void **state)
{
    struct mime_limits lim = s_lim;
    struct mime_result *r;
    char *m;

    (void)state;
    lim.max_depth = 5;
    m = s_nested(5); /* at the limit */
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, 0);
    assert_int_equal(r->nparts, 1);
    assert_int_equal(r->parts[0].depth, 5);
    mime_result_free(&r);
    free(m);
    m = s_nested(6); /* one past */
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, POLICY_EXC_MIME_DEPTH);
    assert_int_equal(r->nparts, 0);
    mime_result_free(&r);
    free(m);
}

static void test_hostile_nesting(void **state)
{
    struct mime_result *r;
    char *m;

    (void)state;
    m = s_nested(1000); /* deeper than anyone's limit: never a crash */
    r = s_parse(m, NULL);
    assert_true(r->exceptions & (POLICY_EXC_MIME_DEPTH | POLICY_EXC_MIME_PARTS));
    assert_string_equal(r->subject, "deep");
    mime_result_free(&r);
    free(m);
    m = s_nested(5000); /* past the container count: headers only */
    r = s_parse(m, NULL);
    assert_int_equal(r->exceptions, POLICY_EXC_MIME_PARTS);
    assert_string_equal(r->subject, "deep");
    assert_int_equal(r->nparts, 0);
    mime_result_free(&r);
    free(m);
}

static void test_parts_limit(void **state)
{
    struct mime_limits lim = s_lim;
    struct mime_result *r;
    char m[4096];
    size_t n = (size_t)snprintf(m, sizeof m, "Content-Type: multipart/mixed; boundary=q\r\n\r\n");

    (void)state;
    for (int i = 0; i < 4; i++)
        n += (size_t)snprintf(m + n, sizeof m - n, "--q\r\nContent-Type: text/plain\r\n\r\n%d\r\n", i);
    snprintf(m + n, sizeof m - n, "--q--\r\n");
    lim.max_parts = 5; /* the multipart and its 4 parts: at the limit */
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, 0);
    assert_int_equal(r->nparts, 4);
    mime_result_free(&r);
    lim.max_parts = 4; /* one past */
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, POLICY_EXC_MIME_PARTS);
    assert_int_equal(r->nparts, 3);
    mime_result_free(&r);
}

static void test_header_limits(void **state)
{
    struct mime_limits lim = s_lim;
    struct mime_result *r;
    char m[8192];
    size_t n = 0;

    (void)state;
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(m + n, sizeof m - n, "X-H%d: v\r\n", i);
    snprintf(m + n, sizeof m - n, "\r\nbody\r\n");
    lim.max_headers = 10;
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, 0);
    assert_int_equal(r->nheaders, 10);
    mime_result_free(&r);
    lim.max_headers = 9;
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, POLICY_EXC_MIME_HEADERS);
    assert_int_equal(r->nheaders, 9);
    mime_result_free(&r);

    /* "X-Long: " + 1000 bytes = 1008 bytes of field */
    n = (size_t)snprintf(m, sizeof m, "X-Long: ");
    memset(m + n, 'a', 1000);
    n += 1000;
    snprintf(m + n, sizeof m - n, "\r\n\r\nbody\r\n");
    lim = s_lim;
    lim.max_header_length = 1008;
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, 0);
    mime_result_free(&r);
    lim.max_header_length = 1007;
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, POLICY_EXC_MIME_HEADER_LENGTH);
    mime_result_free(&r);
}

/* R8.5: header floods are bounded before GMime builds anything — the review's 45 MiB of short
 * header lines took the scan service to 3 GB. Top-level: the first whole fields within the
 * limit are parsed (Subject first stays), the rest never reaches GMime; anywhere in the
 * message: more than MIME_HEADER_FIELDS_MAX field lines; a top block over its byte limit. */
static void test_header_flood(void **state)
{
    size_t n = 200000, cap = 16 * n + 64, len = 0;
    char *m = malloc(cap);
    struct mime_result *r;

    (void)state;
    len += (size_t)snprintf(m + len, cap - len, "Subject: flood\r\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(m + len, cap - len, "X-%zu: v\r\n", i % 1000);
    len += (size_t)snprintf(m + len, cap - len, "\r\nbody\r\n");
    r = mime_parse(m, len, &s_lim);
    assert_true(r->exceptions & POLICY_EXC_MIME_HEADERS);
    assert_true(r->nheaders <= s_lim.max_headers);
    assert_string_equal(s_header(r, "Subject"), "flood");
    mime_result_free(&r);

    /* few top-level fields, but part headers (or anything shaped like them) by the thousand */
    len = (size_t)snprintf(m, cap, "Subject: nested\r\nContent-Type: multipart/mixed; "
                                   "boundary=\"B\"\r\n\r\n--B\r\n");
    for (size_t i = 0; i <= MIME_HEADER_FIELDS_MAX; i++)
        len += (size_t)snprintf(m + len, cap - len, "X-P: v\r\n");
    len += (size_t)snprintf(m + len, cap - len, "\r\ntext\r\n--B--\r\n");
    r = mime_parse(m, len, &s_lim);
    assert_true(r->exceptions & POLICY_EXC_MIME_HEADERS);
    assert_string_equal(s_header(r, "Subject"), "nested");
    assert_int_equal(r->nparts, 0); /* the tree was not built */
    mime_result_free(&r);

    /* one field short of the whole-message limit: parsed as usual */
    len = (size_t)snprintf(m, cap, "Subject: nested\r\nContent-Type: multipart/mixed; "
                                   "boundary=\"B\"\r\n\r\n--B\r\n");
    for (size_t i = 0; i < MIME_HEADER_FIELDS_MAX - 2; i++)
        len += (size_t)snprintf(m + len, cap - len, "X-P: v\r\n");
    len += (size_t)snprintf(m + len, cap - len, "\r\ntext\r\n--B--\r\n");
    {
        struct mime_limits lim = s_lim;
        lim.max_headers = MIME_HEADER_FIELDS_MAX; /* per part: not what is tested here */
        r = mime_parse(m, len, &lim);
        assert_false(r->exceptions & POLICY_EXC_MIME_HEADERS);
        assert_int_equal(r->nparts, 1);
        mime_result_free(&r);
    }

    /* a top-level block over MIME_TOP_HEADER_BYTES_MAX: one folded field of 1.5 MiB */
    free(m);
    cap = MIME_TOP_HEADER_BYTES_MAX * 2;
    m = malloc(cap);
    len = (size_t)snprintf(m, cap, "Subject: big\r\nX-Big: a");
    while (len < MIME_TOP_HEADER_BYTES_MAX + MIME_TOP_HEADER_BYTES_MAX / 2)
        len += (size_t)snprintf(m + len, cap - len, "\r\n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    len += (size_t)snprintf(m + len, cap - len, "\r\n\r\nbody\r\n");
    {
        struct mime_limits lim = s_lim;
        lim.max_header_length = 16u << 20;
        r = mime_parse(m, len, &lim);
        assert_true(r->exceptions & POLICY_EXC_MIME_HEADER_LENGTH);
        assert_string_equal(s_header(r, "Subject"), "big");
        assert_null(s_header(r, "X-Big")); /* cut at the field before it */
        mime_result_free(&r);
    }
    free(m);
}

/* Issue 11 point 5: structures that parsers read differently are flagged mime_ambiguous —
 * each case a published MIME-parser differential or an RFC 2046 corner — and a clean nested
 * message is not. */
static void test_ambiguous(void **state)
{
    static const char *const bad[] = {
        /* two Content-Type headers (ClamAV takes one boundary, clients the other) */
        "Content-Type: multipart/mixed; boundary=X\r\nContent-Type: multipart/mixed; "
        "boundary=Y\r\n\r\n--X\r\n\r\na\r\n--X--\r\n--Y\r\n\r\nb\r\n--Y--\r\n",
        /* a boundary in Content-Disposition */
        "Content-Disposition: attachment; boundary=\"X\"\r\nContent-Type: multipart/mixed; "
        "boundary=\"Y\"\r\n\r\n--Y\r\n\r\nb\r\n--Y--\r\n",
        /* a boundary character RFC 2046 does not allow */
        "Content-Type: multipart/mixed; boundary=\"X;\"\r\n\r\n--X;\r\n\r\nb\r\n--X;--\r\n",
        "Content-Type: multipart/mixed; boundary=######+\r\n\r\n--######+\r\n\r\nb\r\n"
        "--######+--\r\n",
        /* an unquoted boundary with a tspecial in it */
        "Content-Type: multipart/mixed; boundary=boundary=b5c\r\n\r\n--boundary=b5c\r\n\r\nb\r\n"
        "--boundary=b5c--\r\n",
        /* two boundary parameters */
        "Content-Type: multipart/mixed; boundary=a; boundary=b\r\n\r\n--a\r\n\r\nb\r\n--a--\r\n",
        /* an RFC 2231 boundary */
        "Content-Type: multipart/mixed; boundary*0=a; boundary*1=b\r\n\r\n--ab\r\n\r\nb\r\n"
        "--ab--\r\n",
        /* an inner boundary that extends the outer one */
        "Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: "
        "multipart/mixed; boundary=outer\r\n\r\n--outer\r\n\r\nb\r\n--outer--\r\n--out--\r\n",
        /* no close delimiter */
        "Content-Type: multipart/mixed; boundary=open\r\n\r\n--open\r\n\r\nb\r\n",
        /* an encoded multipart */
        "Content-Type: multipart/mixed; boundary=m\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "--m\r\n\r\nb\r\n--m--\r\n",
        /* an encoded message/rfc822 */
        "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: message/rfc822\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA0KDQp5DQo=\r\n--m--\r\n",
        /* two Content-Transfer-Encoding headers on a part */
        "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Transfer-Encoding: "
        "base64\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nYWJj\r\n--m--\r\n",
    };
    struct mime_result *r;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = s_parse(bad[i], NULL);
        if (!(r->exceptions & POLICY_EXC_MIME_AMBIGUOUS))
            fail_msg("case %zu not flagged ambiguous: %s", i, bad[i]);
        mime_result_free(&r);
    }
    r = s_parse(s_multi, NULL);
    assert_int_equal(r->exceptions & POLICY_EXC_MIME_AMBIGUOUS, 0);
    mime_result_free(&r);
    r = s_parse("Content-Type: multipart/mixed; boundary=\"=_a b'(c)+,-./:=?\"\r\n\r\n"
                "--=_a b'(c)+,-./:=?\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n"
                "Content-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\n\r\nx\r\n"
                "--inner--\r\n--=_a b'(c)+,-./:=?--\r\n", NULL);
    assert_int_equal(r->exceptions & POLICY_EXC_MIME_AMBIGUOUS, 0);
    mime_result_free(&r);
}

struct seen {
    unsigned n;
    char last[64];
    size_t last_len;
};

static void s_seen(void *arg, const unsigned char *data, size_t len, const char *filename)
{
    struct seen *s = arg;

    (void)filename;
    s->n++;
    s->last_len = len < sizeof s->last ? len : sizeof s->last - 1;
    memcpy(s->last, data, s->last_len);
    s->last[s->last_len] = '\0';
}

/* Issue 11 point 5: every decoded part reaches the scan, yEnc bodies decoded. */
static void test_parts_to_scan(void **state)
{
    struct seen seen = { 0 };
    struct mime_result *r;
    /* "abc" yEnc-encoded: each byte + 42 */
    const char yenc[] = "Subject: y\r\n\r\ntext\r\n=ybegin line=128 size=3 name=a.bin\r\n"
                        "\x8b\x8c\x8d\r\n=yend size=3\r\n";

    (void)state;
    r = mime_parse_scan(s_multi, strlen(s_multi), &s_lim, s_seen, &seen);
    assert_int_equal(seen.n, 3); /* text, html, the executable */
    assert_int_equal(seen.last[0], 'M');
    assert_int_equal(seen.last[1], 'Z');
    mime_result_free(&r);
    memset(&seen, 0, sizeof seen);
    r = mime_parse_scan(yenc, strlen(yenc), &s_lim, s_seen, &seen);
    assert_int_equal(seen.n, 2); /* the text, then what its yEnc block decodes to */
    assert_string_equal(seen.last, "abc");
    mime_result_free(&r);
}

/* Found by fuzz_mime (R8.6): 128 bytes that took 13 s — asking GMime for a multipart's
 * boundary when it has none makes it re-encode the header's parameters. Now read, not made. */
static void test_fuzz_boundary_reencode(void **state)
{
    static const char in[] = "Content-Type: multipart/mixet; bo\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4" "boundary=\x22\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\xe4\x0d" "e: text/plain\x0dge/gl-a--\x0d\x0a";
    struct timespec t0, t1;
    struct mime_result *r;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = mime_parse(in, sizeof in - 1, &s_lim);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    mime_result_free(&r);
}

static void test_malformed(void **state)
{
    static const char *const cases[] = {
        /* boundary declared, never used */
        "Content-Type: multipart/mixed; boundary=zz\r\n\r\nno parts here\r\n",
        /* no boundary parameter */
        "Content-Type: multipart/mixed\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n",
        /* broken base64 and QP */
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: "
        "base64\r\n\r\n!!!!====****\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "=ZZ=\r\n=\r\n--b--\r\n",
        /* mis-declared charset and 8-bit junk */
        "Content-Type: text/plain; charset=no-such-charset\r\n\r\n\xff\xfe\x80junk\r\n",
        "Subject: \xff\xfe\x01\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\xc3\x28\xa0\xa1\r\n",
        /* headers only, no body, no blank line */
        "Subject: x",
        "",
        "\r\n\r\n\r\n",
        ":\r\n: :\r\n\r\n",
    };
    struct mime_result *r;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = s_parse(cases[i], NULL);
        assert_non_null(r);
        for (size_t k = 0; k < r->ntexts; k++)
            assert_int_equal(strlen(r->texts[k]), r->text_lens[k]);
        mime_result_free(&r);
    }
    /* NUL bytes inside a text part */
    {
        static const char nul[] = "Content-Type: text/plain\r\n\r\nab\0cd http://x.example/\r\n";
        r = mime_parse(nul, sizeof nul - 1, &s_lim);
        assert_int_equal(r->ntexts, 1);
        assert_non_null(strstr(r->texts[0], "cd"));
        assert_int_equal(r->nurls, 1);
        mime_result_free(&r);
    }
}

static void test_long_header_line(void **state)
{
    size_t big = 1u << 20;
    char *m = malloc(big + 64);
    struct mime_result *r;
    size_t n = (size_t)snprintf(m, 64, "Subject: ");

    (void)state;
    memset(m + n, 'x', big);
    n += big;
    memcpy(m + n, "\r\n\r\nbody\r\n", 11);
    r = s_parse(m, NULL);
    assert_int_equal(r->exceptions, POLICY_EXC_MIME_HEADER_LENGTH);
    assert_true(strlen(s_header(r, "Subject")) <= s_lim.max_header_length);
    mime_result_free(&r);
    free(m);
}

static void test_decoded_size(void **state)
{
    struct mime_limits lim = s_lim;
    struct mime_result *r;
    char m[8192];
    size_t n = (size_t)snprintf(m, sizeof m, "Content-Type: text/plain\r\n\r\n");

    (void)state;
    memset(m + n, 'y', 2000);
    snprintf(m + n + 2000, sizeof m - n - 2000, "\r\n");
    lim.max_decoded_size = 2002; /* body: 2000 bytes + CRLF */
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, 0);
    mime_result_free(&r);
    lim.max_decoded_size = 2001;
    r = s_parse(m, &lim);
    assert_int_equal(r->exceptions, POLICY_EXC_MIME_SIZE);
    mime_result_free(&r);
}

static void test_detect_type(void **state)
{
    (void)state;
    assert_string_equal(mime_detect_type((const unsigned char *)"\x7f" "ELF\2\1", 6),
                        "application/x-executable");
    assert_string_equal(mime_detect_type((const unsigned char *)"%PDF-1.7", 8), "application/pdf");
    assert_string_equal(mime_detect_type((const unsigned char *)"\x1f\x8b\x08", 3),
                        "application/gzip");
    assert_string_equal(mime_detect_type((const unsigned char *)"PK\x03\x04....word/doc", 16),
                        "application/vnd.openxmlformats-officedocument");
    assert_string_equal(mime_detect_type((const unsigned char *)"PK\x03\x04....abc", 11),
                        "application/zip");
    assert_null(mime_detect_type((const unsigned char *)"hello", 5));
    assert_null(mime_detect_type((const unsigned char *)"M", 1));
}

static char *s_edit(const char *m, const struct policy_decision *d)
{
    struct evbuffer *b = edit_message(m, strlen(m), d);
    size_t n;
    char *out;

    if (b == NULL)
        return NULL;
    n = evbuffer_get_length(b);
    out = calloc(1, n + 1);
    evbuffer_remove(b, out, n);
    evbuffer_free(b);
    return out;
}

static void test_edit(void **state)
{
    static struct policy_decision d;
    char *out;

    (void)state;
    memset(&d, 0, sizeof d);
    assert_null(s_edit("Subject: hi\r\n\r\nbody\r\n", &d));
    strcpy(d.subject_tag, "[SPAM]");
    out = s_edit("From: a\r\nsubject:  hi\r\n\r\nSubject: not a header\r\n", &d);
    assert_string_equal(out, "From: a\r\nSubject: [SPAM] hi\r\n\r\nSubject: not a header\r\n");
    free(out);
    out = s_edit("From: a\r\n\r\nbody\r\n", &d); /* no Subject: one is added */
    assert_string_equal(out, "Subject: [SPAM]\r\nFrom: a\r\n\r\nbody\r\n");
    free(out);
    d.subject_tag[0] = '\0';
    d.nadd_headers = 1;
    strcpy(d.add_headers[0], "X-Scanned: yes\r\nBcc: evil"); /* no header injection */
    out = s_edit("Subject: hi\r\n\r\nbody\r\n", &d);
    assert_string_equal(out, "X-Scanned: yes  Bcc: evil\r\nSubject: hi\r\n\r\nbody\r\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parts_and_headers), cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_hostile_nesting),   cmocka_unit_test(test_parts_limit),
        cmocka_unit_test(test_header_limits),     cmocka_unit_test(test_header_flood),
        cmocka_unit_test(test_ambiguous),         cmocka_unit_test(test_parts_to_scan),
        cmocka_unit_test(test_fuzz_boundary_reencode),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_long_header_line),  cmocka_unit_test(test_decoded_size),
        cmocka_unit_test(test_detect_type),       cmocka_unit_test(test_edit),
    };

    mime_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
