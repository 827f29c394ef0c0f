/* http_lookup: the look-up service the children's scan services ask (R2.1, R3.2, R8.7), on an
 * HTTPS listener of the parent (its own, or a separate sps_listen one, or alone in a
 * `--sps-only` replica). Every request carries the child's credential (common/lookup_auth.h);
 * without one it is refused with 401.
 *   POST /v1/lookup  {"sha256": ["<64 hex>", …]} → {"verdicts": [{sha256, verdict, name}]}
 *                    from table sps_hashes;
 *   GET  /v1/health  → {"status": "ok", "hashes": N} or 503 while the database is away;
 *   POST /v1/rate    {"urls": […]} → {"ratings": [{url, level, category}]}, asked of the
 *                    third-party rating service wrs.service_url on the child's behalf (its
 *                    answer checked and re-written), so children never talk to it themselves.
 * Runs in the listener's thread on its event base and database connection. */
#ifndef PORTCULLIS_HTTP_LOOKUP_H
#define PORTCULLIS_HTTP_LOOKUP_H

#include "http/https.h"

#define LOOKUP_CRED_SLOTS 4096     /* credentials remembered (a fleet's children, hashed) */
#define LOOKUP_CRED_TTL_MS 30000   /* how long a checked credential is believed: a removed
                                    * child is refused at most this long after */
#define LOOKUP_CRED_MISS_TTL_MS 5000 /* … and an unknown name answered from memory */
#define LOOKUP_RATE_URLS_MAX 100   /* URLs in one rating request (WRS_URLS_MAX) */
#define LOOKUP_RATE_URL_MAX 2048   /* bytes of one URL */
#define LOOKUP_RATE_BODY_MAX (256 * 1024) /* bytes of a rating request */
#define LOOKUP_RATE_ANSWER_MAX (1u << 20) /* bytes of the rating service's answer read */
#define LOOKUP_RATE_ACTIVE_MAX 256 /* rating requests waiting on the service at once */
#define LOOKUP_CATEGORY_MAX 63     /* bytes of a rating's category */

/* Mounts the three routes on h (before https_start). 0 ok, -1 no room. */
int http_lookup_mount(https_t *h);

/* Tests and fuzzing: checks the rating service's answer and writes what the children get
 * ({"ratings": [...]}, at most LOOKUP_RATE_URLS_MAX entries, levels 0..100). A malloc'd JSON
 * text, or NULL with err filled. */
char *http_lookup_rate_answer(const char *data, size_t len, char *err, size_t errlen);

#endif
