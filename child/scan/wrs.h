/* wrs: web reputation (R3.2): the URL and domain block-lists of a configuration snapshot,
 * compiled into one hash set, and the rating of a message's URLs against it. A domain entry
 * matches its host and every host under it; a URL entry matches the normalised URL exactly.
 * Read-only once built: many scan threads rate against the same set. */
#ifndef PORTCULLIS_WRS_H
#define PORTCULLIS_WRS_H

#include <stdbool.h>
#include <stddef.h>

#include "portcullis.pb-c.h"
#include "wire.h"

#define WRS_ENTRIES_MAX WIRE_WRS_MAX   /* entries in one set (what a snapshot carries) */
#define WRS_URLS_MAX 100               /* URLs of one message that are rated */
#define WRS_URL_MAX 2048               /* bytes of a normalised URL (MIME_URL_MAX) */
#define WRS_HOST_MAX 253               /* bytes of a host name (RFC 1035) */
#define WRS_CATEGORY_MAX WIRE_WRS_CATEGORY_MAX

typedef struct wrs wrs_t;

/* The highest rating of a message; level 0 = none of its URLs is listed. */
struct wrs_rating {
    unsigned level;                    /* 0, or 1..100 */
    char category[WRS_CATEGORY_MAX + 1];
    char url[WRS_URL_MAX + 1];         /* the URL that has it */
};

/* NULL with err naming the entry when one is malformed (kind, level, length). n = 0 gives an
 * empty set (every URL unrated). */
wrs_t *wrs_new(Portcullis__WrsEntry *const *entries, size_t n, char *err, size_t errlen);
void wrs_free(wrs_t **wp);
size_t wrs_count(const wrs_t *w);
/* Lowercase scheme and host, no user information, no fragment; the host alone (no port,
 * no trailing dot) in host. 0 ok, -1 not an absolute URL with a host or too long. */
int wrs_url_normalise(const char *url, char *out, size_t outlen, char *host, size_t hostlen);
/* The rating of one URL (level 0: not listed); category may be NULL. w may be NULL. */
unsigned wrs_rate_url(const wrs_t *w, const char *url, const char **category);
/* Rates at most WRS_URLS_MAX of urls and keeps the highest in out (level 0: none listed). */
void wrs_rate_urls(const wrs_t *w, char *const *urls, size_t nurls, struct wrs_rating *out);
/* Folds one more rating into out if it is higher. */
void wrs_rating_merge(struct wrs_rating *out, unsigned level, const char *category,
                      const char *url);

#endif
