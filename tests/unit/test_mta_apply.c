/* test_mta_apply: the R4.3 application of mta.* to the upstream Postfix with stand-in
 * commands: the postconf arguments, postconf then reload, "ok" remembered across a restart (not
 * applied again), a change applied again, a failure reported in the state and not retried
 * before the check interval or a new configuration, "off" with mta.apply off; the parent's
 * "apply_mta" command (R7.4) applies again although unchanged and answers, refused when off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "manager/command.h"
#include "manager/mreport.h"
#include "manager/mta_action.h"
#include "manager/mta_apply.h"
#include "settings.h"
#include "util.h"

#define TEST_WAIT_MS 10000

struct fx {
    char dir[64], script[128], calls[128], cmd[256];
    struct mta_local local;      /* child.conf's commands: the tests use mta.adapter local */
    mreport_t *mrep;
    settings_t *s;
};

static int s_setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof *fx);
    char err[256], spool[128];
    FILE *f;

    strcpy(fx->dir, "/tmp/test_mta_apply.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->calls, sizeof fx->calls, "%s/calls", fx->dir);
    snprintf(fx->script, sizeof fx->script, "%s/record", fx->dir);
    f = fopen(fx->script, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\necho \"$@\" >> %s\n", fx->calls);
    fclose(f);
    chmod(fx->script, 0755);
    snprintf(spool, sizeof spool, "%s/mspool", fx->dir);
    fx->mrep = mreport_open(spool, err, sizeof err);
    assert_non_null(fx->mrep);
    fx->s = settings_new_defaults();
    settings_set_version(fx->s, 1);
    assert_int_equal(settings_set(fx->s, "mta", "apply", "true", err, sizeof err), 0);
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "local", err, sizeof err), 0);
    snprintf(fx->local.postconf, sizeof fx->local.postconf, "%s postconf -c /up -e", fx->script);
    snprintf(fx->local.reload, sizeof fx->local.reload, "%s reload", fx->script);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    struct fx *fx = *state;
    char cmd[128];

    mreport_close(&fx->mrep);
    settings_free(&fx->s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* Ticks until no command runs any more. */
static const char *s_run(mta_apply_t *ma, const settings_t *s)
{
    uint64_t until = now_ms() + TEST_WAIT_MS;

    mta_apply_tick(ma, s);
    while (mta_apply_busy(ma)) {
        assert_true(now_ms() < until);
        usleep(5 * 1000);
        mta_apply_tick(ma, s);
    }
    return mta_apply_state(ma);
}

static char *s_calls(const struct fx *fx)
{
    char *data = NULL, err[128];
    size_t len;

    if (fs_read_file(fx->calls, 65536, &data, &len, err, sizeof err) != 0)
        return xstrdup("");
    return data;
}

static void test_params_defaults(void **state)
{
    char p[512];
    settings_t *s = settings_new_defaults();
    (void)state;

    mta_apply_params(s, p, sizeof p);
    assert_string_equal(p, "queue_run_delay=900s minimal_backoff_time=900s "
                           "maximal_backoff_time=3600s maximal_queue_lifetime=86400s "
                           "bounce_queue_lifetime=0s");
    settings_free(&s);
}

static void test_apply_remember_change(void **state)
{
    struct fx *fx = *state;
    char err[128], *calls;
    mta_apply_t *ma = mta_apply_new(fx->dir, fx->mrep, &fx->local);
    size_t n;

    assert_string_equal(s_run(ma, fx->s), "ok");
    calls = s_calls(fx);
    n = strlen(calls);
    assert_string_equal(calls, "postconf -c /up -e queue_run_delay=900s minimal_backoff_time=900s "
                               "maximal_backoff_time=3600s maximal_queue_lifetime=86400s "
                               "bounce_queue_lifetime=0s\nreload\n");
    free(calls);
    mta_apply_destroy(&ma);

    /* a restart with the same values: "ok" at once, nothing run */
    ma = mta_apply_new(fx->dir, fx->mrep, &fx->local);
    mta_apply_tick(ma, fx->s);
    assert_string_equal(mta_apply_state(ma), "ok");
    calls = s_calls(fx);
    assert_int_equal(strlen(calls), n);
    free(calls);

    /* a change: applied again */
    assert_int_equal(settings_set(fx->s, "mta", "queue_run_delay", "300", err, sizeof err), 0);
    assert_string_equal(s_run(ma, fx->s), "ok");
    calls = s_calls(fx);
    assert_non_null(strstr(calls, "\npostconf -c /up -e queue_run_delay=300s "));
    free(calls);

    /* off: left alone */
    assert_int_equal(settings_set(fx->s, "mta", "apply", "false", err, sizeof err), 0);
    mta_apply_tick(ma, fx->s);
    assert_string_equal(mta_apply_state(ma), "off");
    mta_apply_destroy(&ma);
}

static void test_failure_reported_not_retried_at_once(void **state)
{
    struct fx *fx = *state;
    char err[128], *calls;
    mta_apply_t *ma = mta_apply_new(fx->dir, fx->mrep, &fx->local);
    size_t n;

    strcpy(fx->local.reload, "false");
    assert_string_equal(s_run(ma, fx->s), "reload failed: exit 1");
    calls = s_calls(fx);
    n = strlen(calls);
    free(calls);
    /* same configuration, within the check interval: no new attempt */
    for (int i = 0; i < 20; i++) {
        mta_apply_tick(ma, fx->s);
        usleep(5 * 1000);
    }
    calls = s_calls(fx);
    assert_int_equal(strlen(calls), n);
    free(calls);
    assert_string_equal(mta_apply_state(ma), "reload failed: exit 1");

    /* a new configuration is tried at once */
    settings_set_version(fx->s, 2);
    assert_string_equal(s_run(ma, fx->s), "reload failed: exit 1");
    calls = s_calls(fx);
    assert_true(strlen(calls) > n);
    free(calls);

    /* a command that cannot start */
    strcpy(fx->local.postconf, "portcullis-no-such -e");
    (void)err;
    settings_set_version(fx->s, 3); /* tried with the next configuration */
    mta_apply_tick(ma, fx->s);
    assert_non_null(strstr(mta_apply_state(ma), "postconf failed: "
                                                "\"portcullis-no-such -e queue_run_delay=900s"));
    assert_non_null(strstr(mta_apply_state(ma), "portcullis-no-such: command not found"));
    mta_apply_destroy(&ma);
}

/* The command's answers, as the manager would send them to the parent. */
struct replies {
    unsigned n;
    bool ok;
    uint64_t id;
    char error[512], detail[1024];
};

static int s_capture(void *arg, const envelope_t *env)
{
    struct replies *r = arg;

    assert_int_equal(env->body_case, PORTCULLIS__ENVELOPE__BODY_COMMAND_REPLY);
    r->n++;
    r->ok = env->command_reply->ok;
    r->id = env->command_reply->id;
    strlcpy_p(r->error, env->command_reply->error, sizeof r->error);
    strlcpy_p(r->detail, env->command_reply->detail, sizeof r->detail);
    return 0;
}

static void s_command(command_t *c, uint64_t id)
{
    Portcullis__Command cmd = PORTCULLIS__COMMAND__INIT;

    cmd.id = id;
    cmd.kind = "apply_mta";
    command_handle(c, &cmd);
}

static void test_command_forces_and_answers(void **state)
{
    struct fx *fx = *state;
    struct replies rep = { 0 };
    struct command_conf cc = { .quarantine_dir = fx->dir, .archive_dir = fx->dir,
                               .downstream = "127.0.0.1:1", .helo = "test" };
    char err[256], *calls;
    mta_apply_t *ma = mta_apply_new(fx->dir, fx->mrep, &fx->local);
    command_t *c = command_new(&cc, fx->mrep, s_capture, &rep, err, sizeof err);
    size_t n;

    assert_non_null(c);
    mta_apply_commands(ma, c, &fx->s);
    assert_string_equal(s_run(ma, fx->s), "ok");
    calls = s_calls(fx);
    n = strlen(calls);
    free(calls);

    /* unchanged, yet applied again: postconf and reload, then the answer */
    s_command(c, 41);
    assert_true(mta_apply_busy(ma));
    assert_int_equal(rep.n, 0);
    assert_string_equal(s_run(ma, fx->s), "ok");
    assert_int_equal(rep.n, 1);
    assert_int_equal(rep.id, 41);
    assert_true(rep.ok);
    assert_non_null(strstr(rep.detail, "\"state\":\"ok\""));
    assert_non_null(strstr(rep.detail, "queue_run_delay=900s"));
    calls = s_calls(fx);
    assert_string_equal(calls + n, "postconf -c /up -e queue_run_delay=900s "
                                   "minimal_backoff_time=900s maximal_backoff_time=3600s "
                                   "maximal_queue_lifetime=86400s bounce_queue_lifetime=0s\n"
                                   "reload\n");
    free(calls);

    /* a failing step: the answer is the failure */
    strcpy(fx->local.reload, "false");
    s_command(c, 42);
    s_run(ma, fx->s);
    assert_int_equal(rep.n, 2);
    assert_false(rep.ok);
    assert_string_equal(rep.error, "reload failed: exit 1");

    /* off: refused at once, nothing run */
    assert_int_equal(settings_set(fx->s, "mta", "apply", "false", err, sizeof err), 0);
    calls = s_calls(fx);
    n = strlen(calls);
    free(calls);
    s_command(c, 43);
    assert_int_equal(rep.n, 3);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.error, "mta.apply is off"));
    assert_false(mta_apply_busy(ma));
    calls = s_calls(fx);
    assert_int_equal(strlen(calls), n);
    free(calls);

    mta_apply_destroy(&ma);
    command_destroy(&c);
}

