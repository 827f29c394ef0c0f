/* sps_request: see sps_request.h. The size limit is checked before the JSON parser sees a byte;
 * the count before any digest is decoded. */
#include "sps/sps_request.h"

#include <jansson.h>
#include <stdio.h>

static int s_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sps_request_hex_decode(const char *hex, size_t len, uint8_t out[SPS_DIGEST_LEN])
{
    if (len != SPS_HEX_LEN)
        return -1;
    for (size_t i = 0; i < SPS_DIGEST_LEN; i++) {
        int hi = s_nibble(hex[2 * i]), lo = s_nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void sps_request_hex_encode(const uint8_t in[SPS_DIGEST_LEN], char out[SPS_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < SPS_DIGEST_LEN; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[SPS_HEX_LEN] = '\0';
}

int sps_request_parse(const char *body, size_t len, uint8_t (*digests)[SPS_DIGEST_LEN],
                      size_t *n, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root, *list, *v;
    size_t i, count;
    int rc = -1;

    *n = 0;
    if (len > SPS_BODY_MAX) {
        snprintf(err, errlen, "request body over %d bytes", SPS_BODY_MAX);
        return -1;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "body is not valid JSON: %s (line %d column %d)", jerr.text,
                 jerr.line, jerr.column);
        return -1;
    }
    list = json_object_get(root, "sha256");
    if (!json_is_object(root) || !json_is_array(list)) {
        snprintf(err, errlen, "body must be an object {\"sha256\": [\"<64 hex>\", …]}");
        goto out;
    }
    if (json_object_size(root) != 1) {
        snprintf(err, errlen, "unknown member in body: only \"sha256\" is allowed");
        goto out;
    }
    count = json_array_size(list);
    if (count == 0 || count > SPS_BATCH_MAX) {
        snprintf(err, errlen, "\"sha256\" must hold 1 to %d digests, not %zu", SPS_BATCH_MAX,
                 count);
        goto out;
    }
    json_array_foreach(list, i, v) {
        const char *s = json_string_value(v);
        if (s == NULL || sps_request_hex_decode(s, json_string_length(v), digests[i]) != 0) {
            snprintf(err, errlen, "sha256[%zu] is not a SHA-256 digest (64 hex characters)", i);
            goto out;
        }
    }
    *n = count;
    rc = 0;
out:
    json_decref(root);
    return rc;
}
