/* lookup_auth: the per-child credential of smart-scan and URL-rating look-ups (R8.7).
 *
 * Nothing is handed out or stored: the credential is derived on both ends from the keys each
 * already holds. The parent keeps one X25519 look-up key pair (its public half travels in
 * every ConfigSnapshot); each child has its CURVE key pair, whose public half the parent
 * enrolled. The child computes X25519(child secret, look-up public), the look-up service
 * X25519(look-up secret, child public) — the same shared value — and both hash it with the
 * child's name into a 32-byte token. A removed child's key is no longer enrolled, so its
 * credential stops working with no list to maintain. Sent as
 * `Authorization: Bearer NAME:HEX` over TLS pinned to the parent's key. */
#ifndef PORTCULLIS_LOOKUP_AUTH_H
#define PORTCULLIS_LOOKUP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOOKUP_KEY_LEN 32
#define LOOKUP_TOKEN_HEX_LEN 64
#define LOOKUP_NAME_MAX 63 /* a child name: [A-Za-z0-9][A-Za-z0-9._-]{0,62} */
/* "Bearer " NAME ":" HEX: what an Authorization header may hold, at most */
#define LOOKUP_BEARER_MAX (7 + LOOKUP_NAME_MAX + 1 + LOOKUP_TOKEN_HEX_LEN)

/* The credential of child `name` from one side's secret key and the other side's public key
 * (raw 32 bytes each), as lowercase hex. 0 ok, -1 if the keys give no shared value (a
 * low-order public key) or the name is not a child name. */
int lookup_token(const uint8_t my_secret[LOOKUP_KEY_LEN], const uint8_t peer_public[LOOKUP_KEY_LEN],
                 const char *name, char out[LOOKUP_TOKEN_HEX_LEN + 1]);

/* A new look-up key pair. */
void lookup_keypair(uint8_t pub[LOOKUP_KEY_LEN], uint8_t secret[LOOKUP_KEY_LEN]);
/* The public half of a secret key. 0 ok, -1 on failure. */
int lookup_public_of(const uint8_t secret[LOOKUP_KEY_LEN], uint8_t pub[LOOKUP_KEY_LEN]);

/* Splits an Authorization header value "Bearer NAME:HEX" (scheme in any case). On success
 * name and token hold the parts (the token lower-cased). 0 ok, -1 malformed. A pure parser of
 * peer bytes (tests/fuzz). */
int lookup_bearer_parse(const char *header, char name[LOOKUP_NAME_MAX + 1],
                        char token[LOOKUP_TOKEN_HEX_LEN + 1]);

/* Constant-time comparison of two tokens of LOOKUP_TOKEN_HEX_LEN characters. */
bool lookup_token_equal(const char *a, const char *b);

/* True if s is a well-formed child name. */
bool lookup_name_valid(const char *s);

#endif
