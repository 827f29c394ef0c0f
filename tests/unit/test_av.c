/* Unit tests for av (libclamav engine, limits, hot swap): signatures the test writes (.ndb
 * EICAR pattern, .hdb md5:size:name), detection, clean, limits exceeded as an exception, no
 * engine as an exception, and a swap while a scan still holds the old engine. R0.4 R1.4 R5.1 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <glib.h>

#include "policy.h"
#include "scan/av.h"

static const char s_eicar[] =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
static const char s_hashed[] = "portcullis hash-signature test content\n";
static const struct av_limits s_lim = { .max_file_size = 26214400, .max_scan_size = 104857600,
                                        .max_recursion = 16, .max_files = 10000,
                                        .scan_timeout_ms = 120000 };
static char s_dir[64];

static void s_write(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void s_write_sigs(void)
{
    char line[512], hex[256];
    gchar *md5 = g_compute_checksum_for_string(G_CHECKSUM_MD5, s_hashed, -1);

    for (size_t i = 0; i < strlen(s_eicar); i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s_eicar[i]);
    snprintf(line, sizeof line, "Portcullis.Test.Eicar:0:*:%s\n", hex);
    s_write("test.ndb", line);
    snprintf(line, sizeof line, "%s:%zu:Portcullis.Test.Hash\n", md5, strlen(s_hashed));
    s_write("test.hdb", line);
    g_free(md5);
}

static int s_setup(void **state)
{
    (void)state;
    strcpy(s_dir, "/tmp/test_av.XXXXXX");
    assert_non_null(mkdtemp(s_dir));
    s_write_sigs();
    return 0;
}

static int s_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_detect_and_clean(void **state)
{
    av_t *av = av_new(s_dir, &s_lim);
    struct av_result r;
    struct av_info info;
    char msg[512];

    (void)state;
    av_get_info(av, &info);
    assert_true(info.loaded);
    assert_int_equal(info.sigs, 2);
    assert_int_equal(info.swaps, 0);
    assert_non_null(strstr(info.version, "sigs=2 loaded="));
    snprintf(msg, sizeof msg, "Subject: t\r\n\r\n%s\r\n", s_eicar);
    av_scan(av, msg, strlen(msg), &r);
    assert_int_equal(r.status, AV_VIRUS);
    assert_non_null(strstr(r.name, "Portcullis.Test.Eicar"));
    av_scan(av, s_hashed, strlen(s_hashed), &r);
    assert_int_equal(r.status, AV_VIRUS);
    assert_non_null(strstr(r.name, "Portcullis.Test.Hash"));
    av_scan(av, "Subject: hello\r\n\r\nnothing here\r\n", 32, &r);
    assert_int_equal(r.status, AV_CLEAN);
    assert_int_equal(r.exceptions, 0);
    av_free(&av);
    assert_null(av);
    assert_int_equal(av_engines_live(), 0);
}

static void test_limits_exception(void **state)
{
    struct av_limits lim = s_lim;
    char *big = malloc(8192);
    struct av_result r;
    av_t *av;

    (void)state;
    memset(big, 'A', 8192);
    lim.max_file_size = 1024; /* the content is bigger: reported, never passed unseen */
    lim.max_scan_size = 1024;
    av = av_new(s_dir, &lim);
    av_scan(av, big, 8192, &r);
    assert_int_equal(r.status, AV_EXCEPTION);
    assert_int_equal(r.exceptions, POLICY_EXC_AV_LIMITS);
    assert_non_null(strstr(r.name, "Heuristics.Limits.Exceeded"));
    av_free(&av);
    free(big);
}

static void test_no_engine(void **state)
{
    char empty[64];
    struct av_result r;
    struct av_info info;
    av_t *av;

    (void)state;
    strcpy(empty, "/tmp/test_av_empty.XXXXXX");
    assert_non_null(mkdtemp(empty));
    av = av_new(empty, &s_lim);
    av_get_info(av, &info);
    assert_false(info.loaded);
    assert_string_equal(info.version, "none");
    av_scan(av, "x", 1, &r); /* no fake clean verdict */
    assert_int_equal(r.status, AV_EXCEPTION);
    assert_int_equal(r.exceptions, POLICY_EXC_AV_ERROR);
    av_free(&av);
    rmdir(empty);
}

