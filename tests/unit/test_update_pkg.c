/* test_update_pkg: signed component packages (common/update_pkg.c, R3.7): the signature binds
 * component, version and digest; a downloaded file is checked for size, SHA-256 and signature;
 * archive members other than plain top-level regular files are refused, and the file count
 * is bounded (at the limit and one past it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>
#include <sodium.h>

#include "update_pkg.h"

static uint8_t s_pk[UPDATE_PK_LEN], s_sk[UPDATE_SK_LEN];

static int s_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    crypto_sign_keypair(s_pk, s_sk);
    return 0;
}

static void test_sign_binds_everything(void **state)
{
    uint8_t d[UPDATE_DIGEST_LEN], sig[UPDATE_SIG_LEN], pk2[UPDATE_PK_LEN], sk2[UPDATE_SK_LEN];

    (void)state;
    memset(d, 0x5a, sizeof d);
    assert_int_equal(update_pkg_sign("clamav", "v1", d, s_sk, sig), 0);
    assert_int_equal(update_pkg_verify("clamav", "v1", d, sig, sizeof sig, s_pk, sizeof s_pk), 0);
    /* replayed as another version or component, or for other bytes */
    assert_int_equal(update_pkg_verify("clamav", "v2", d, sig, sizeof sig, s_pk, sizeof s_pk), -1);
    assert_int_equal(update_pkg_verify("light", "v1", d, sig, sizeof sig, s_pk, sizeof s_pk), -1);
    d[31] ^= 1;
    assert_int_equal(update_pkg_verify("clamav", "v1", d, sig, sizeof sig, s_pk, sizeof s_pk), -1);
    d[31] ^= 1;
    sig[0] ^= 1;
    assert_int_equal(update_pkg_verify("clamav", "v1", d, sig, sizeof sig, s_pk, sizeof s_pk), -1);
    sig[0] ^= 1;
    crypto_sign_keypair(pk2, sk2);
    assert_int_equal(update_pkg_verify("clamav", "v1", d, sig, sizeof sig, pk2, sizeof pk2), -1);
    /* wrong lengths, bad names */
    assert_int_equal(update_pkg_verify("clamav", "v1", d, sig, sizeof sig - 1, s_pk, sizeof s_pk), -1);
    assert_int_equal(update_pkg_verify("clamav", "v1", d, sig, sizeof sig, s_pk, 31), -1);
    assert_int_equal(update_pkg_sign("other", "v1", d, s_sk, sig), -1);
    assert_int_equal(update_pkg_sign("clamav", "../x", d, s_sk, sig), -1);
}

static void test_version_names(void **state)
{
    char longv[UPDATE_VERSION_MAX + 2];

    (void)state;
    assert_true(update_pkg_version_valid("2026112301"));
    assert_true(update_pkg_version_valid("v1.2-rc_3"));
    assert_false(update_pkg_version_valid(""));
    assert_false(update_pkg_version_valid(".hidden"));
    assert_false(update_pkg_version_valid("-x"));
    assert_false(update_pkg_version_valid("a/b"));
    assert_false(update_pkg_version_valid("a b"));
    memset(longv, 'a', sizeof longv - 1);
    longv[UPDATE_VERSION_MAX] = '\0';
    assert_true(update_pkg_version_valid(longv));           /* at the limit */
    longv[UPDATE_VERSION_MAX] = 'a';
    longv[UPDATE_VERSION_MAX + 1] = '\0';
    assert_false(update_pkg_version_valid(longv));          /* one past */
}

