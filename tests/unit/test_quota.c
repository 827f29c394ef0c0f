/* test_quota: exact usage counters (R5.9: add and subtract, never negative, shared between
 * mappings, kept across reopen), purge selection (R5.8: oldest first, down to the low-water
 * mark exactly, hours with no mail widening nothing — the model's pathological case), the
 * retention cut-off and the daily schedule with a missed run (R5.5), and the manager's walks on
 * a real tree: drift corrected (R5.9), a purge down to the low-water mark, retention removing
 * only expired buckets, each removal recorded in the manager's spool; the parent's "purge"
 * command (R7.4) running both now and answering, after the removals are recorded, with what
 * was deleted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "manager/command.h"
#include "manager/mreport.h"
#include "manager/purge_plan.h"
#include "manager/quota.h"
#include "settings.h"
#include "spool.h"
#include "storepath.h"
#include "usage.h"
#include "util.h"

static char s_dir[256];

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/test_quota.XXXXXX");
    return mkdtemp(s_dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(s_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* --- usage counters --------------------------------------------------------------------------- */

static void test_usage_add_sub_never_negative(void **state)
{
    char err[256];
    usage_t *u, *v;
    uint64_t b, f;

    (void)state;
    u = usage_open(s_dir, err, sizeof err);
    assert_non_null(u);
    usage_get(u, &b, &f);
    assert_int_equal(b, 0);
    assert_int_equal(f, 0);
    usage_add(u, 1000, 1);
    usage_add(u, 500, 1);
    v = usage_open(s_dir, err, sizeof err); /* a second process's mapping sees the same */
    assert_non_null(v);
    usage_get(v, &b, &f);
    assert_int_equal(b, 1500);
    assert_int_equal(f, 2);
    usage_add(v, -1000, -1);
    usage_get(u, &b, &f);
    assert_int_equal(b, 500);
    assert_int_equal(f, 1);
    usage_add(u, -700, -5); /* a removal counted twice must not wrap */
    usage_get(u, &b, &f);
    assert_int_equal(b, 0);
    assert_int_equal(f, 0);
    usage_add(u, INT64_MIN, INT64_MIN);
    usage_get(u, &b, &f);
    assert_int_equal(b, 0);
    usage_set(u, 12345, 7);
    usage_close(&u);
    assert_null(u);
    usage_close(&u); /* NULL-safe */
    usage_close(&v);
    v = usage_open(s_dir, err, sizeof err); /* kept across reopen */
    usage_get(v, &b, &f);
    assert_int_equal(b, 12345);
    assert_int_equal(f, 7);
    usage_close(&v);
}

static void test_usage_refuses_foreign_file(void **state)
{
    char err[256], path[512];
    FILE *fp;

    (void)state;
    snprintf(path, sizeof path, "%s/%s", s_dir, USAGE_FILE);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("this is not a counter file, it is some text longer than the struct....", fp);
    fclose(fp);
    assert_null(usage_open(s_dir, err, sizeof err));
    assert_non_null(strstr(err, "not a usage counter file"));
}

/* --- purge selection -------------------------------------------------------------------------- */

#define MB1 (1024u * 1024u)

static void test_purge_low_water_exact(void **state)
{
    struct purge_item it[10];
    uint64_t freed;

    (void)state;
    for (uint32_t i = 0; i < 10; i++)
        it[i] = (struct purge_item){ .hour = 2026012900 + i, .mtime_ns = i, .size = 10, .idx = i };
    assert_int_equal(purge_select(it, 10, 100, 80, &freed), 2); /* 100 - 20 = 80: at the mark */
    assert_int_equal(freed, 20);
    assert_int_equal(purge_select(it, 10, 101, 80, &freed), 3); /* 81 is still over */
    assert_int_equal(purge_select(it, 10, 80, 80, &freed), 0);
    assert_int_equal(freed, 0);
    assert_int_equal(purge_select(it, 10, 1000, 80, &freed), 10); /* not enough: all */
    assert_int_equal(freed, 100);
    assert_int_equal(purge_select(it, 10, 15, 0, &freed), 2); /* counter under the files' sum */
    assert_int_equal(freed, 15);
    assert_int_equal(purge_target(100 * (uint64_t)MB1, 80), 80 * (uint64_t)MB1);
    assert_int_equal(purge_target(UINT64_MAX, 80), UINT64_MAX / 100 * 80 + UINT64_MAX % 100 * 80 / 100);
    assert_int_equal(purge_target(1000, 100), 1000);
}

