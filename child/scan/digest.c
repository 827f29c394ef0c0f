/* digest: see digest.h. */
#include "scan/digest.h"

#include <openssl/evp.h>

#include "log.h"

void digest_sha256(const void *data, size_t len, uint8_t out[DIGEST_SHA256_LEN])
{
    unsigned int n = 0;

    /* Cannot fail for SHA-256 short of memory exhaustion, which is fatal everywhere else too. */
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != DIGEST_SHA256_LEN)
        fatal("SHA-256 failed");
}
