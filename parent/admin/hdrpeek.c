/* hdrpeek: see hdrpeek.h. Fields are unfolded into a bounded buffer, then addresses are the
 * <…> parts of the value or, without any, its comma-separated words that contain '@'. */
#include "admin/hdrpeek.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

#include "util.h"

static void s_copy_clean(char *dst, size_t cap, const char *src, size_t n)
{
    size_t o = 0;

    while (n > 0 && isspace((unsigned char)*src)) {
        src++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)src[n - 1]))
        n--;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[o] = '\0';
}

/* Calls add for each address in a From/To/Cc value. */
static void s_addresses(const char *v, size_t n, struct hdrpeek *out, bool sender)
{
    const char *p = v, *end = v + n;
    bool angle = memchr(v, '<', n) != NULL;

    while (p < end) {
        const char *s, *e;
        if (angle) {
            if ((s = memchr(p, '<', (size_t)(end - p))) == NULL)
                break;
            s++;
            if ((e = memchr(s, '>', (size_t)(end - s))) == NULL)
                break;
            p = e + 1;
        } else {
            s = p;
            e = memchr(p, ',', (size_t)(end - p));
            if (e == NULL)
                e = end;
            p = e + 1;
            if (memchr(s, '@', (size_t)(e - s)) == NULL)
                continue;
        }
        if (e - s == 0 || (size_t)(e - s) > HDRPEEK_ADDR_MAX)
            continue;
        if (sender) {
            s_copy_clean(out->sender, sizeof out->sender, s, (size_t)(e - s));
            return;
        }
        if (out->nrcpts < HDRPEEK_RCPT_MAX) {
            s_copy_clean(out->rcpts[out->nrcpts], sizeof out->rcpts[0], s, (size_t)(e - s));
            if (out->rcpts[out->nrcpts][0] != '\0')
                out->nrcpts++;
        }
    }
}

static void s_field(const char *f, size_t n, struct hdrpeek *out)
{
    const char *colon = memchr(f, ':', n);
    size_t nl, vl;

    if (colon == NULL)
        return;
    nl = (size_t)(colon - f);
    vl = n - nl - 1;
    while (nl > 0 && (f[nl - 1] == ' ' || f[nl - 1] == '\t'))
        nl--;
    if (nl == 4 && strncasecmp(f, "from", 4) == 0 && out->sender[0] == '\0')
        s_addresses(colon + 1, vl, out, true);
    else if ((nl == 2 && strncasecmp(f, "to", 2) == 0) || (nl == 2 && strncasecmp(f, "cc", 2) == 0))
        s_addresses(colon + 1, vl, out, false);
    else if (nl == 7 && strncasecmp(f, "subject", 7) == 0 && out->subject[0] == '\0')
        s_copy_clean(out->subject, sizeof out->subject, colon + 1, vl);
}

void hdrpeek_parse(const char *buf, size_t len, struct hdrpeek *out)
{
    char *field = xmalloc(HDRPEEK_FIELD_MAX);
    size_t fl = 0, i = 0;
    bool have = false;

    memset(out, 0, sizeof *out);
    while (i < len) {
        const char *line = buf + i, *nlp = memchr(line, '\n', len - i);
        size_t ll = nlp != NULL ? (size_t)(nlp - line) : len - i;
        i += ll + (nlp != NULL ? 1 : 0);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            break; /* end of the header block */
        if (line[0] == ' ' || line[0] == '\t') {
            /* continuation: unfold into the current field */
            if (have && fl + ll < HDRPEEK_FIELD_MAX) {
                memcpy(field + fl, line, ll);
                fl += ll;
            }
            continue;
        }
        if (have)
            s_field(field, fl, out);
        fl = ll < HDRPEEK_FIELD_MAX ? ll : HDRPEEK_FIELD_MAX;
        memcpy(field, line, fl);
        have = true;
    }
    if (have)
        s_field(field, fl, out);
    free(field);
}
