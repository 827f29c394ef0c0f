/* edit: applies tag_subject and add_header actions to a message's raw bytes. Texts from the
 * policy are made header-safe (no CR, LF or other control characters; non-ASCII text is
 * RFC 2047 encoded) so that an action can never inject header lines or break the message. */
#include "scan/edit.h"

#include <event2/buffer.h>
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* Header-safe copy of t: control characters become spaces; non-ASCII → =?UTF-8?B?…?=. */
static char *s_safe_text(const char *t)
{
    size_t n = strlen(t);
    bool ascii = true;
    char *out = xstrdup(t);

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7f)
            out[i] = ' ';
        else if (c >= 0x80)
            ascii = false;
    }
    if (!ascii) {
        gchar *b64 = g_base64_encode((const guchar *)out, strlen(out));
        size_t m = strlen(b64) + 16;
        char *enc = xmalloc(m);
        snprintf(enc, m, "=?UTF-8?B?%s?=", b64);
        g_free(b64);
        free(out);
        out = enc;
    }
    return out;
}

/* End of the header block: offset just past the blank line's CRLF, or len if none. Sets
 * *subj / *subj_len to the top-level Subject field's name+value start if present. */
static size_t s_header_end(const char *d, size_t len, size_t *subj)
{
    size_t pos = 0;

    *subj = (size_t)-1;
    while (pos < len) {
        const char *nl = memchr(d + pos, '\n', len - pos);
        size_t eol = nl != NULL ? (size_t)(nl - d) + 1 : len;
        size_t ll = eol - pos;

        if (ll <= 2 && (d[pos] == '\r' || d[pos] == '\n'))
            return eol; /* the blank line */
        if (*subj == (size_t)-1 && ll >= 8 && strncasecmp(d + pos, "subject:", 8) == 0)
            *subj = pos;
        pos = eol;
    }
    return len;
}

struct evbuffer *edit_message(const char *data, size_t len, const struct policy_decision *d)
{
    struct evbuffer *out;
    size_t subj, hend;

    if (d->subject_tag[0] == '\0' && d->nadd_headers == 0)
        return NULL;
    out = evbuffer_new();
    hend = s_header_end(data, len, &subj);
    for (size_t i = 0; i < d->nadd_headers; i++) {
        const char *h = d->add_headers[i];
        const char *colon = strchr(h, ':');
        char *safe;

        if (colon == NULL || colon == h)
            continue; /* the policy compiler refuses these; never a broken header */
        safe = s_safe_text(colon + 1);
        evbuffer_add_printf(out, "%.*s:%s%s\r\n", (int)(colon - h), h,
                            safe[0] == ' ' ? "" : " ", safe);
        free(safe);
    }
    if (d->subject_tag[0] == '\0') {
        evbuffer_add(out, data, len);
        return out;
    }
    {
        char *tag = s_safe_text(d->subject_tag);
        if (subj == (size_t)-1) {
            evbuffer_add_printf(out, "Subject: %s\r\n", tag);
            evbuffer_add(out, data, len);
        } else {
            size_t v = subj + 8; /* after "Subject:" */
            while (v < hend && (data[v] == ' ' || data[v] == '\t'))
                v++;
            evbuffer_add(out, data, subj);
            evbuffer_add_printf(out, "Subject: %s ", tag);
            evbuffer_add(out, data + v, len - v);
        }
        free(tag);
    }
    return out;
}
