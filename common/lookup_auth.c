/* lookup_auth: see lookup_auth.h. */
#include "lookup_auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Domain separation: this token can never be confused with another use of the same keys. */
static const char s_context[] = "portcullis-lookup-v1";

bool lookup_name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > LOOKUP_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

int lookup_token(const uint8_t my_secret[LOOKUP_KEY_LEN], const uint8_t peer_public[LOOKUP_KEY_LEN],
                 const char *name, char out[LOOKUP_TOKEN_HEX_LEN + 1])
{
    uint8_t shared[crypto_scalarmult_BYTES], token[32];
    crypto_generichash_state st;

    if (sodium_init() < 0 || !lookup_name_valid(name))
        return -1;
    /* An all-zero result (a low-order point) is refused by libsodium: -1. */
    if (crypto_scalarmult(shared, my_secret, peer_public) != 0)
        return -1;
    crypto_generichash_init(&st, shared, sizeof shared, sizeof token);
    crypto_generichash_update(&st, (const unsigned char *)s_context, sizeof s_context);
    crypto_generichash_update(&st, (const unsigned char *)name, strlen(name));
    crypto_generichash_final(&st, token, sizeof token);
    sodium_bin2hex(out, LOOKUP_TOKEN_HEX_LEN + 1, token, sizeof token);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(token, sizeof token);
    return 0;
}

void lookup_keypair(uint8_t pub[LOOKUP_KEY_LEN], uint8_t secret[LOOKUP_KEY_LEN])
{
    if (sodium_init() < 0)
        abort();
    crypto_box_keypair(pub, secret);
}

int lookup_public_of(const uint8_t secret[LOOKUP_KEY_LEN], uint8_t pub[LOOKUP_KEY_LEN])
{
    if (sodium_init() < 0)
        return -1;
    return crypto_scalarmult_base(pub, secret) == 0 ? 0 : -1;
}

int lookup_bearer_parse(const char *header, char name[LOOKUP_NAME_MAX + 1],
                        char token[LOOKUP_TOKEN_HEX_LEN + 1])
{
    const char *p, *colon;
    size_t nlen;

    if (header == NULL || strlen(header) > LOOKUP_BEARER_MAX || strncasecmp(header, "Bearer ", 7) != 0)
        return -1;
    p = header + 7;
    if ((colon = strchr(p, ':')) == NULL)
        return -1;
    nlen = (size_t)(colon - p);
    if (nlen == 0 || nlen > LOOKUP_NAME_MAX || strlen(colon + 1) != LOOKUP_TOKEN_HEX_LEN)
        return -1;
    memcpy(name, p, nlen);
    name[nlen] = '\0';
    if (!lookup_name_valid(name))
        return -1;
    for (size_t i = 0; i < LOOKUP_TOKEN_HEX_LEN; i++) {
        char c = colon[1 + i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        token[i] = c;
    }
    token[LOOKUP_TOKEN_HEX_LEN] = '\0';
    return 0;
}

bool lookup_token_equal(const char *a, const char *b)
{
    return sodium_memcmp(a, b, LOOKUP_TOKEN_HEX_LEN) == 0;
}
