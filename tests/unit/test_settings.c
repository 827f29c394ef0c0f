/* test_settings: the settings registry's validation (R6.1): types, ranges at and one past
 * each bound, canonical forms, refusal messages naming the setting and the range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "settings.h"

struct vcase {
    const char *key, *value;
    int ok;
    const char *canon_or_msg; /* canonical value when ok, a substring of the error otherwise */
};

static const struct vcase s_cases[] = {
    /* R2.6: query timeout 1..60000 ms, default 1500 */
    { "smart_scan.query_timeout_ms", "1", 1, "1" },
    { "smart_scan.query_timeout_ms", "60000", 1, "60000" },
    { "smart_scan.query_timeout_ms", "0", 0, "from 1 to 60000" },
    { "smart_scan.query_timeout_ms", "60001", 0, "smart_scan.query_timeout_ms" },
    { "smart_scan.query_timeout_ms", "+1500", 1, "1500" },
    { "smart_scan.query_timeout_ms", "15x", 0, "is not valid" },
    { "smart_scan.query_timeout_ms", "", 0, "is not valid" },
    { "smart_scan.query_timeout_ms", "99999999999999999999", 0, "from 1 to 60000" },
    /* R5.11: notification threshold 0..100, 0 disables */
    { "quarantine.quarantine_notify_threshold", "0", 1, "0" },
    { "quarantine.quarantine_notify_threshold", "100", 1, "100" },
    { "quarantine.quarantine_notify_threshold", "101", 0, "from 0 to 100" },
    { "quarantine.quarantine_notify_threshold", "-1", 0, "from 0 to 100" },
    { "smtp.max_message_size", "1023", 0, "from 1024" },
    { "smtp.max_message_size", "1024", 1, "1024" },
    { "smtp.max_line_length", "999", 0, "from 1000 to 1048576" },
    /* R3.1: ers.zones has a format of its own; a refusal gives it */
    { "ers.zones", "", 1, "" },
    { "ers.zones", "bl.test=127.0.0.2:spam", 1, "bl.test=127.0.0.2:spam" },
    { "ers.zones", "bl.test=127.0.0.2", 0, "is not CODE:LISTING; the format is ZONE=CODE:LISTING" },
    { "ers.zones", "bl.test=127.0.0.256:spam", 0, "is not an IPv4 address or 'any'" },
    { "ers.zones", "bl test=any:x", 0, "is not a DNS zone name" },
};

static void test_validate_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        const struct vcase *c = &s_cases[i];
        const struct setting_def *d = settings_find_key(c->key);
        char canon[64] = "", err[256] = "";
        int r;

        assert_non_null(d);
        r = settings_validate(d, c->value, canon, sizeof canon, err, sizeof err);
        if (c->ok) {
            assert_int_equal(r, 0);
            assert_string_equal(canon, c->canon_or_msg);
        } else {
            assert_int_equal(r, -1);
            if (strstr(err, c->canon_or_msg) == NULL)
                fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err, c->canon_or_msg);
            /* Every refusal names the setting (R6.1). */
            assert_non_null(strstr(err, d->name));
        }
    }
}

static void test_defaults_required_by_spec(void **state)
{
    settings_t *s = settings_new_defaults();
    (void)state;
    assert_int_equal(settings_int(s, SETTING_SMART_SCAN_QUERY_TIMEOUT_MS), 1500);
    assert_int_equal(settings_int(s, SETTING_QUARANTINE_NOTIFY_THRESHOLD), 90);
    assert_int_equal(settings_int(s, SETTING_CLUSTER_HEALTH_INTERVAL_S), 10);
    assert_int_equal(settings_version(s), 0);
    settings_free(&s);
    assert_null(s);
    settings_free(&s); /* NULL-safe */
}

static void test_every_default_in_range(void **state)
{
    (void)state;
    for (int i = 0; i < SETTING__COUNT; i++) {
        const struct setting_def *d = settings_def((enum setting_id)i);
        char err[256];
        assert_int_equal(settings_validate(d, d->default_value, NULL, 0, err, sizeof err), 0);
        assert_true(d->min <= d->max);
        assert_ptr_equal(settings_find(d->section, d->name), d);
    }
}