/* R8.2: what each adapter runs — fixed programs for Postfix, with -c DIR for an instance,
 * child.conf's commands for local, nothing for none — and a command line is no adapter. */
static void test_adapters(void **state)
{
    struct fx *fx = *state;
    static const char *const params[] = { "queue_run_delay=900s" };
    struct runcmd_argv av;
    char desc[512], err[256];

    assert_int_equal(settings_set(fx->s, "mta", "adapter", "postfix", err, sizeof err), 0);
    assert_int_equal(mta_action_argv(fx->s, &fx->local, MTA_ACTION_FLUSH, NULL, 0, &av, desc,
                                     sizeof desc, err, sizeof err), 1);
    assert_string_equal(desc, "postqueue -f");
    runcmd_argv_free(&av);
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "postfix:/etc/postfix-out", err,
                                  sizeof err), 0);
    assert_int_equal(mta_action_argv(fx->s, &fx->local, MTA_ACTION_POSTCONF, params, 1, &av,
                                     desc, sizeof desc, err, sizeof err), 1);
    assert_string_equal(desc, "postconf -c /etc/postfix-out -e queue_run_delay=900s");
    runcmd_argv_free(&av);
    assert_int_equal(mta_action_argv(fx->s, &fx->local, MTA_ACTION_RELOAD, NULL, 0, &av, desc,
                                     sizeof desc, err, sizeof err), 1);
    assert_string_equal(desc, "postfix -c /etc/postfix-out reload");
    runcmd_argv_free(&av);
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "none", err, sizeof err), 0);
    assert_int_equal(mta_action_argv(fx->s, &fx->local, MTA_ACTION_FLUSH, NULL, 0, &av, desc,
                                     sizeof desc, err, sizeof err), 0);
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "local", err, sizeof err), 0);
    assert_int_equal(mta_action_argv(fx->s, &fx->local, MTA_ACTION_FLUSH, NULL, 0, &av, desc,
                                     sizeof desc, err, sizeof err), 0); /* no mta_flush_command */
    assert_non_null(strstr(desc, "mta_flush_command"));
    /* the review's attack: a command line through the fleet setting */
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "/bin/sh -c id", err, sizeof err), -1);
    assert_non_null(strstr(err, "not an adapter"));
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "postfix:/etc/../tmp", err,
                                  sizeof err), -1);
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "postfix:rel/dir", err, sizeof err),
                     -1);
    assert_int_equal(settings_set(fx->s, "mta", "adapter", "postfix:/a b", err, sizeof err), -1);
    assert_int_equal(settings_set(fx->s, "mta", "postconf_command", "x", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_defaults),
        cmocka_unit_test_setup_teardown(test_apply_remember_change, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_failure_reported_not_retried_at_once, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_command_forces_and_answers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_adapters, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
