/* digest: SHA-256 for the scan path (smart-scan look-ups hash every decoded part and the whole
 * message). OpenSSL's implementation uses the CPU's SHA extensions where it has them — several
 * times faster than a portable one, and hashing is most of what smart scan costs a child. */
#ifndef PORTCULLIS_DIGEST_H
#define PORTCULLIS_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_LEN 32

void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN]);

#endif
