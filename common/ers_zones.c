/* ers_zones: parser of the ers.zones setting; see ers_zones.h for the format. */
#include "ers_zones.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* [b, e) without surrounding spaces. */
static void s_trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

static bool s_zone_ok(const char *b, const char *e)
{
    size_t label = 0;

    if (e - b < 1 || (size_t)(e - b) > ERS_ZONE_LEN_MAX)
        return false;
    for (const char *p = b; p < e; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && e[-1] != '-';
}

static bool s_listing_ok(const char *b, const char *e)
{
    if (e - b < 1 || e - b > ERS_LISTING_LEN_MAX)
        return false;
    for (const char *p = b; p < e; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            return false;
    return true;
}

static int s_code(const char *b, const char *e, struct ers_code *c, char *err, size_t errlen)
{
    const char *colon = memchr(b, ':', (size_t)(e - b));
    const char *cb = b, *ce = colon != NULL ? colon : e, *lb, *le = e;
    char ip[INET_ADDRSTRLEN];
    struct in_addr a;

    s_trim(&cb, &ce);
    if (colon == NULL) {
        snprintf(err, errlen, "\"%.*s\" is not CODE:LISTING", (int)(e - b < 64 ? e - b : 64), b);
        return -1;
    }
    lb = colon + 1;
    s_trim(&lb, &le);
    memset(c, 0, sizeof *c);
    if ((size_t)(ce - cb) == 3 && strncasecmp(cb, "any", 3) == 0) {
        c->any = true;
    } else if ((size_t)(ce - cb) >= sizeof ip) {
        snprintf(err, errlen, "\"%.*s\" is not an IPv4 address or 'any'", 32, cb);
        return -1;
    } else {
        memcpy(ip, cb, (size_t)(ce - cb));
        ip[ce - cb] = '\0';
        if (inet_pton(AF_INET, ip, &a) != 1) {
            snprintf(err, errlen, "\"%s\" is not an IPv4 address or 'any'", ip);
            return -1;
        }
        c->addr = ntohl(a.s_addr);
    }
    if (!s_listing_ok(lb, le)) {
        snprintf(err, errlen, "\"%.*s\" is not a listing name", (int)(le - lb < 64 ? le - lb : 64),
                 lb);
        return -1;
    }
    memcpy(c->listing, lb, (size_t)(le - lb));
    c->listing[le - lb] = '\0';
    return 0;
}

static int s_zone(const char *b, const char *e, struct ers_zone *z, char *err, size_t errlen)
{
    const char *eq = memchr(b, '=', (size_t)(e - b));
    const char *nb = b, *ne = eq != NULL ? eq : e, *p;

    s_trim(&nb, &ne);
    if (eq == NULL) {
        snprintf(err, errlen, "\"%.*s\" has no '=' after the zone", (int)(e - b < 64 ? e - b : 64),
                 b);
        return -1;
    }
    if (ne > nb && ne[-1] == '.')
        ne--; /* "bl.example." is "bl.example" */
    if (!s_zone_ok(nb, ne)) {
        snprintf(err, errlen, "\"%.*s\" is not a DNS zone name", (int)(ne - nb < 64 ? ne - nb : 64),
                 nb);
        return -1;
    }
    for (size_t i = 0; i < (size_t)(ne - nb); i++)
        z->name[i] = (char)tolower((unsigned char)nb[i]);
    z->name[ne - nb] = '\0';
    z->ncodes = 0;
    for (p = eq + 1; p <= e;) {
        const char *c = memchr(p, ',', (size_t)(e - p));
        if (c == NULL)
            c = e;
        if (z->ncodes == ERS_CODES_MAX) {
            snprintf(err, errlen, "zone %s: more than %d codes", z->name, ERS_CODES_MAX);
            return -1;
        }
        if (s_code(p, c, &z->codes[z->ncodes], err, errlen) != 0)
            return -1;
        z->ncodes++;
        p = c + 1;
    }
    return 0;
}

int ers_zones_parse(const char *value, struct ers_zones *out, char *err, size_t errlen)
{
    struct ers_zones *z = xcalloc(1, sizeof *z);
    const char *p = value, *end = value + strlen(value), *b = value, *e = end;
    int rc = 0;

    s_trim(&b, &e);
    if (b == e)
        goto done; /* no zones */
    while (p <= end && rc == 0) {
        const char *semi = memchr(p, ';', (size_t)(end - p)), *zb = p, *ze;
        ze = semi != NULL ? semi : end;
        s_trim(&zb, &ze);
        if (zb == ze && semi == NULL && z->nzones > 0)
            break; /* a trailing ';' */
        if (z->nzones == ERS_ZONES_MAX) {
            snprintf(err, errlen, "more than %d zones", ERS_ZONES_MAX);
            rc = -1;
        } else {
            rc = s_zone(zb, ze, &z->zones[z->nzones++], err, errlen);
        }
        if (semi == NULL)
            break;
        p = semi + 1;
    }
done:
    if (rc == 0 && out != NULL)
        *out = *z;
    free(z);
    return rc;
}

const char *ers_zones_listing(const struct ers_zone *z, uint32_t addr)
{
    for (size_t i = 0; i < z->ncodes; i++)
        if (z->codes[i].any || z->codes[i].addr == addr)
            return z->codes[i].listing;
    return NULL;
}
