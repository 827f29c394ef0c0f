/* test_wrs: web-reputation matching (child/scan/wrs.c, R3.2): domains and their parent
 * domains, exact URLs after normalisation, the highest level winning, and the limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scan/wrs.h"

struct spec {
    const char *kind, *pattern;
    unsigned level;
    const char *category;
};

static wrs_t *s_build(const struct spec *sp, size_t n, char *err, size_t errlen)
{
    Portcullis__WrsEntry *e = calloc(n + 1, sizeof *e), **ep = calloc(n + 1, sizeof *ep);
    wrs_t *w;

    for (size_t i = 0; i < n; i++) {
        portcullis__wrs_entry__init(&e[i]);
        e[i].kind = (char *)sp[i].kind;
        e[i].pattern = (char *)sp[i].pattern;
        e[i].level = sp[i].level;
        e[i].category = (char *)sp[i].category;
        ep[i] = &e[i];
    }
    w = wrs_new(ep, n, err, errlen);
    free(ep);
    free(e);
    return w;
}

static const struct spec s_list[] = {
    { "domain", "example.test", 80, "phishing" },
    { "domain", "Deep.Sub.Other.TEST.", 30, "spam" },
    { "url", "HTTP://Bad.Test/x?q=1#frag", 100, "malware" },
    { "url", "https://example.test/worse", 95, "malware" },
    { "domain", "example.test", 60, "ads" }, /* the same key again: the higher stays */
};

struct rcase {
    const char *url;
    unsigned level;
    const char *category;
};

static const struct rcase s_cases[] = {
    { "http://example.test/", 80, "phishing" },
    { "http://a.b.example.test/path", 80, "phishing" },       /* parent domains */
    { "https://EXAMPLE.TEST./x", 80, "phishing" },            /* case, trailing dot */
    { "http://user:pw@example.test:8080/", 80, "phishing" },  /* user info, port */
    { "http://notexample.test/", 0, NULL },                   /* a label, not a suffix */
    { "http://example.test.evil/", 0, NULL },
    { "http://sub.other.test/", 0, NULL },                    /* only under the entry */
    { "http://x.deep.sub.other.test/", 30, "spam" },
    { "http://bad.test/x?q=1", 100, "malware" },              /* fragment ignored */
    { "hTTp://BAD.test/x?q=1#other", 100, "malware" },        /* scheme and host lowercased */
    { "http://bad.test/X?q=1", 0, NULL },                     /* the path keeps its case */
    { "http://bad.test/x", 0, NULL },                         /* exact: the query counts */
    { "https://example.test/worse", 95, "malware" },          /* the higher of URL and domain */
    { "not a url", 0, NULL },
    { "mailto:someone@example.test", 0, NULL },
};

static void test_rate_table(void **state)
{
    char err[256];
    wrs_t *w = s_build(s_list, sizeof s_list / sizeof s_list[0], err, sizeof err);

    (void)state;
    assert_non_null(w);
    assert_int_equal(wrs_count(w), 4);
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const char *cat = NULL;
        unsigned level = wrs_rate_url(w, s_cases[i].url, &cat);
        if (level != s_cases[i].level)
            fail_msg("%s: level %u, want %u", s_cases[i].url, level, s_cases[i].level);
        if (s_cases[i].category != NULL)
            assert_string_equal(cat, s_cases[i].category);
    }
    wrs_free(&w);
    assert_null(w);
}

static void test_rate_urls_highest(void **state)
{
    char err[256];
    wrs_t *w = s_build(s_list, sizeof s_list / sizeof s_list[0], err, sizeof err);
    char *urls[] = { "http://clean.test/", "http://www.example.test/a", "http://bad.test/x?q=1",
                     "http://other.test/" };
    struct wrs_rating r;

    (void)state;
    wrs_rate_urls(w, urls, 4, &r);
    assert_int_equal(r.level, 100);
    assert_string_equal(r.category, "malware");
    assert_string_equal(r.url, "http://bad.test/x?q=1");
    wrs_rate_urls(w, urls, 1, &r);
    assert_int_equal(r.level, 0);
    wrs_rate_urls(NULL, urls, 4, &r); /* no lists */
    assert_int_equal(r.level, 0);
    wrs_free(&w);
}

