/* update_pkg: see update_pkg.h. libsodium for SHA-256 and Ed25519, libarchive for the tar
 * reader. Extraction writes through a directory fd with O_EXCL | O_NOFOLLOW, so even a name
 * that slipped through the checks could not leave the directory or overwrite a file. */
#include "update_pkg.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define UPDATE_IO_CHUNK (64 * 1024) /* bytes read or written at a time */
#define UPDATE_SIGMSG_MAX (sizeof UPDATE_SIG_DOMAIN + 16 + UPDATE_VERSION_MAX + 2 + UPDATE_DIGEST_LEN)

bool update_pkg_component_valid(const char *c)
{
    return c != NULL && (strcmp(c, "clamav") == 0 || strcmp(c, "light") == 0);
}

static bool s_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

bool update_pkg_version_valid(const char *v)
{
    size_t n;

    if (v == NULL || (n = strlen(v)) == 0 || n > UPDATE_VERSION_MAX || !s_name_char(v[0]) ||
        v[0] == '.' || v[0] == '-' || v[0] == '_')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_name_char(v[i]))
            return false;
    return true;
}

/* "portcullis-update-v1\0" component "\0" version "\0" digest */
static size_t s_sigmsg(const char *component, const char *version,
                       const uint8_t digest[UPDATE_DIGEST_LEN], uint8_t out[UPDATE_SIGMSG_MAX])
{
    size_t n = 0, cl = strlen(component), vl = strlen(version);

    memcpy(out, UPDATE_SIG_DOMAIN, sizeof UPDATE_SIG_DOMAIN); /* with its NUL */
    n = sizeof UPDATE_SIG_DOMAIN;
    memcpy(out + n, component, cl + 1);
    n += cl + 1;
    memcpy(out + n, version, vl + 1);
    n += vl + 1;
    memcpy(out + n, digest, UPDATE_DIGEST_LEN);
    return n + UPDATE_DIGEST_LEN;
}

int update_pkg_sign(const char *component, const char *version,
                    const uint8_t digest[UPDATE_DIGEST_LEN], const uint8_t sk[UPDATE_SK_LEN],
                    uint8_t sig[UPDATE_SIG_LEN])
{
    uint8_t msg[UPDATE_SIGMSG_MAX];
    size_t n;

    if (!update_pkg_component_valid(component) || !update_pkg_version_valid(version))
        return -1;
    n = s_sigmsg(component, version, digest, msg);
    return crypto_sign_detached(sig, NULL, msg, n, sk) == 0 ? 0 : -1;
}

int update_pkg_verify(const char *component, const char *version,
                      const uint8_t digest[UPDATE_DIGEST_LEN], const uint8_t *sig, size_t siglen,
                      const uint8_t *pk, size_t pklen)
{
    uint8_t msg[UPDATE_SIGMSG_MAX];
    size_t n;

    if (siglen != UPDATE_SIG_LEN || pklen != UPDATE_PK_LEN ||
        !update_pkg_component_valid(component) || !update_pkg_version_valid(version))
        return -1;
    n = s_sigmsg(component, version, digest, msg);
    return crypto_sign_verify_detached(sig, msg, n, pk) == 0 ? 0 : -1;
}

int update_pkg_check_file(const char *path, const char *component, const char *version,
                          uint64_t size, const char *sha256_hex, const uint8_t *sig,
                          size_t siglen, const uint8_t *pk, size_t pklen, char *why,
                          size_t whylen)
{
    crypto_hash_sha256_state st;
    uint8_t want[UPDATE_DIGEST_LEN], got[UPDATE_DIGEST_LEN], buf[UPDATE_IO_CHUNK];
    size_t binlen = 0;
    uint64_t total = 0;
    int fd;

    if (sha256_hex == NULL || strlen(sha256_hex) != UPDATE_HEX_LEN ||
        sodium_hex2bin(want, sizeof want, sha256_hex, UPDATE_HEX_LEN, NULL, &binlen, NULL) != 0 ||
        binlen != UPDATE_DIGEST_LEN) {
        snprintf(why, whylen, "announced sha256 is not 64 hex digits");
        return -1;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -1;
    }
    crypto_hash_sha256_init(&st);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "%s: read: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        total += (uint64_t)r;
        if (total > size)
            break; /* no need to hash what is already too long */
        crypto_hash_sha256_update(&st, buf, (size_t)r);
    }
    close(fd);
    if (total != size) {
        snprintf(why, whylen, "size mismatch: %s%llu bytes, announced %llu", total > size ? "over " : "",
                 (unsigned long long)total, (unsigned long long)size);
        return -1;
    }
    crypto_hash_sha256_final(&st, got);
    if (sodium_memcmp(got, want, sizeof got) != 0) {
        snprintf(why, whylen, "sha256 mismatch");
        return -1;
    }
    if (update_pkg_verify(component, version, got, sig, siglen, pk, pklen) != 0) {
        snprintf(why, whylen, "bad signature (not signed by the parent's update key for %s %s)",
                 component, version);
        return -1;
    }
    return 0;
}

bool update_pkg_member_name_ok(const char *name)
{
    size_t n;

    if (name == NULL)
        return false;
    if (strncmp(name, "./", 2) == 0)
        name += 2;
    n = strlen(name);
    if (n == 0 || n > UPDATE_NAME_MAX || name[0] == '.')
        return false; /* also ".", ".." and hidden files */
    for (size_t i = 0; i < n; i++)
        if (!s_name_char(name[i]))
            return false; /* '/' included: no subdirectories, no absolute paths */
    return true;
}