/* Writes data to a temporary file; path gets its name. */
static void s_file(char *path, const void *data, size_t len)
{
    int fd;

    strcpy(path, "/tmp/test_update_pkg.XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void test_check_file(void **state)
{
    char data[1000], path[64], hex[UPDATE_HEX_LEN + 1], why[256];
    uint8_t d[UPDATE_DIGEST_LEN], sig[UPDATE_SIG_LEN];

    (void)state;
    memset(data, 'q', sizeof data);
    crypto_hash_sha256(d, (const uint8_t *)data, sizeof data);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    assert_int_equal(update_pkg_sign("clamav", "7", d, s_sk, sig), 0);

    s_file(path, data, sizeof data);
    assert_int_equal(update_pkg_check_file(path, "clamav", "7", sizeof data, hex, sig, sizeof sig,
                                           s_pk, sizeof s_pk, why, sizeof why), 0);
    /* a different version under the same bytes: the signature says no */
    assert_int_equal(update_pkg_check_file(path, "clamav", "8", sizeof data, hex, sig, sizeof sig,
                                           s_pk, sizeof s_pk, why, sizeof why), -1);
    assert_non_null(strstr(why, "bad signature"));
    unlink(path);

    data[500] ^= 1; /* tampered, same length */
    s_file(path, data, sizeof data);
    assert_int_equal(update_pkg_check_file(path, "clamav", "7", sizeof data, hex, sig, sizeof sig,
                                           s_pk, sizeof s_pk, why, sizeof why), -1);
    assert_string_equal(why, "sha256 mismatch");
    unlink(path);
    data[500] ^= 1;

    s_file(path, data, sizeof data - 1); /* truncated */
    assert_int_equal(update_pkg_check_file(path, "clamav", "7", sizeof data, hex, sig, sizeof sig,
                                           s_pk, sizeof s_pk, why, sizeof why), -1);
    assert_non_null(strstr(why, "size mismatch"));
    unlink(path);

    s_file(path, data, sizeof data); /* announced smaller than what came */
    assert_int_equal(update_pkg_check_file(path, "clamav", "7", sizeof data - 1, hex, sig,
                                           sizeof sig, s_pk, sizeof s_pk, why, sizeof why), -1);
    assert_non_null(strstr(why, "size mismatch"));
    assert_int_equal(update_pkg_check_file(path, "clamav", "7", sizeof data, "zz", sig, sizeof sig,
                                           s_pk, sizeof s_pk, why, sizeof why), -1);
    unlink(path);
}

static void test_member_names(void **state)
{
    static const struct { const char *name; bool ok; } t[] = {
        { "daily.ndb", true }, { "./main.hdb", true }, { "a-b_c.1.cvd", true },
        { "../x.ndb", false }, { "/etc/passwd", false }, { "sub/x.ndb", false },
        { ".", false }, { "..", false }, { "./", false }, { ".hidden", false }, { "", false },
        { "a\\b", false }, { "a b", false }, { "./../x", false }, { "x/", false },
    };

    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (update_pkg_member_name_ok(t[i].name) != t[i].ok)
            fail_msg("name \"%s\": expected %s", t[i].name, t[i].ok ? "ok" : "refused");
    }
}

struct member {
    const char *name;
    unsigned type;      /* AE_IFREG, AE_IFLNK, AE_IFDIR, AE_IFCHR; 1 = hard link */
    const char *data;
};

/* A gzip'd pax tar in memory; *len gets its size (caller frees). */
static void *s_tar(const struct member *m, size_t n, size_t *len)
{
    size_t cap = 1024 * 1024 + 64 * 1024 * n;
    void *buf = malloc(cap);
    struct archive *a = archive_write_new();

    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_memory(a, buf, cap, len), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        size_t dl = m[i].data != NULL ? strlen(m[i].data) : 0;
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_perm(e, 0644);
        if (m[i].type == 1) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, "daily.ndb");
        } else {
            archive_entry_set_filetype(e, m[i].type);
        }
        if (m[i].type == AE_IFLNK)
            archive_entry_set_symlink(e, "/etc/passwd");
        if (m[i].type == AE_IFREG)
            archive_entry_set_size(e, (la_int64_t)dl);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (m[i].type == AE_IFREG && dl > 0)
            assert_int_equal(archive_write_data(a, m[i].data, dl), (la_ssize_t)dl);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return buf;
}

static int s_check(const struct member *m, size_t n, char *why, size_t whylen)
{
    size_t len, nfiles;
    uint64_t total;
    void *buf = s_tar(m, n, &len);
    int rc = update_pkg_extract_mem(buf, len, NULL, &nfiles, &total, why, whylen);

    free(buf);
    return rc;
}

