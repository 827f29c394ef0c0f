/* test_runcmd: splitting a command setting into argv (R1.5, R4.3: no shell), finding the
 * executable, and running without blocking: exit status, bounded output as one line, time-out,
 * signals, exec failure, and a kill of a command still running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager/runcmd.h"
#include "util.h"

#define TEST_WAIT_MS 10000 /* longest any command here may take */

/* Polls until done (the manager polls every loop turn; here every 10 ms). */
static void s_wait(runcmd_t *r)
{
    uint64_t until = now_ms() + TEST_WAIT_MS;
    while (!runcmd_poll(r)) {
        assert_true(now_ms() < until);
        usleep(10 * 1000);
    }
}

static runcmd_t *s_start(const char *cmd, uint64_t timeout_ms)
{
    struct runcmd_argv av;
    char err[256];
    runcmd_t *r;

    assert_int_equal(runcmd_split(cmd, NULL, 0, &av, err, sizeof err), 0);
    r = runcmd_start("test", av.argv, timeout_ms, err, sizeof err);
    runcmd_argv_free(&av);
    assert_non_null(r);
    return r;
}

static void test_split(void **state)
{
    struct runcmd_argv av;
    char err[128];
    const char *extra[] = { "queue_run_delay=900s", "minimal_backoff_time=900s" };
    (void)state;

    assert_int_equal(runcmd_split("  postconf \t -c /tmp/up/etc   -e ", extra, 2, &av, err,
                                  sizeof err), 0);
    assert_int_equal(av.argc, 6);
    assert_string_equal(av.argv[0], "postconf");
    assert_string_equal(av.argv[1], "-c");
    assert_string_equal(av.argv[2], "/tmp/up/etc");
    assert_string_equal(av.argv[3], "-e");
    assert_string_equal(av.argv[4], "queue_run_delay=900s");
    assert_string_equal(av.argv[5], "minimal_backoff_time=900s");
    assert_null(av.argv[6]);
    runcmd_argv_free(&av);

    /* quotes are not special: no shell */
    assert_int_equal(runcmd_split("echo 'a b'", NULL, 0, &av, err, sizeof err), 0);
    assert_int_equal(av.argc, 3);
    assert_string_equal(av.argv[1], "'a");
    runcmd_argv_free(&av);

    assert_int_equal(runcmd_split("", NULL, 0, &av, err, sizeof err), -1);
    assert_string_equal(err, "empty command");
    assert_int_equal(runcmd_split(" \t ", extra, 2, &av, err, sizeof err), -1);
    assert_int_equal(runcmd_split(NULL, NULL, 0, &av, err, sizeof err), -1);
}

static void test_split_limit(void **state)
{
    char cmd[RUNCMD_ARGV_MAX * 2 + 8] = "";
    struct runcmd_argv av;
    char err[128];
    const char *extra[] = { "x" };
    (void)state;

    for (int i = 0; i < RUNCMD_ARGV_MAX; i++)
        strcat(cmd, "a ");
    assert_int_equal(runcmd_split(cmd, NULL, 0, &av, err, sizeof err), 0); /* at the limit */
    assert_int_equal(av.argc, RUNCMD_ARGV_MAX);
    runcmd_argv_free(&av);
    assert_int_equal(runcmd_split(cmd, extra, 1, &av, err, sizeof err), -1); /* one past it */
    assert_non_null(strstr(err, "more than 64 words"));
    strcat(cmd, "a");
    assert_int_equal(runcmd_split(cmd, NULL, 0, &av, err, sizeof err), -1);
}

static void test_resolve(void **state)
{
    char path[4096];
    (void)state;

    assert_int_equal(runcmd_resolve("sh", path, sizeof path), 0);
    assert_non_null(strstr(path, "/sh"));
    assert_int_equal(runcmd_resolve("/bin/sh", path, sizeof path), 0);
    assert_string_equal(path, "/bin/sh");
    assert_int_equal(runcmd_resolve("portcullis-no-such-command", path, sizeof path), -1);
    assert_int_equal(runcmd_resolve("/nonexistent/sh", path, sizeof path), -1);
    assert_int_equal(runcmd_resolve("", path, sizeof path), -1);
}

static void test_ok_and_exit_status(void **state)
{
    runcmd_t *r;
    (void)state;

    r = s_start("true", 5000);
    s_wait(r);
    assert_true(runcmd_ok(r));
    assert_string_equal(runcmd_result(r), "ok");
    runcmd_destroy(&r);
    assert_null(r);

    /* stdout and stderr both kept, lines joined */
    r = s_start("sh -c echo${IFS}fatal:${IFS}down;echo${IFS}second>&2;exit${IFS}3", 5000);
    s_wait(r);
    assert_false(runcmd_ok(r));
    assert_string_equal(runcmd_result(r), "exit 3: fatal: down; second");
    runcmd_destroy(&r);
}

static void test_output_bounded(void **state)
{
    runcmd_t *r;
    (void)state;

    /* far more than a pipe holds: drained and dropped, the command never blocks */
    r = s_start("sh -c head${IFS}-c${IFS}1000000${IFS}/dev/zero|tr${IFS}'\\0'${IFS}x;exit${IFS}1",
                5000);
    s_wait(r);
    assert_false(runcmd_ok(r));
    assert_true(strlen(runcmd_result(r)) < RUNCMD_RESULT_MAX);
    assert_true(strlen(runcmd_result(r)) >= RUNCMD_OUTPUT_MAX);
    assert_memory_equal(runcmd_result(r), "exit 1: xxxx", 12);
    runcmd_destroy(&r);
}

static void test_timeout_and_signal(void **state)
{
    runcmd_t *r;
    uint64_t t0 = now_ms();
    (void)state;

    r = s_start("sh -c sleep${IFS}30&sleep${IFS}30", 1000);
    s_wait(r);
    assert_false(runcmd_ok(r));
    assert_string_equal(runcmd_result(r), "timed out after 1 s");
    assert_true(now_ms() - t0 < 5000);
    runcmd_destroy(&r);

    r = s_start("sh -c kill${IFS}-9${IFS}$$", 5000);
    s_wait(r);
    assert_string_equal(runcmd_result(r), "killed by signal 9");
    runcmd_destroy(&r);
}

static void test_exec_failure_and_destroy(void **state)
{
    char dir[] = "/tmp/test_runcmd.XXXXXX", path[64];
    struct runcmd_argv av;
    char err[256];
    runcmd_t *r;
    pid_t pid;
    FILE *f;
    (void)state;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/notexec", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("\x7f" "garbage, not a program\n", f);
    fclose(f);
    chmod(path, 0755);
    r = s_start(path, 5000);
    s_wait(r);
    assert_string_equal(runcmd_result(r), "exit 127: exec failed");
    runcmd_destroy(&r);
    unlink(path);
    rmdir(dir);

    assert_int_equal(runcmd_split("portcullis-no-such-command -f", NULL, 0, &av, err,
                                  sizeof err), 0);
    assert_null(runcmd_start("test", av.argv, 1000, err, sizeof err));
    assert_non_null(strstr(err, "portcullis-no-such-command: command not found"));
    runcmd_argv_free(&av);

    /* still running at destroy: killed and reaped, not left behind */
    r = s_start("sleep 30", 60000);
    pid = runcmd_pid(r);
    assert_false(runcmd_poll(r));
    runcmd_destroy(&r);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    runcmd_destroy(&r); /* NULL-safe */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_limit),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_ok_and_exit_status),
        cmocka_unit_test(test_output_bounded),
        cmocka_unit_test(test_timeout_and_signal),
        cmocka_unit_test(test_exec_failure_and_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
