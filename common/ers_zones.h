/* ers_zones: the ers.zones setting (email reputation, R3.1): which DNS block-list zones to
 * ask and what their answers mean. Parsed here so that the parent refuses a malformed value
 * (settings validation) with the same rules the scan service applies it by (child/scan/ers.c).
 *
 * Format: ZONE=CODE:LISTING[,CODE:LISTING…][;ZONE=…]
 *   ZONE     a DNS name (letters, digits, '-', dot-separated labels of 1..63, ≤ 120 bytes)
 *   CODE     the IPv4 address the zone answers with (e.g. 127.0.0.2), or "any"
 *   LISTING  the name rules see in the ers_listed condition (letters, digits, '_', '-', ≤ 63)
 * e.g. "bl.example=127.0.0.2:spam,127.0.0.4:exploit;dnsbl.example=any:listed". Spaces around
 * the separators are ignored; the empty value means no zones. */
#ifndef PORTCULLIS_ERS_ZONES_H
#define PORTCULLIS_ERS_ZONES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ERS_ZONES_MAX 16        /* zones in ers.zones */
#define ERS_CODES_MAX 32        /* CODE:LISTING pairs per zone */
#define ERS_ZONE_LEN_MAX 120    /* bytes of a zone name: with 128 of reversed IPv6, ≤ 253 */
#define ERS_LISTING_LEN_MAX 63  /* bytes of a listing name (policy: POLICY_LISTING_MAX) */
#define ERS_ZONES_FORMAT                                                                       \
    "ZONE=CODE:LISTING[,CODE:LISTING...][;ZONE=...] with CODE an IPv4 answer such as "          \
    "127.0.0.2 or 'any' and LISTING letters, digits, '_' or '-', e.g. "                        \
    "bl.example=127.0.0.2:spam,127.0.0.4:exploit;other.example=any:listed"

struct ers_code {
    bool any;
    uint32_t addr;                          /* host order; when !any */
    char listing[ERS_LISTING_LEN_MAX + 1];
};

struct ers_zone {
    char name[ERS_ZONE_LEN_MAX + 1];        /* lowercase, no trailing dot */
    struct ers_code codes[ERS_CODES_MAX];
    size_t ncodes;
};

struct ers_zones {
    struct ers_zone zones[ERS_ZONES_MAX];
    size_t nzones;
};

/* 0 ok (out filled, may be NULL to only check); -1 with err saying what is wrong and where. */
int ers_zones_parse(const char *value, struct ers_zones *out, char *err, size_t errlen);
/* The listing an answer address (host order) maps to in zone z; NULL if none does. */
const char *ers_zones_listing(const struct ers_zone *z, uint32_t addr);

#endif
