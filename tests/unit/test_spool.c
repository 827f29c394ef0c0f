/* test_spool: the report spool (R7.3): append, read and trim; sequence numbers continuing
 * across reopens; torn tails cut at every byte offset and corrupt CRCs, after which the writer
 * keeps everything before the damage and continues; the reader never returns a partial record;
 * trim never removes an unacknowledged record; the epoch stays put. */
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
#include <unistd.h>

#include "log.h"
#include "spool.h"

#define SEG1 "seg-00000000000000000001.log"

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
    snprintf(s_dir, sizeof s_dir, "/tmp/test_spool.XXXXXX");
    assert_non_null(mkdtemp(s_dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(s_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void s_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", s_dir, name);
}

/* Appends one tracking record whose msg_id is id and whose subject has pad bytes. */
static uint64_t s_append(spool_writer_t *w, const char *id, size_t pad)
{
    Portcullis__Report r = PORTCULLIS__REPORT__INIT;
    Portcullis__TrackingRecord t = PORTCULLIS__TRACKING_RECORD__INIT;
    char *subject = malloc(pad + 1);

    memset(subject, 's', pad);
    subject[pad] = '\0';
    t.msg_id = (char *)id;
    t.subject = subject;
    t.action = "delivered";
    r.body_case = PORTCULLIS__REPORT__BODY_TRACKING;
    r.tracking = &t;
    assert_int_equal(spool_writer_append(w, &r), 0);
    free(subject);
    return r.seq;
}

/* Reads everything after after_seq; checks seqs are after_seq+1 … contiguous; returns count. */
static size_t s_read_all(const char *dir, uint64_t after_seq, uint64_t *last)
{
    spool_reader_t *r = spool_reader_open(dir, NULL, 0);
    Portcullis__Report **reps;
    size_t n, total = 0;
    uint64_t expect = after_seq + 1;

    assert_non_null(r);
    for (;;) {
        assert_int_equal(spool_reader_read(r, after_seq, 7, 1u << 20, &reps, &n), 0);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(reps[i]->seq, expect);
            assert_int_equal(reps[i]->body_case, PORTCULLIS__REPORT__BODY_TRACKING);
            expect++;
        }
        after_seq = reps[n - 1]->seq;
        total += n;
        spool_reports_free(reps, n);
    }
    if (last != NULL)
        *last = after_seq;
    spool_reader_close(&r);
    return total;
}

static void test_append_read(void **state)
{
    spool_writer_t *w = spool_writer_open(s_dir, NULL, 0);
    spool_reader_t *r;
    Portcullis__Report **reps;
    size_t n;
    char id[32];
    uint64_t recs, bytes;
    (void)state;

    assert_non_null(w);
    for (int i = 1; i <= 20; i++) {
        snprintf(id, sizeof id, "m%02d", i);
        assert_int_equal(s_append(w, id, 10), (uint64_t)i);
    }
    assert_int_equal(spool_writer_sync(w), 0);
    r = spool_reader_open(s_dir, NULL, 0);
    assert_non_null(r);
    assert_int_equal(spool_reader_read(r, 0, 5, 1u << 20, &reps, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(reps[0]->seq, 1);
    assert_string_equal(reps[0]->tracking->msg_id, "m01");
    assert_string_equal(reps[4]->tracking->msg_id, "m05");
    spool_reports_free(reps, n);
    /* continuing from the cursor, and from an arbitrary earlier point */
    assert_int_equal(spool_reader_read(r, 5, 100, 1u << 20, &reps, &n), 0);
    assert_int_equal(n, 15);
    assert_int_equal(reps[0]->seq, 6);
    assert_int_equal(reps[14]->seq, 20);
    spool_reports_free(reps, n);
    assert_int_equal(spool_reader_read(r, 12, 100, 1u << 20, &reps, &n), 0);
    assert_int_equal(n, 8);
    assert_string_equal(reps[0]->tracking->msg_id, "m13");
    spool_reports_free(reps, n);
    assert_int_equal(spool_reader_read(r, 20, 100, 1u << 20, &reps, &n), 0);
    assert_int_equal(n, 0);
    /* max_bytes: at least one record, then stop once past the budget */
    assert_int_equal(spool_reader_read(r, 0, 100, 1, &reps, &n), 0);
    assert_int_equal(n, 1);
    spool_reports_free(reps, n);
    spool_reader_depth(r, &recs, &bytes);
    assert_int_equal(recs, 20);
    assert_true(bytes > 20 * 20);
    /* appended after the reader saw the end: picked up */
    s_append(w, "m21", 10);
    assert_int_equal(spool_reader_read(r, 20, 100, 1u << 20, &reps, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(reps[0]->seq, 21);
    spool_reports_free(reps, n);
    spool_reader_depth(r, &recs, &bytes);
    assert_int_equal(recs, 21);
    spool_reader_close(&r);
    spool_writer_close(&w);
    assert_null(w);
    spool_writer_close(&w); /* NULL-safe */
}

static void test_seq_and_epoch_across_reopen(void **state)
{
    char epoch[SPOOL_EPOCH_LEN + 1];
    spool_writer_t *w = spool_writer_open(s_dir, NULL, 0), *w2;
    spool_reader_t *r;
    char err[256];
    (void)state;

    assert_non_null(w);
    for (int i = 0; i < 3; i++)
        s_append(w, "a", 1);
    /* one writer per directory */
    w2 = spool_writer_open(s_dir, err, sizeof err);
    assert_null(w2);
    assert_non_null(strstr(err, "another writer"));
    spool_writer_close(&w);
    r = spool_reader_open(s_dir, NULL, 0);
    strcpy(epoch, spool_reader_epoch(r));
    assert_int_equal(strlen(epoch), SPOOL_EPOCH_LEN);
    assert_int_equal(strspn(epoch, "0123456789abcdef"), SPOOL_EPOCH_LEN);
    spool_reader_close(&r);
    for (int round = 0; round < 3; round++) {
        w = spool_writer_open(s_dir, NULL, 0);
        assert_non_null(w);
        assert_int_equal(s_append(w, "b", 1), 4 + (uint64_t)round);
        spool_writer_close(&w);
    }
    r = spool_reader_open(s_dir, NULL, 0);
    assert_string_equal(spool_reader_epoch(r), epoch);
    spool_reader_close(&r);
    assert_int_equal(s_read_all(s_dir, 0, NULL), 6);
}

static void test_rotation_and_trim(void **state)
{
    spool_writer_t *w = spool_writer_open(s_dir, NULL, 0);
    spool_reader_t *r;
    uint64_t recs, bytes, last, seg2 = 0;
    char path[512], name[64];
    struct stat st;
    (void)state;

    /* ~700 KB records: about 23 per 16 MiB segment; 60 make three segments */
    for (int i = 0; i < 60; i++)
        s_append(w, "big", 700 * 1024);
    spool_writer_sync(w);
    for (uint64_t s = 2; s <= 60 && seg2 == 0; s++) {
        snprintf(name, sizeof name, "seg-%020llu.log", (unsigned long long)s);
        s_path(path, sizeof path, name);
        if (stat(path, &st) == 0)
            seg2 = s;
    }
    assert_true(seg2 > 2);
    s_path(path, sizeof path, SEG1);
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= SPOOL_SEGMENT_MAX);

    r = spool_reader_open(s_dir, NULL, 0);
    spool_reader_depth(r, &recs, &bytes);
    assert_int_equal(recs, 60);
    /* an ack short of the segment's last record keeps it */
    assert_int_equal(spool_reader_trim(r, seg2 - 2), 0);
    s_path(path, sizeof path, SEG1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(s_read_all(s_dir, 0, &last), 60);
    /* the segment's last record acknowledged: it goes */
    assert_int_equal(spool_reader_trim(r, seg2 - 1), 0);
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_equal(s_read_all(s_dir, seg2 - 1, &last), 60 - (seg2 - 1));
    assert_int_equal(last, 60);
    spool_reader_depth(r, &recs, &bytes);
    assert_int_equal(recs, 60 - (seg2 - 1));
    /* everything acknowledged: only the newest segment stays, and the sequence goes on */
    assert_int_equal(spool_reader_trim(r, 60), 0);
    spool_writer_close(&w);
    w = spool_writer_open(s_dir, NULL, 0);
    assert_int_equal(s_append(w, "after", 1), 61);
    spool_writer_close(&w);
    assert_int_equal(s_read_all(s_dir, 60, &last), 1);
    assert_int_equal(last, 61);
    spool_reader_close(&r);
}

static void s_copy_prefix(const uint8_t *data, size_t len)
{
    char path[512];
    int fd;

    s_path(path, sizeof path, SEG1);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static uint8_t *s_read_seg(size_t *len)
{
    char path[512];
    struct stat st;
    uint8_t *buf;
    int fd;

    s_path(path, sizeof path, SEG1);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    fstat(fd, &st);
    *len = (size_t)st.st_size;
    buf = malloc(*len);
    assert_int_equal(read(fd, buf, *len), (ssize_t)*len);
    close(fd);
    return buf;
}

/* The last record cut at every byte offset: the reader stops before it, the writer cuts it
 * and continues with its sequence number. */
static void test_torn_tail_every_offset(void **state)
{
    spool_writer_t *w = spool_writer_open(s_dir, NULL, 0);
    uint8_t *full;
    size_t len, start4;
    uint64_t last;
    (void)state;

    for (int i = 0; i < 4; i++)
        s_append(w, "t", 40);
    spool_writer_close(&w);
    full = s_read_seg(&len);
    start4 = len / 4 * 3; /* equal-size records */
    for (size_t cut = start4; cut < len; cut++) {
        s_copy_prefix(full, cut);
        assert_int_equal(s_read_all(s_dir, 0, &last), 3);
        assert_int_equal(last, 3);
        w = spool_writer_open(s_dir, NULL, 0);
        assert_non_null(w);
        assert_int_equal(s_append(w, "again", 40), 4);
        spool_writer_close(&w);
        assert_int_equal(s_read_all(s_dir, 0, &last), 4);
    }
    free(full);
}

static void test_corrupt_crc(void **state)
{
    spool_writer_t *w = spool_writer_open(s_dir, NULL, 0);
    uint8_t *full;
    size_t len, rec;
    uint64_t last;
    (void)state;

    for (int i = 0; i < 5; i++)
        s_append(w, "c", 40);
    spool_writer_close(&w);
    full = s_read_seg(&len);
    rec = len / 5;
    full[2 * rec + rec / 2] ^= 0x40; /* a payload byte of the third record */
    s_copy_prefix(full, len);
    assert_int_equal(s_read_all(s_dir, 0, &last), 2);
    w = spool_writer_open(s_dir, NULL, 0);
    assert_int_equal(s_append(w, "new3", 40), 3);
    spool_writer_close(&w);
    assert_int_equal(s_read_all(s_dir, 0, &last), 3);
    assert_int_equal(last, 3);
    free(full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seq_and_epoch_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_crc, setup, teardown),
    };
    log_init("test_spool", LOG_LEVEL_ERR); /* the cut tails are logged as warnings */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
