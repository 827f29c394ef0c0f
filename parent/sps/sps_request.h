/* sps_request: the pure half of the smart-protection look-up protocol: a POST /v1/lookup body
 * (JSON {"sha256": ["<64 hex>", …]}) checked and turned into binary digests, and hex helpers.
 * No I/O here, so the unit tests and fuzzers can drive it directly. */
#ifndef PORTCULLIS_SPS_REQUEST_H
#define PORTCULLIS_SPS_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define SPS_DIGEST_LEN 32           /* bytes in a SHA-256 digest */
#define SPS_HEX_LEN 64              /* hex characters in one digest */
#define SPS_BATCH_MAX 1000          /* digests per request: one message's parts, with room */
#define SPS_BODY_MAX (128 * 1024)   /* bytes of request body: 1000 digests take ~67 KiB */

/* Parses body[0..len) into digests[0..*n) (caller gives SPS_BATCH_MAX slots). Upper-case hex
 * is accepted; duplicates are kept (the answer follows the request's order). 0 ok; -1 with a
 * message for the client in err. */
int sps_request_parse(const char *body, size_t len, uint8_t (*digests)[SPS_DIGEST_LEN],
                      size_t *n, char *err, size_t errlen);

/* 64 hex characters (either case) to 32 bytes. 0 ok, -1 not a digest. */
int sps_request_hex_decode(const char *hex, size_t len, uint8_t out[SPS_DIGEST_LEN]);
/* 32 bytes to 64 lower-case hex characters and a NUL. */
void sps_request_hex_encode(const uint8_t in[SPS_DIGEST_LEN], char out[SPS_HEX_LEN + 1]);

#endif