/* The model deletes "24 hourly lists": with hours of no mail between old and new buckets it
 * deletes days of mail or everything. Portcullis deletes the oldest files only until usage is
 * at the low-water mark, whatever the gaps. */
static void test_purge_gaps_pathological(void **state)
{
    /* 3 old hours (Jan 1, 00-02h), then 30 days of nothing, then 20 new hours of mail. */
    struct purge_item it[23 * 4];
    size_t n = 0, k;
    uint64_t usage = 0, freed, quota = 23 * 4 * 100 - 100;

    (void)state;
    for (uint32_t h = 0; h < 23; h++) {
        uint32_t hour = h < 3 ? 2026010100 + h : 2026020100 + (h - 3);
        for (uint32_t f = 0; f < 4; f++, n++) {
            /* inserted newest first: the sort must order them */
            it[n] = (struct purge_item){ .hour = hour, .mtime_ns = (int64_t)(100 - f),
                                         .size = 100, .idx = (uint32_t)n };
            usage += 100;
        }
    }
    purge_sort(it, n);
    for (size_t i = 1; i < n; i++)
        assert_true(it[i - 1].hour < it[i].hour ||
                    (it[i - 1].hour == it[i].hour && it[i - 1].mtime_ns <= it[i].mtime_ns));
    /* 100 bytes over the quota, low water 80 %: target 7280 of 9200 → 20 files (2000 bytes) */
    k = purge_select(it, n, usage, purge_target(quota, 80), &freed);
    assert_int_equal(purge_target(quota, 80), 7280);
    assert_int_equal(k, 20);
    assert_int_equal(freed, 2000);
    assert_int_equal(it[0].hour, 2026010100);
    assert_int_equal(it[k - 1].hour, 2026020101); /* 3 old hours, then 2 new ones: not 24 h */
    assert_true(usage - freed <= purge_target(quota, 80));
    assert_true(usage - (freed - it[k - 1].size) > purge_target(quota, 80)); /* the fewest */
    /* within the hour oldest first */
    assert_int_equal(it[0].mtime_ns, 97);
    assert_int_equal(it[3].mtime_ns, 100);
}

/* --- retention and the schedule --------------------------------------------------------------- */

static void test_retention_cutoff(void **state)
{
    uint32_t hour;
    time_t start, now;

    (void)state;
    assert_int_equal(purge_bucket_parse("2026011502", &hour, &start), 0);
    assert_int_equal(hour, 2026011502);
    now = start + 3600 + 15 * PURGE_SECONDS_PER_DAY;     /* the hour's end, 15 days on */
    assert_true(purge_retention_expired(start, now, 15));
    assert_false(purge_retention_expired(start, now - 1, 15)); /* its last second: 15 d - 1 s */
    assert_false(purge_retention_expired(start, now, 16));
    assert_true(purge_retention_expired(start, now + 45 * PURGE_SECONDS_PER_DAY, 60));
    assert_int_equal(purge_bucket_parse("2026131502", &hour, &start), -1);
    assert_int_equal(purge_bucket_parse("202601150", &hour, &start), -1);
    assert_int_equal(purge_bucket_parse(".x.tmp", &hour, &start), -1);
}

static void test_schedule_and_missed_run(void **state)
{
    struct tm tm = { .tm_year = 126, .tm_mon = 0, .tm_mday = 20, .tm_hour = 1, .tm_min = 59 };
    time_t t0159, t0200, yesterday0200;
    int hh, mm;

    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    t0159 = timegm(&tm);
    t0200 = t0159 + 60;
    yesterday0200 = t0200 - PURGE_SECONDS_PER_DAY;
    assert_int_equal(purge_time_parse("02:00", &hh, &mm), 0);
    assert_int_equal(purge_time_parse("24:00", &hh, &mm), -1);
    assert_int_equal(purge_time_parse("2:00", &hh, &mm), -1);
    assert_int_equal(purge_time_parse("02:60", &hh, &mm), -1);
    assert_int_equal(purge_time_parse("02:00", &hh, &mm), 0);
    assert_int_equal(purge_scheduled_before(t0159, hh, mm), yesterday0200);
    assert_int_equal(purge_scheduled_before(t0200, hh, mm), t0200);
    assert_false(purge_retention_due(t0159, yesterday0200, hh, mm));
    assert_true(purge_retention_due(t0200, yesterday0200, hh, mm));
    assert_false(purge_retention_due(t0200 + 5, t0200, hh, mm)); /* ran: not again today */
    /* down for three days: due once at start, then not again until the next 02:00 */
    assert_true(purge_retention_due(t0200 + 3 * PURGE_SECONDS_PER_DAY + 600,
                                    yesterday0200, hh, mm));
    assert_false(purge_retention_due(t0200 + 3 * PURGE_SECONDS_PER_DAY + 700,
                                     t0200 + 3 * PURGE_SECONDS_PER_DAY + 600, hh, mm));
}