static bool s_is_root_dir(struct archive_entry *e)
{
    const char *p = archive_entry_pathname(e);

    return archive_entry_filetype(e) == AE_IFDIR && p != NULL &&
           (strcmp(p, ".") == 0 || strcmp(p, "./") == 0);
}

static int s_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads every entry of an opened archive; see update_pkg_extract_mem. */
static int s_walk(struct archive *a, const char *dest_dir, size_t *nfiles, uint64_t *total,
                  char *why, size_t whylen)
{
    struct archive_entry *e;
    uint8_t buf[UPDATE_IO_CHUNK];
    int dfd = -1, rc = -1, r;

    *nfiles = 0;
    *total = 0;
    if (dest_dir != NULL && (dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(why, whylen, "%s: %s", dest_dir, strerror(errno));
        return -1;
    }
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        int fd = -1;

        if (s_is_root_dir(e))
            continue; /* "tar -C dir ." stores the directory itself: nothing to make */
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != NULL ||
            archive_entry_symlink(e) != NULL) {
            snprintf(why, whylen, "archive member \"%.*s\" is not a regular file",
                     UPDATE_NAME_MAX, name != NULL ? name : "?");
            goto out;
        }
        if (!update_pkg_member_name_ok(name)) {
            snprintf(why, whylen, "archive member name \"%.*s\" refused (only plain file "
                     "names at the top level)", UPDATE_NAME_MAX, name != NULL ? name : "?");
            goto out;
        }
        if (++*nfiles > UPDATE_FILES_MAX) {
            snprintf(why, whylen, "archive has more than %d files", UPDATE_FILES_MAX);
            goto out;
        }
        if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
            (uint64_t)archive_entry_size(e) > UPDATE_EXTRACT_MAX - *total) {
            snprintf(why, whylen, "archive contents exceed %llu bytes",
                     (unsigned long long)UPDATE_EXTRACT_MAX);
            goto out;
        }
        if (strncmp(name, "./", 2) == 0)
            name += 2;
        if (dfd >= 0 &&
            (fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0) {
            snprintf(why, whylen, "%s/%s: %s", dest_dir, name,
                     errno == EEXIST ? "listed twice in the archive" : strerror(errno));
            goto out;
        }
        for (;;) {
            la_ssize_t n = archive_read_data(a, buf, sizeof buf);
            if (n < 0) {
                snprintf(why, whylen, "archive member \"%s\": %s", name, archive_error_string(a));
                break;
            }
            if (n == 0)
                break;
            *total += (uint64_t)n;
            if (*total > UPDATE_EXTRACT_MAX) {
                snprintf(why, whylen, "archive contents exceed %llu bytes",
                         (unsigned long long)UPDATE_EXTRACT_MAX);
                break;
            }
            if (fd >= 0 && s_write_all(fd, buf, (size_t)n) != 0) {
                snprintf(why, whylen, "%s/%s: write: %s", dest_dir, name, strerror(errno));
                break;
            }
        }
        if (fd >= 0) {
            bool bad = why[0] != '\0';
            if (!bad && fsync(fd) != 0) {
                snprintf(why, whylen, "%s/%s: fsync: %s", dest_dir, name, strerror(errno));
                bad = true;
            }
            close(fd);
            if (bad)
                goto out;
        } else if (why[0] != '\0') {
            goto out;
        }
    }
    if (r != ARCHIVE_EOF) {
        snprintf(why, whylen, "not a readable tar archive: %s",
                 archive_error_string(a) != NULL ? archive_error_string(a) : "unknown error");
        goto out;
    }
    if (*nfiles == 0) {
        snprintf(why, whylen, "archive holds no files");
        goto out;
    }
    if (dfd >= 0 && fsync(dfd) != 0) {
        snprintf(why, whylen, "%s: fsync: %s", dest_dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (dfd >= 0)
        close(dfd);
    return rc;
}

static struct archive *s_reader(void)
{
    struct archive *a = archive_read_new();

    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    return a;
}

/* Walks an archive whose opening returned open_rc, then frees it. */
static int s_extract_opened(struct archive *a, int open_rc, const char *dest_dir, size_t *nfiles,
                            uint64_t *total, char *why, size_t whylen)
{
    int rc = -1;

    why[0] = '\0';
    if (open_rc != ARCHIVE_OK)
        snprintf(why, whylen, "not a readable archive: %s", archive_error_string(a));
    else
        rc = s_walk(a, dest_dir, nfiles, total, why, whylen);
    archive_read_free(a);
    return rc;
}

int update_pkg_extract_mem(const void *data, size_t len, const char *dest_dir, size_t *nfiles,
                           uint64_t *total, char *why, size_t whylen)
{
    struct archive *a = s_reader();

    return s_extract_opened(a, archive_read_open_memory(a, data, len), dest_dir, nfiles, total,
                            why, whylen);
}

int update_pkg_extract_file(const char *path, const char *dest_dir, size_t *nfiles,
                            uint64_t *total, char *why, size_t whylen)
{
    struct archive *a = s_reader();

    return s_extract_opened(a, archive_read_open_filename(a, path, UPDATE_IO_CHUNK), dest_dir,
                            nfiles, total, why, whylen);
}
