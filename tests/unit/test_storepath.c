/* test_storepath: the names a command may use inside a stored-mail directory (R5.4, R5.3):
 * file ids, buckets, area directories and listing cursors — anything else, above all any
 * path that could leave the directory, is refused; area directory names are valid and
 * distinct; and Command / CommandReply limits hold at decode (R7.4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "storepath.h"
#include "wire.h"

static void test_file_ids(void **state)
{
    static const struct { const char *s; bool ok; } cases[] = {
        { "0123456789abcdef0123456789abcdef", true },
        { "0123456789ABCDEF0123456789abcdef", false },  /* uppercase: not ours */
        { "0123456789abcdef0123456789abcde", false },   /* 31 */
        { "0123456789abcdef0123456789abcdef0", false }, /* 33 */
        { "../3456789abcdef0123456789abcdef", false },
        { "0123456789abcdef0123456789abcd/f", false },
        { "", false },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(storepath_file_id_valid(cases[i].s), cases[i].ok);
    assert_false(storepath_file_id_valid(NULL));
}

static void test_names(void **state)
{
    char fid[STOREPATH_FILE_ID_LEN + 1];
    (void)state;

    assert_true(storepath_bucket_valid("2026112319"));
    assert_false(storepath_bucket_valid("2026112324")); /* hour 24 */
    assert_false(storepath_bucket_valid("2026130119")); /* month 13 */
    assert_false(storepath_bucket_valid("202611231"));
    assert_false(storepath_bucket_valid(".."));
    assert_true(storepath_area_dir_valid("default_quarantine-1a2b3c4d"));
    assert_true(storepath_area_dir_valid("-1a2b3c4d"));
    assert_false(storepath_area_dir_valid("Default-1a2b3c4d"));   /* uppercase */
    assert_false(storepath_area_dir_valid("a/b-1a2b3c4d"));
    assert_false(storepath_area_dir_valid("..-1a2b3c4d"));
    assert_false(storepath_area_dir_valid("default-1a2b3c4"));
    assert_false(storepath_area_dir_valid(".usage"));
    assert_true(storepath_file_name("0123456789abcdef0123456789abcdef.eml", fid));
    assert_string_equal(fid, "0123456789abcdef0123456789abcdef");
    assert_false(storepath_file_name(".0123456789abcdef0123456789abcdef.tmp", fid));
    assert_false(storepath_file_name("0123456789abcdef0123456789abcdef.eml~", fid));
}

static void test_area_dir(void **state)
{
    static const char *const areas[] = { "Default quarantine", "Default archive", "Virus area",
                                         "ÄÖÜ ünïcode", "", "a",
                                         "a very long area name that goes on and on beyond the "
                                         "sixty-four bytes of a directory name" };
    char b[STOREPATH_AREA_DIR_MAX + 1], c[STOREPATH_AREA_DIR_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        storepath_area_dir(areas[i], b, sizeof b);
        assert_true(storepath_area_dir_valid(b));
        assert_true(strlen(b) <= STOREPATH_AREA_DIR_MAX);
    }
    /* distinct names stay distinct even when they fold to the same characters */
    storepath_area_dir("Virus area", b, sizeof b);
    storepath_area_dir("virus_area", c, sizeof c);
    assert_string_not_equal(b, c);
    assert_int_equal(strncmp(b, "virus_area-", 11), 0);
}

static void test_cursor(void **state)
{
    char a[STOREPATH_AREA_DIR_MAX + 1], b[STOREPATH_BUCKET_LEN + 1], f[STOREPATH_FILE_ID_LEN + 1];
    (void)state;

    assert_int_equal(storepath_rel_parse("virus_area-0a1b2c3d/2026112319/"
                                         "0123456789abcdef0123456789abcdef", a, b, f), 0);
    assert_string_equal(a, "virus_area-0a1b2c3d");
    assert_string_equal(b, "2026112319");
    assert_string_equal(f, "0123456789abcdef0123456789abcdef");
    assert_int_equal(storepath_rel_parse("../2026112319/0123456789abcdef0123456789abcdef", a, b, f), -1);
    assert_int_equal(storepath_rel_parse("x-0a1b2c3d/2026112319", a, b, f), -1);
    assert_int_equal(storepath_rel_parse("x-0a1b2c3d/2026112319/../../etc", a, b, f), -1);
    assert_int_equal(storepath_rel_parse("", a, b, f), -1);
}

static void test_command_limits(void **state)
{
    Portcullis__Command c = PORTCULLIS__COMMAND__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT, *out;
    char **rcpts = calloc(WIRE_COMMAND_RCPT_MAX + 1, sizeof *rcpts);
    uint8_t *buf;
    size_t len;
    (void)state;

    for (size_t i = 0; i <= WIRE_COMMAND_RCPT_MAX; i++)
        rcpts[i] = "a@b.test";
    c.kind = "release";
    c.recipients = rcpts;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_COMMAND;
    env.command = &c;
    c.n_recipients = WIRE_COMMAND_RCPT_MAX; /* at the limit */
    buf = wire_pack(&env, &len);
    out = wire_unpack(buf, len);
    assert_non_null(out);
    wire_free(&out);
    free(buf);
    c.n_recipients = WIRE_COMMAND_RCPT_MAX + 1; /* one past */
    buf = wire_pack(&env, &len);
    assert_null(wire_unpack(buf, len));
    free(buf);
    free(rcpts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_ids),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_area_dir),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_command_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