static void test_archive_refusals(void **state)
{
    static const struct { struct member m; const char *why; } bad[] = {
        { { "../evil.ndb", AE_IFREG, "x" }, "refused" },
        { { "/abs.ndb", AE_IFREG, "x" }, "refused" },
        { { "sub/x.ndb", AE_IFREG, "x" }, "refused" },
        { { "link.ndb", AE_IFLNK, NULL }, "not a regular file" },
        { { "hard.ndb", 1, NULL }, "not a regular file" },
        { { "dev", AE_IFCHR, NULL }, "not a regular file" },
        { { "subdir", AE_IFDIR, NULL }, "not a regular file" },
    };
    char why[512];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct member m[2] = { { "daily.ndb", AE_IFREG, "Sig:0:*:41414141\n" }, bad[i].m };
        if (s_check(m, 2, why, sizeof why) != -1 || strstr(why, bad[i].why) == NULL)
            fail_msg("member \"%s\" not refused as \"%s\": %s", bad[i].m.name, bad[i].why, why);
    }
    {
        struct member ok[2] = { { "./", AE_IFDIR, NULL }, { "./daily.ndb", AE_IFREG, "x\n" } };
        assert_int_equal(s_check(ok, 2, why, sizeof why), 0);
    }
    assert_int_equal(s_check(NULL, 0, why, sizeof why), -1); /* no files */
    {
        size_t nfiles;
        uint64_t total;
        assert_int_equal(update_pkg_extract_mem("not an archive at all", 21, NULL, &nfiles, &total,
                                                why, sizeof why), -1);
    }
}

static void test_archive_file_count_limit(void **state)
{
    struct member *m = calloc(UPDATE_FILES_MAX + 1, sizeof *m);
    char (*names)[16] = calloc(UPDATE_FILES_MAX + 1, sizeof *names), why[512];

    (void)state;
    for (size_t i = 0; i <= UPDATE_FILES_MAX; i++) {
        snprintf(names[i], sizeof names[i], "f%zu.ndb", i);
        m[i] = (struct member){ names[i], AE_IFREG, "x\n" };
    }
    assert_int_equal(s_check(m, UPDATE_FILES_MAX, why, sizeof why), 0);      /* at the limit */
    assert_int_equal(s_check(m, UPDATE_FILES_MAX + 1, why, sizeof why), -1); /* one past */
    assert_non_null(strstr(why, "more than"));
    free(m);
    free(names);
}

static void test_extract_writes_files(void **state)
{
    struct member m[2] = { { "a.ndb", AE_IFREG, "one\n" }, { "b.hdb", AE_IFREG, "two\n" } };
    struct member dup[2] = { { "a.ndb", AE_IFREG, "one\n" }, { "./a.ndb", AE_IFREG, "x\n" } };
    char dir[] = "/tmp/test_update_pkg_dir.XXXXXX", path[128], why[512], got[16] = "";
    size_t len, nfiles;
    uint64_t total;
    void *buf;
    FILE *f;

    (void)state;
    assert_non_null(mkdtemp(dir));
    buf = s_tar(m, 2, &len);
    assert_int_equal(update_pkg_extract_mem(buf, len, dir, &nfiles, &total, why, sizeof why), 0);
    free(buf);
    assert_int_equal(nfiles, 2);
    assert_int_equal(total, 8);
    snprintf(path, sizeof path, "%s/b.hdb", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(got, sizeof got, f));
    fclose(f);
    assert_string_equal(got, "two\n");
    unlink(path);
    snprintf(path, sizeof path, "%s/a.ndb", dir);
    unlink(path);
    buf = s_tar(dup, 2, &len); /* the same name twice never overwrites */
    assert_int_equal(update_pkg_extract_mem(buf, len, dir, &nfiles, &total, why, sizeof why), -1);
    assert_non_null(strstr(why, "listed twice"));
    free(buf);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_binds_everything),
        cmocka_unit_test(test_version_names),
        cmocka_unit_test(test_check_file),
        cmocka_unit_test(test_member_names),
        cmocka_unit_test(test_archive_refusals),
        cmocka_unit_test(test_archive_file_count_limit),
        cmocka_unit_test(test_extract_writes_files),
    };
    return cmocka_run_group_tests(tests, s_setup, NULL);
}
