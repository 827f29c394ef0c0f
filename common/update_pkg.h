/* update_pkg: signed component packages (R3.7), shared by the parent (import: digest, sign,
 * check the archive) and the child (verify, extract). A package is a tar archive (plain or
 * gzip) of regular files at its top level, e.g. ClamAV databases. The signature is Ed25519
 * over a domain-separated message binding component, version and digest, so a package cannot
 * be replayed as another version or another component. */
#ifndef PORTCULLIS_UPDATE_PKG_H
#define PORTCULLIS_UPDATE_PKG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UPDATE_PKG_MAX (512ull * 1024 * 1024)      /* bytes of one package (bytea ≤ 1 GiB) */
#define UPDATE_EXTRACT_MAX (1024ull * 1024 * 1024) /* bytes of all files extracted from one */
#define UPDATE_FILES_MAX 256                       /* files in one package */
#define UPDATE_NAME_MAX 128                        /* bytes of one file name in a package */
#define UPDATE_VERSION_MAX 64                      /* bytes of a version string */
#define UPDATE_DIGEST_LEN 32                       /* SHA-256 */
#define UPDATE_HEX_LEN (2 * UPDATE_DIGEST_LEN)
#define UPDATE_SIG_LEN 64                          /* Ed25519 detached signature */
#define UPDATE_PK_LEN 32                           /* Ed25519 public key */
#define UPDATE_SK_LEN 64                           /* libsodium's Ed25519 secret key (seed+pk) */
#define UPDATE_SIG_DOMAIN "portcullis-update-v1"   /* first part of every signed message */

/* "clamav" or "light". */
bool update_pkg_component_valid(const char *c);
/* 1..UPDATE_VERSION_MAX of [A-Za-z0-9._-], starting with a letter or digit: safe in a path
 * and a URL. */
bool update_pkg_version_valid(const char *v);

/* Signs / verifies (component, version, digest). 0 ok / valid, -1 not. */
int update_pkg_sign(const char *component, const char *version,
                    const uint8_t digest[UPDATE_DIGEST_LEN], const uint8_t sk[UPDATE_SK_LEN],
                    uint8_t sig[UPDATE_SIG_LEN]);
int update_pkg_verify(const char *component, const char *version,
                      const uint8_t digest[UPDATE_DIGEST_LEN], const uint8_t *sig, size_t siglen,
                      const uint8_t *pk, size_t pklen);

/* Checks a downloaded package file against what the configuration announced: its size, its
 * SHA-256 (hex) and the signature. 0 ok, -1 with why (e.g. "sha256 mismatch"). */
int update_pkg_check_file(const char *path, const char *component, const char *version,
                          uint64_t size, const char *sha256_hex, const uint8_t *sig,
                          size_t siglen, const uint8_t *pk, size_t pklen, char *why,
                          size_t whylen);

/* A member name a package may carry: one path component of [A-Za-z0-9._-] (no '/', not "."
 * or "..", no leading '.'), at most UPDATE_NAME_MAX bytes. A leading "./" is allowed. */
bool update_pkg_member_name_ok(const char *name);

/* Reads the whole archive in memory (parent's import check) or on disk (child), refusing
 * anything but regular files with good names, and more than UPDATE_FILES_MAX files or
 * UPDATE_EXTRACT_MAX bytes. dest_dir NULL: check only; else each file is written into
 * dest_dir (which must exist and be empty) with mode 0644 and fsynced, then the directory.
 * nfiles/total get what was found. 0 ok, -1 with why. */
int update_pkg_extract_mem(const void *data, size_t len, const char *dest_dir, size_t *nfiles,
                           uint64_t *total, char *why, size_t whylen);
int update_pkg_extract_file(const char *path, const char *dest_dir, size_t *nfiles,
                            uint64_t *total, char *why, size_t whylen);

#endif
