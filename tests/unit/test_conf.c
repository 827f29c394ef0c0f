/* test_conf: the bootstrap files (parent.conf, child.conf): quoting, comments, defaults, and
 * the errors an administrator sees for unknown, repeated and missing keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

static const struct conf_key s_keys[] = {
    { "name", NULL, "required name" },
    { "db", "dbname=x", "connection" },
    { "port", "10", "a number" },
};

static conf_t *s_load(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/test_conf.XXXXXX";
    int fd = mkstemp(path);
    conf_t *c;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    c = conf_load(path, s_keys, 3, err, errlen);
    unlink(path);
    return c;
}

static void test_values_quotes_comments_defaults(void **state)
{
    char err[512];
    long port;
    conf_t *c = s_load("# comment\n\nname = child1   # trailing\n"
                       "db = \"host=127.0.0.1 port=5 # not a comment\"\n", err, sizeof err);
    (void)state;
    assert_non_null(c);
    assert_string_equal(conf_get(c, "name"), "child1");
    assert_string_equal(conf_get(c, "db"), "host=127.0.0.1 port=5 # not a comment");
    assert_string_equal(conf_get(c, "port"), "10"); /* default */
    assert_null(conf_get(c, "undeclared"));
    assert_int_equal(conf_get_int(c, "port", 1, 65535, &port, err, sizeof err), 0);
    assert_int_equal(port, 10);
    assert_int_equal(conf_get_int(c, "port", 11, 65535, &port, err, sizeof err), -1);
    assert_non_null(strstr(err, "from 11 to 65535"));
    conf_free(&c);
    assert_null(c);
}

static void test_errors_name_line_and_key(void **state)
{
    char err[512];
    (void)state;
    assert_null(s_load("name = a\nnmae = b\n", err, sizeof err));
    assert_non_null(strstr(err, ":2: unknown key 'nmae'"));
    assert_null(s_load("name = a\nname = b\n", err, sizeof err));
    assert_non_null(strstr(err, ":2: 'name' is set twice"));
    assert_null(s_load("db = x\n", err, sizeof err));
    assert_non_null(strstr(err, "required key 'name' is missing"));
    assert_null(s_load("name\n", err, sizeof err));
    assert_non_null(strstr(err, ":1: expected 'key = value'"));
}

static void test_missing_file(void **state)
{
    char err[512];
    (void)state;
    assert_null(conf_load("/nonexistent/portcullis.conf", s_keys, 3, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/portcullis.conf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_quotes_comments_defaults),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