/* retention.purge_time is checked by the settings table's HH:MM checker. */
static void test_purge_time_setting(void **state)
{
    static const struct { const char *v; int ok; } cases[] = {
        { "02:00", 0 }, { "00:00", 0 }, { "23:59", 0 }, { "24:00", -1 }, { "2:00", -1 },
        { "02:60", -1 }, { "02-00", -1 }, { "ab:cd", -1 }, { "", -1 }, { "02:000", -1 },
    };
    const struct setting_def *d = settings_find("retention", "purge_time");
    char canon[64], err[512];

    (void)state;
    assert_non_null(d);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = settings_validate(d, cases[i].v, canon, sizeof canon, err, sizeof err);
        if (rc != cases[i].ok)
            fail_msg("retention.purge_time '%s': rc %d, want %d (%s)", cases[i].v, rc,
                     cases[i].ok, err);
    }
    assert_int_equal(settings_validate(d, "25:00", canon, sizeof canon, err, sizeof err), -1);
    assert_non_null(strstr(err, "retention.purge_time"));
}

/* --- the walks on a real tree ----------------------------------------------------------------- */

/* Writes <base>/<area-dir>/<bucket>/<id>.eml of size bytes with mtime mt; returns the id. */
static void s_file(const char *base, const char *area, const char *bucket, unsigned n,
                   size_t size, time_t mt, char *id)
{
    char adir[STOREPATH_AREA_DIR_MAX + 1], path[1024];
    struct timespec ts[2] = { { mt, 0 }, { mt, 0 } };
    char *buf = calloc(1, size);
    int fd;

    storepath_area_dir(area, adir, sizeof adir);
    snprintf(id, STOREPATH_FILE_ID_LEN + 1, "%024x%08x", 0u, n);
    snprintf(path, sizeof path, "%s/%s", base, adir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/%s/%s", base, adir, bucket);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/%s/%s/%s.eml", base, adir, bucket, id);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    futimens(fd, ts);
    close(fd);
    free(buf);
}

static bool s_exists(const char *base, const char *area, const char *bucket, const char *id)
{
    char adir[STOREPATH_AREA_DIR_MAX + 1], path[1024];

    storepath_area_dir(area, adir, sizeof adir);
    snprintf(path, sizeof path, "%s/%s/%s/%s.eml", base, adir, bucket, id);
    return access(path, F_OK) == 0;
}