static void test_urls_max(void **state)
{
    char err[256];
    static const struct spec one[] = { { "domain", "last.test", 50, "x" } };
    wrs_t *w = s_build(one, 1, err, sizeof err);
    char *urls[WRS_URLS_MAX + 1];
    struct wrs_rating r;

    (void)state;
    for (size_t i = 0; i < WRS_URLS_MAX; i++)
        urls[i] = "http://clean.test/";
    urls[WRS_URLS_MAX - 1] = "http://last.test/";
    wrs_rate_urls(w, urls, WRS_URLS_MAX, &r); /* the last one rated */
    assert_int_equal(r.level, 50);
    urls[WRS_URLS_MAX - 1] = "http://clean.test/";
    urls[WRS_URLS_MAX] = "http://last.test/";
    wrs_rate_urls(w, urls, WRS_URLS_MAX + 1, &r); /* one past: not looked at */
    assert_int_equal(r.level, 0);
    wrs_free(&w);
}

static void test_entries_limits(void **state)
{
    char err[256], longp[WIRE_WRS_PATTERN_MAX + 2];
    static const struct spec bad_level[] = { { "domain", "a.test", 0, "x" } };
    static const struct spec bad_level2[] = { { "domain", "a.test", 101, "x" } };
    static const struct spec bad_kind[] = { { "ip", "10.0.0.1", 50, "x" } };
    static const struct spec bad_url[] = { { "url", "no-scheme.test/x", 50, "x" } };
    struct spec at = { "domain", longp, 50, "x" };
    size_t n = WRS_ENTRIES_MAX + 1;
    Portcullis__WrsEntry **many = calloc(n, sizeof *many);
    wrs_t *w;

    (void)state;
    assert_null(s_build(bad_level, 1, err, sizeof err));
    assert_non_null(strstr(err, "entry 1"));
    assert_null(s_build(bad_level2, 1, err, sizeof err));
    assert_null(s_build(bad_kind, 1, err, sizeof err));
    assert_null(s_build(bad_url, 1, err, sizeof err));
    memset(longp, 'a', sizeof longp);
    longp[WIRE_WRS_PATTERN_MAX] = '\0'; /* at the limit */
    w = s_build(&at, 1, err, sizeof err);
    assert_non_null(w);
    wrs_free(&w);
    longp[WIRE_WRS_PATTERN_MAX] = 'a'; /* one past */
    longp[WIRE_WRS_PATTERN_MAX + 1] = '\0';
    assert_null(s_build(&at, 1, err, sizeof err));
    assert_null(wrs_new(many, n, err, sizeof err)); /* refused before it is read */
    assert_non_null(strstr(err, "at most"));
    free(many);
    w = wrs_new(NULL, 0, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(wrs_rate_url(w, "http://example.test/", NULL), 0);
    wrs_free(&w);
}

static void test_normalise(void **state)
{
    char out[WRS_URL_MAX + 1], host[WRS_HOST_MAX + 1];

    (void)state;
    assert_int_equal(wrs_url_normalise("HTTPS://U@WWW.Example.TEST.:443/A/b?C#D", out,
                                       sizeof out, host, sizeof host), 0);
    assert_string_equal(out, "https://www.example.test:443/A/b?C");
    assert_string_equal(host, "www.example.test");
    assert_int_equal(wrs_url_normalise("http:///path", out, sizeof out, host, sizeof host), -1);
    assert_int_equal(wrs_url_normalise("://x.test", out, sizeof out, host, sizeof host), -1);
    assert_int_equal(wrs_url_normalise("http://x.test/abc", out, 10, host, sizeof host), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_table),
        cmocka_unit_test(test_rate_urls_highest),
        cmocka_unit_test(test_urls_max),
        cmocka_unit_test(test_entries_limits),
        cmocka_unit_test(test_normalise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
