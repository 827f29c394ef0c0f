/* keys: CURVE keypairs on disk as Z85 text: NAME.key (secret, 0600) and NAME.pub (0644). */
#ifndef PORTCULLIS_KEYS_H
#define PORTCULLIS_KEYS_H

#include <stddef.h>

#define KEYS_Z85_LEN 40 /* characters of a Z85-encoded 32-byte key */

struct curve_keypair {
    char public_z85[KEYS_Z85_LEN + 1];
    char secret_z85[KEYS_Z85_LEN + 1];
};

/* Loads dir/NAME.key and dir/NAME.pub, creating both on first use. A secret key file that is
 * readable by group or others is refused. 0 ok, -1 with err filled. */
int keys_load_or_create(const char *dir, const char *name, struct curve_keypair *kp, char *err,
                        size_t errlen);
/* Reads just dir/NAME.pub. */
int keys_load_public(const char *dir, const char *name, char out[KEYS_Z85_LEN + 1], char *err,
                     size_t errlen);
/* True if s is a well-formed Z85 CURVE key. */
int keys_z85_valid(const char *s);

/* A key's fingerprint, what an administrator compares before approving an enrolment (R8.3):
 * the first 16 bytes of SHA-256 over the raw 32-byte key, hex in groups of four,
 * "3f2a:91c0:…" (39 characters). 0 ok, -1 if z85 is not a key. */
#define KEYS_FP_LEN 39
int keys_fingerprint(const char *z85, char out[KEYS_FP_LEN + 1]);
/* Compares a fingerprint as typed (either case, colons optional) with the canonical form. */
int keys_fingerprint_equal(const char *typed, const char *canonical);

#endif
