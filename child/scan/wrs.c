/* wrs: see wrs.h. One open-addressing hash set keyed by "d:HOST" and "u:URL" (normalised, so
 * the parent's list and a message's URL meet in one form). A URL's rating is the highest of
 * its exact entry and the entries of its host and each parent domain (a.b.example.test looks
 * up a.b.example.test, b.example.test, example.test, test). */
#include "scan/wrs.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct wrs_slot {
    char *key;                         /* "d:…" or "u:…"; NULL = empty */
    unsigned level;
    char *category;
};

struct wrs {
    struct wrs_slot *slots;
    size_t cap;                        /* a power of two, at least twice the entries */
    size_t n;
};

static uint64_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct wrs_slot *s_find(const wrs_t *w, const char *key)
{
    size_t i = (size_t)s_hash(key) & (w->cap - 1);

    while (w->slots[i].key != NULL && strcmp(w->slots[i].key, key) != 0)
        i = (i + 1) & (w->cap - 1);
    return &w->slots[i];
}

int wrs_url_normalise(const char *url, char *out, size_t outlen, char *host, size_t hostlen)
{
    const char *sep = strstr(url, "://"), *auth, *end, *at, *hs, *he, *frag;
    size_t o = 0, hn;

    if (sep == NULL || sep == url)
        return -1;
    for (const char *p = url; p < sep; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            return -1;
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    frag = strchr(url, '#');
    if (frag == NULL)
        frag = url + strlen(url);
    at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p; /* user information ends at the last '@' */
    hs = at != NULL ? at + 1 : auth;
    he = hs;
    if (*he == '[') { /* IPv6 literal */
        const char *rb = memchr(he, ']', (size_t)(end - he));
        he = rb != NULL ? rb + 1 : end;
    }
    while (he < end && *he != ':')
        he++;
    hn = (size_t)(he - hs);
    while (hn > 0 && hs[hn - 1] == '.')
        hn--;
    if (hn == 0 || hn > WRS_HOST_MAX || hn >= hostlen)
        return -1;
    if ((size_t)(sep - url) + 3 + (size_t)(frag - hs) >= outlen)
        return -1;
    for (const char *p = url; p < sep; p++)
        out[o++] = (char)tolower((unsigned char)*p);
    memcpy(out + o, "://", 3);
    o += 3;
    for (size_t i = 0; i < hn; i++)
        host[i] = out[o++] = (char)tolower((unsigned char)hs[i]);
    host[hn] = '\0';
    for (const char *p = hs + hn; p < frag; p++) {
        if (p < he && *p == '.')
            continue; /* trailing dots of the host */
        out[o++] = *p;
    }
    out[o] = '\0';
    return 0;
}

static int s_entry_check(const Portcullis__WrsEntry *e, size_t i, char *key, size_t keylen,
                         char *err, size_t errlen)
{
    const char *kind = e->kind != NULL ? e->kind : "", *pat = e->pattern != NULL ? e->pattern : "";
    char norm[WRS_URL_MAX + 1], host[WRS_HOST_MAX + 1];

    if (e->level < 1 || e->level > 100 || strlen(pat) > WIRE_WRS_PATTERN_MAX ||
        (e->category != NULL && strlen(e->category) > WRS_CATEGORY_MAX)) {
        snprintf(err, errlen, "web reputation entry %zu: level must be 1..100, pattern at most "
                 "%d bytes, category at most %d", i + 1, WIRE_WRS_PATTERN_MAX, WRS_CATEGORY_MAX);
        return -1;
    }
    if (strcmp(kind, "domain") == 0 && *pat != '\0') {
        size_t o = 0;
        key[o++] = 'd';
        key[o++] = ':';
        for (const char *p = pat; *p != '\0' && o + 1 < keylen; p++)
            key[o++] = (char)tolower((unsigned char)*p);
        while (o > 2 && key[o - 1] == '.')
            o--;
        key[o] = '\0';
        return 0;
    }
    if (strcmp(kind, "url") == 0 && wrs_url_normalise(pat, norm, sizeof norm, host,
                                                       sizeof host) == 0) {
        snprintf(key, keylen, "u:%s", norm);
        return 0;
    }
    snprintf(err, errlen, "web reputation entry %zu: kind \"%.16s\" with pattern \"%.64s\": "
             "want a domain or an absolute URL", i + 1, kind, pat);
    return -1;
}

wrs_t *wrs_new(Portcullis__WrsEntry *const *entries, size_t n, char *err, size_t errlen)
{
    wrs_t *w;
    char key[WRS_URL_MAX + 3];

    if (n > WRS_ENTRIES_MAX) {
        snprintf(err, errlen, "%zu web reputation entries; at most %d", n, WRS_ENTRIES_MAX);
        return NULL;
    }
    w = xcalloc(1, sizeof *w);
    for (w->cap = 16; w->cap < 2 * n; w->cap *= 2)
        ;
    w->slots = xcalloc(w->cap, sizeof *w->slots);
    for (size_t i = 0; i < n; i++) {
        struct wrs_slot *s;
        if (s_entry_check(entries[i], i, key, sizeof key, err, errlen) != 0) {
            wrs_free(&w);
            return NULL;
        }
        s = s_find(w, key);
        if (s->key == NULL) {
            s->key = xstrdup(key);
            w->n++;
        } else if (s->level >= entries[i]->level) {
            continue; /* the same key twice: the higher level stays */
        }
        free(s->category);
        s->level = entries[i]->level;
        s->category = xstrdup(entries[i]->category != NULL ? entries[i]->category : "");
    }
    return w;
}

void wrs_free(wrs_t **wp)
{
    wrs_t *w;

    if (wp == NULL || *wp == NULL)
        return;
    w = *wp;
    for (size_t i = 0; i < w->cap; i++) {
        free(w->slots[i].key);
        free(w->slots[i].category);
    }
    free(w->slots);
    free(w);
    *wp = NULL;
}

size_t wrs_count(const wrs_t *w) { return w != NULL ? w->n : 0; }

static void s_lookup(const wrs_t *w, const char *key, unsigned *level, const char **category)
{
    const struct wrs_slot *s = s_find(w, key);

    if (s->key != NULL && s->level > *level) {
        *level = s->level;
        *category = s->category;
    }
}

unsigned wrs_rate_url(const wrs_t *w, const char *url, const char **category)
{
    char norm[WRS_URL_MAX + 1], host[WRS_HOST_MAX + 1], key[WRS_URL_MAX + 3];
    const char *cat = NULL;
    unsigned level = 0;

    if (w == NULL || w->n == 0 || wrs_url_normalise(url, norm, sizeof norm, host,
                                                    sizeof host) != 0)
        return 0;
    snprintf(key, sizeof key, "u:%s", norm);
    s_lookup(w, key, &level, &cat);
    for (const char *h = host; h != NULL && *h != '\0';) {
        snprintf(key, sizeof key, "d:%s", h);
        s_lookup(w, key, &level, &cat);
        h = strchr(h, '.');
        if (h != NULL)
            h++;
    }
    if (category != NULL)
        *category = cat;
    return level;
}

void wrs_rating_merge(struct wrs_rating *out, unsigned level, const char *category,
                      const char *url)
{
    if (level <= out->level)
        return;
    out->level = level;
    strlcpy_p(out->category, category != NULL ? category : "", sizeof out->category);
    strlcpy_p(out->url, url != NULL ? url : "", sizeof out->url);
}

void wrs_rate_urls(const wrs_t *w, char *const *urls, size_t nurls, struct wrs_rating *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < nurls && i < WRS_URLS_MAX; i++) {
        const char *cat = NULL;
        unsigned level = wrs_rate_url(w, urls[i], &cat);
        wrs_rating_merge(out, level, cat, urls[i]);
    }
}