/* The removals recorded in the manager's spool: count by reason. */
static size_t s_removed(const char *mspool, const char *reason)
{
    char err[256];
    spool_reader_t *r = spool_reader_open(mspool, err, sizeof err);
    Portcullis__Report **recs;
    size_t n = 0, count = 0;

    assert_non_null(r);
    assert_int_equal(spool_reader_read(r, 0, 100000, 64u << 20, &recs, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (recs[i]->body_case == PORTCULLIS__REPORT__BODY_REMOVED &&
            strcmp(recs[i]->removed->reason, reason) == 0)
            count++;
    spool_reports_free(recs, n);
    spool_reader_close(&r);
    return count;
}

static void test_walks(void **state)
{
    char q[512], a[512], st[512], ms[512], err[256];
    char ids[12][STOREPATH_FILE_ID_LEN + 1], old_ids[2][STOREPATH_FILE_ID_LEN + 1], x[33];
    const char *hours[3] = { "2026010100", "2026010102", "2026020110" }; /* a gap between */
    usage_t *u;
    mreport_t *mrep;
    quota_t *qt;
    uint64_t b, f;
    time_t now = 1770000000; /* 2026-02-02 */

    (void)state;
    snprintf(q, sizeof q, "%s/q", s_dir);
    snprintf(a, sizeof a, "%s/a", s_dir);
    snprintf(st, sizeof st, "%s/state", s_dir);
    snprintf(ms, sizeof ms, "%s/mspool", s_dir);
    mkdir(st, 0700);
    mrep = mreport_open(ms, err, sizeof err);
    assert_non_null(mrep);
    qt = quota_new(q, a, st, mrep, err, sizeof err);
    assert_non_null(qt);
    u = usage_open(q, err, sizeof err);
    assert_non_null(u);
    /* 12 files of 1000 bytes, 4 per hour over two areas, written with their counters */
    for (unsigned i = 0; i < 12; i++) {
        s_file(q, i % 2 ? "Default quarantine" : "Other", hours[i / 4], i, 1000,
               1700000000 + (time_t)i, ids[i]);
        usage_add(u, 1000, 1);
    }
    /* drift: one file deleted by hand, one stray written behind the counters' back */
    {
        char adir[STOREPATH_AREA_DIR_MAX + 1], path[1024];
        storepath_area_dir("Other", adir, sizeof adir);
        snprintf(path, sizeof path, "%s/%s/%s/%s.eml", q, adir, hours[2], ids[8]);
        assert_int_equal(unlink(path), 0);
        s_file(q, "Other", hours[2], 99, 300, 1700000100, x);
        snprintf(path, sizeof path, "%s/%s/%s/.abc.tmp", q, adir, hours[2]); /* a write in progress */
        close(open(path, O_WRONLY | O_CREAT, 0600));
    }
    quota_run_verify(qt, 0);
    usage_get(u, &b, &f);
    assert_int_equal(b, 11000 + 300); /* the temp file is not counted */
    assert_int_equal(f, 12);
    quota_run_verify(qt, 0); /* exact now: nothing to correct */
    usage_get(u, &b, &f);
    assert_int_equal(b, 11300);

    /* quota 10000, low water 80 %: down to 8000 → the 4 files of the oldest hour (4000 bytes:
     * 7300) and nothing of the second: the fewest oldest that suffice */
    quota_run_check(qt, 0, 10000, 80);
    usage_get(u, &b, &f);
    assert_int_equal(b, 7300);
    for (unsigned i = 0; i < 12; i++) {
        const char *area = i % 2 ? "Default quarantine" : "Other";
        if (i == 8)
            continue;
        assert_int_equal(s_exists(q, area, hours[i / 4], ids[i]), i >= 4);
    }
    /* under the quota: a check deletes nothing */
    quota_run_check(qt, 0, 10000, 80);
    usage_get(u, &b, &f);
    assert_int_equal(b, 7300);

    /* retention: "Default quarantine" keeps 60 days, "Other" (default 15) loses the bucket of
     * Jan 1 02h (32 days old at now) but not the one of Feb 1 */
    {
        Portcullis__Area ar = PORTCULLIS__AREA__INIT, *arp = &ar;
        ar.name = "Default quarantine";
        ar.retention_days = 60;
        quota_set_areas(qt, &arp, 1);
    }
    s_file(a, "Default archive", "2026010100", 200, 50, 1700000000, old_ids[0]);
    s_file(a, "Default archive", "2026020110", 201, 50, 1700000000, old_ids[1]);
    quota_run_retention(qt, now);
    assert_true(s_exists(q, "Default quarantine", hours[1], ids[5]));
    assert_false(s_exists(q, "Other", hours[1], ids[4]));
    assert_true(s_exists(q, "Other", hours[2], ids[10]));
    assert_false(s_exists(a, "Default archive", "2026010100", old_ids[0]));
    assert_true(s_exists(a, "Default archive", "2026020110", old_ids[1]));
    usage_get(u, &b, &f);
    assert_int_equal(b, 5300);

    quota_destroy(&qt); /* records the queued removals */
    assert_null(qt);
    assert_int_equal(s_removed(ms, "quota"), 4);
    assert_int_equal(s_removed(ms, "retention"), 3); /* 2 quarantine + 1 archive */
    usage_close(&u);
    mreport_close(&mrep);
}

struct replies {
    unsigned n;
    bool ok;
    uint64_t id;
    char error[512], detail[2048];
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

static void test_purge_command(void **state)
{
    char q[512], a[512], st[512], ms[512], err[256], hour[16], ids[4][STOREPATH_FILE_ID_LEN + 1];
    struct replies rep = { 0 };
    Portcullis__Command cmd = PORTCULLIS__COMMAND__INIT;
    settings_t *s = settings_new_defaults();
    time_t now = time(NULL);
    struct tm tm;
    usage_t *uq, *ua;
    mreport_t *mrep;
    quota_t *qt;
    command_t *c;
    uint64_t b, f, until;

    (void)state;
    snprintf(q, sizeof q, "%s/q", s_dir);
    snprintf(a, sizeof a, "%s/a", s_dir);
    snprintf(st, sizeof st, "%s/state", s_dir);
    snprintf(ms, sizeof ms, "%s/mspool", s_dir);
    mkdir(st, 0700);
    assert_int_equal(settings_set(s, "quarantine", "quota_mb", "1", err, sizeof err), 0);
    mrep = mreport_open(ms, err, sizeof err);
    assert_non_null(mrep);
    qt = quota_new(q, a, st, mrep, err, sizeof err);
    assert_non_null(qt);
    {
        struct command_conf cc = { .quarantine_dir = q, .archive_dir = a,
                                   .downstream = "127.0.0.1:1", .helo = "test" };
        c = command_new(&cc, mrep, s_capture, &rep, err, sizeof err);
        assert_non_null(c);
    }
    quota_commands(qt, c, &s);
    uq = usage_open(q, err, sizeof err);
    ua = usage_open(a, err, sizeof err);
    assert_non_null(uq);
    assert_non_null(ua);
    /* quarantine: 3 x 500 000 bytes this hour, over its 1 MiB quota (low water 80 %:
     * 838 860): the 2 oldest go; archive: one file of January, past the 15 days */
    gmtime_r(&now, &tm);
    strftime(hour, sizeof hour, "%Y%m%d%H", &tm);
    for (unsigned i = 0; i < 3; i++) {
        s_file(q, "Default quarantine", hour, i, 500000, now - 10 + (time_t)i, ids[i]);
        usage_add(uq, 500000, 1);
    }
    s_file(a, "Default archive", "2026010100", 9, 50, 1700000000, ids[3]);
    usage_add(ua, 50, 1);

    cmd.id = 77;
    cmd.kind = "purge";
    command_handle(c, &cmd);
    cmd.id = 78; /* a second one while the first runs: refused */
    command_handle(c, &cmd);
    assert_true(rep.n >= 1);
    until = now_ms() + 10000;
    while (rep.n < 2 && now_ms() < until) {
        usleep(5 * 1000);
        quota_record(qt);
    }
    assert_int_equal(rep.n, 2);
    assert_true(rep.ok);
    assert_int_equal(rep.id, 77);
    assert_non_null(strstr(rep.detail, "\"deleted\":3"));
    assert_non_null(strstr(rep.detail, "\"quarantine\":{\"bytes_now\":500000,"
                                       "\"deleted_quota\":2,\"deleted_retention\":0,"
                                       "\"files_now\":1,"));
    assert_non_null(strstr(rep.detail, "\"deleted_retention\":1"));
    assert_false(s_exists(q, "Default quarantine", hour, ids[0]));
    assert_true(s_exists(q, "Default quarantine", hour, ids[2]));
    assert_false(s_exists(a, "Default archive", "2026010100", ids[3]));
    usage_get(uq, &b, &f);
    assert_int_equal(b, 500000);
    /* recorded before the answer */
    assert_int_equal(s_removed(ms, "quota"), 2);
    assert_int_equal(s_removed(ms, "retention"), 1);

    quota_destroy(&qt);
    command_destroy(&c);
    usage_close(&uq);
    usage_close(&ua);
    mreport_close(&mrep);
    settings_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage_add_sub_never_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_refuses_foreign_file, setup, teardown),
        cmocka_unit_test(test_purge_low_water_exact),
        cmocka_unit_test(test_purge_gaps_pathological),
        cmocka_unit_test(test_retention_cutoff),
        cmocka_unit_test(test_schedule_and_missed_run),
        cmocka_unit_test(test_purge_time_setting),
        cmocka_unit_test_setup_teardown(test_walks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_command, setup, teardown),
    };

    log_init("test_quota", LOG_LEVEL_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