static void test_swap_while_scanning(void **state)
{
    av_t *av = av_new(s_dir, &s_lim);
    static const char newsig[] = "portcullis second generation\n";
    av_engine_t *old;
    struct av_result r;
    struct av_info info;
    char line[256], hex[128];

    (void)state;
    old = av_engine_acquire(av); /* a scan in progress on the first engine */
    assert_non_null(old);
    for (size_t i = 0; i + 1 < sizeof newsig; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)newsig[i]);
    snprintf(line, sizeof line, "Portcullis.Test.Second:0:*:%s\n", hex);
    s_write("second.ndb", line);
    av_reload(av, "test");
    av_wait_idle(av);
    av_get_info(av, &info);
    assert_int_equal(info.swaps, 1);
    assert_int_equal(info.sigs, 3);
    assert_int_equal(av_engines_live(), 2); /* the old one lives while held */
    av_engine_scan(old, av, newsig, strlen(newsig), &r);
    assert_int_equal(r.status, AV_CLEAN); /* old signatures */
    av_engine_scan(old, av, s_eicar, strlen(s_eicar), &r);
    assert_int_equal(r.status, AV_VIRUS);
    av_engine_release(av, &old);
    assert_null(old);
    assert_int_equal(av_engines_live(), 1); /* freed with its last scan */
    av_scan(av, newsig, strlen(newsig), &r);
    assert_int_equal(r.status, AV_VIRUS);
    assert_non_null(strstr(r.name, "Portcullis.Test.Second"));

    /* a broken signature file: the load fails, the engine in force stays */
    s_write("broken.ndb", "this is not a signature\n");
    av_reload(av, "test");
    av_wait_idle(av);
    av_get_info(av, &info);
    assert_int_equal(info.swaps, 1);
    av_scan(av, newsig, strlen(newsig), &r);
    assert_int_equal(r.status, AV_VIRUS);
    {
        char p[128];
        snprintf(p, sizeof p, "%s/broken.ndb", s_dir);
        unlink(p);
        snprintf(p, sizeof p, "%s/second.ndb", s_dir);
        unlink(p);
    }
    av_free(&av);
    assert_int_equal(av_engines_live(), 0);
}

static void s_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    av_t *av = ((void **)arg)[0];
    struct event_base *base = ((void **)arg)[1];
    struct av_info info;

    (void)fd;
    (void)what;
    av_get_info(av, &info);
    if (info.swaps >= 1)
        event_base_loopexit(base, NULL);
}

static void test_inotify_reload(void **state)
{
    struct event_base *base = event_base_new();
    av_t *av = av_new(s_dir, &s_lim);
    void *args[2] = { av, base };
    struct event *poll = event_new(base, -1, EV_PERSIST, s_stop_cb, args);
    struct timeval every = { 0, 50000 }, limit = { 10, 0 };
    struct av_info info;
    char tmp[128], dst[128];

    (void)state;
    assert_int_equal(av_watch(av, base), 0);
    evtimer_add(poll, &every);
    /* written atomically, as the updater does: temp file, then rename */
    snprintf(tmp, sizeof tmp, "%s/.third.tmp", s_dir);
    snprintf(dst, sizeof dst, "%s/third.hdb", s_dir);
    {
        FILE *f = fopen(tmp, "w");
        assert_non_null(f);
        fputs("0123456789abcdef0123456789abcdef:5:Portcullis.Test.Third\n", f);
        fclose(f);
    }
    assert_int_equal(rename(tmp, dst), 0);
    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
    av_wait_idle(av);
    av_get_info(av, &info);
    assert_int_equal(info.swaps, 1);
    assert_int_equal(info.sigs, 3);
    unlink(dst);
    event_free(poll);
    av_free(&av);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_and_clean), cmocka_unit_test(test_limits_exception),
        cmocka_unit_test(test_no_engine),        cmocka_unit_test(test_swap_while_scanning),
        cmocka_unit_test(test_inotify_reload),
    };

    if (av_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