static void test_set_unknown_and_keep_old_value(void **state)
{
    settings_t *s = settings_new_defaults();
    char err[256];
    (void)state;

    assert_int_equal(settings_set(s, "smtp", "no_such", "1", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown setting smtp.no_such"));
    assert_int_equal(settings_set(s, "smtp", "max_recipients", "0", err, sizeof err), -1);
    assert_int_equal(settings_int(s, SETTING_SMTP_MAX_RECIPIENTS), 1000); /* unchanged */
    assert_int_equal(settings_set(s, "smtp", "max_recipients", "7", err, sizeof err), 0);
    assert_int_equal(settings_int(s, SETTING_SMTP_MAX_RECIPIENTS), 7);
    assert_string_equal(settings_str(s, SETTING_SMTP_MAX_RECIPIENTS), "7");

    settings_t *copy = settings_dup(s);
    assert_int_equal(settings_int(copy, SETTING_SMTP_MAX_RECIPIENTS), 7);
    settings_free(&copy);
    settings_free(&s);
}

static void test_find_key_malformed(void **state)
{
    (void)state;
    assert_null(settings_find_key("nodot"));
    assert_null(settings_find_key(".max_recipients"));
    assert_null(settings_find_key("smtp."));
    assert_null(settings_find_key("smtp.max_recipients.extra"));
    assert_non_null(settings_find_key("smtp.max_recipients"));
}

/* R8.8: secrets in settings are masked for every role but admin. */
static void test_mask_secrets(void **state)
{
    static const char *const cases[][2] = {
        { "smtps://user:secret@mail.example:465", "smtps://user:****@mail.example:465" },
        { "smtp://127.0.0.1:25", "smtp://127.0.0.1:25" },
        { "https://h.example/v1/lookup?token=abc", "https://h.example/v1/lookup?****" },
        { "https://u:p@h/x?k=v", "https://u:****@h/x?****" },
        { "https://u@h/x", "https://u@h/x" },
        { "plain-token", "****" },
        { "", "" },
    };
    char out[256];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        settings_mask(cases[i][0], out, sizeof out);
        assert_string_equal(out, cases[i][1]);
    }
    assert_true(settings_is_secret(SETTING_NOTIFY_SMTP_URL));
    assert_false(settings_is_secret(SETTING_SMTP_MAX_MESSAGE_SIZE));
}

/* R8.5: the new SMTP settings refuse what they cannot use. */
static void test_smtp_trust_settings(void **state)
{
    char err[512], canon[256];

    (void)state;
    assert_int_equal(settings_validate(settings_find("smtp", "bare_newline"), "normalize", canon,
                                       sizeof canon, err, sizeof err), 0);
    assert_int_equal(settings_validate(settings_find("smtp", "bare_newline"), "accept", canon,
                                       sizeof canon, err, sizeof err), -1);
    assert_non_null(strstr(err, "reject or normalize"));
    assert_int_equal(settings_validate(settings_find("smtp", "xforward_hosts"),
                                       "127.0.0.0/8, ::1 192.0.2.7", canon, sizeof canon, err,
                                       sizeof err), 0);
    assert_int_equal(settings_validate(settings_find("smtp", "xforward_hosts"), "127.0.0.1/8",
                                       canon, sizeof canon, err, sizeof err), -1);
    assert_non_null(strstr(err, "host bits"));
    assert_int_equal(settings_validate(settings_find("smtp", "xforward_hosts"), "10.0.0.0/33",
                                       canon, sizeof canon, err, sizeof err), -1);
    assert_int_equal(settings_validate(settings_find("smtp", "xforward_hosts"), "mx.example",
                                       canon, sizeof canon, err, sizeof err), -1);
    assert_int_equal(settings_validate(settings_find("smtp", "session_timeout_s"), "9", canon,
                                       sizeof canon, err, sizeof err), -1);
    assert_int_equal(settings_validate(settings_find("smtp", "session_timeout_s"), "10", canon,
                                       sizeof canon, err, sizeof err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_table),
        cmocka_unit_test(test_defaults_required_by_spec),
        cmocka_unit_test(test_every_default_in_range),
        cmocka_unit_test(test_set_unknown_and_keep_old_value),
        cmocka_unit_test(test_find_key_malformed),
        cmocka_unit_test(test_mask_secrets),
        cmocka_unit_test(test_smtp_trust_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
