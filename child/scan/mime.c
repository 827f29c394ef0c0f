/* mime: GMime 3 parse of one message into headers, parts, text bodies and URLs. GMime's parser
 * recurses once per container, so the containers it is handed are counted first (a cheap pass
 * over the bytes) and a message with too many is parsed for its top-level headers only. The
 * walk over the tree checks depth, parts, decoded bytes and header limits as it goes. */
#include "scan/mime.h"

#include <ctype.h>
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "scan/digest.h"
#include "util.h"

struct walk {
    const struct mime_limits *lim;
    struct mime_result *r;
    size_t parts_seen;          /* every object, containers included */
    size_t cap_parts, cap_texts;
    const char *raw;            /* the message as received, for the delimiter checks */
    size_t rawlen;
    mime_part_fn *part;         /* decoded parts go here too (the scan); NULL none */
    void *part_arg;
    const char *bounds[64];     /* boundaries of the enclosing multiparts */
    size_t nbounds;
};

void mime_init(void) { g_mime_init(); }

/* --- content type from magic ------------------------------------------------------------ */

struct magic {
    size_t off, len;
    const char *bytes;
    const char *type;
};

static const struct magic s_magic[] = {
    { 0, 4, "\x7f" "ELF", "application/x-executable" },
    { 0, 5, "%PDF-", "application/pdf" },
    { 0, 8, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage" },
    { 0, 4, "PK\x03\x04", "application/zip" },
    { 0, 4, "PK\x05\x06", "application/zip" },
    { 0, 2, "\x1f\x8b", "application/gzip" },
    { 0, 3, "BZh", "application/x-bzip2" },
    { 0, 6, "\xfd" "7zXZ\0", "application/x-xz" },
    { 0, 6, "7z\xbc\xaf\x27\x1c", "application/x-7z-compressed" },
    { 0, 6, "Rar!\x1a\x07", "application/x-rar" },
    { 257, 5, "ustar", "application/x-tar" },
    { 0, 8, "\x89PNG\r\n\x1a\n", "image/png" },
    { 0, 6, "GIF87a", "image/gif" },
    { 0, 6, "GIF89a", "image/gif" },
    { 0, 3, "\xff\xd8\xff", "image/jpeg" },
    { 0, 2, "BM", "image/bmp" },
    { 0, 4, "II*\0", "image/tiff" },
    { 0, 4, "MM\0*", "image/tiff" },
    { 0, 5, "{\\rtf", "text/rtf" },
    { 0, 4, "\xca\xfe\xba\xbe", "application/x-mach-binary" },
    { 0, 4, "\xcf\xfa\xed\xfe", "application/x-mach-binary" },
    { 0, 2, "#!", "text/x-shellscript" },
};

const char *mime_detect_type(const unsigned char *p, size_t n)
{
    if (n >= 2 && p[0] == 'M' && p[1] == 'Z')
        return "application/x-dosexec";
    if (n >= 4 && memcmp(p, "PK\x03\x04", 4) == 0) {
        /* OOXML and OpenDocument are zips whose first entries name them */
        size_t m = n < MIME_MAGIC_BYTES ? n : MIME_MAGIC_BYTES;
        if (memmem(p, m, "mimetypeapplication/vnd.oasis.opendocument", 42) != NULL)
            return "application/vnd.oasis.opendocument";
        if (memmem(p, m, "[Content_Types].xml", 19) != NULL || memmem(p, m, "word/", 5) != NULL ||
            memmem(p, m, "xl/", 3) != NULL || memmem(p, m, "ppt/", 4) != NULL)
            return "application/vnd.openxmlformats-officedocument";
    }
    for (size_t i = 0; i < ARRAY_LEN(s_magic); i++)
        if (n >= s_magic[i].off + s_magic[i].len &&
            memcmp(p + s_magic[i].off, s_magic[i].bytes, s_magic[i].len) == 0)
            return s_magic[i].type;
    return NULL;
}

/* --- containers pre-count ------------------------------------------------------------------ */

/* What a cheap pass over the bytes tells before GMime sees any (R8.5): GMime recurses once a
 * container and builds an object for every header field, so both are bounded here. */
struct prescan {
    size_t containers;     /* "multipart/" and "message/" anywhere: an upper bound */
    size_t fields;         /* lines that start like a header field ("Name:") anywhere */
    size_t top_fields;     /* header fields of the top-level block */
    size_t top_len;        /* bytes of the top-level block, its blank line included */
    size_t top_cut;        /* bytes of the top-level block that fit the limits (whole fields) */
};

static bool s_field_start(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && *q > 0x20 && *q < 0x7f && *q != ':')
        q++;
    return q > p && q < end && *q == ':';
}

static void s_prescan(const char *d, size_t len, size_t stop, unsigned max_top_fields,
                      struct prescan *ps)
{
    const char *p = d, *end = d + len;
    bool top = true;

    memset(ps, 0, sizeof *ps);
    for (size_t i = 0; i + 8 <= len && ps->containers <= stop; i++) {
        char c = d[i] | 0x20;
        if (c == 'm' && ((len - i >= 10 && strncasecmp(d + i, "multipart/", 10) == 0) ||
                         strncasecmp(d + i, "message/", 8) == 0))
            ps->containers++;
    }
    while (p < end) { /* line by line; the decoder stored CRLF ends */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *next = nl != NULL ? nl + 1 : end;
        bool blank = next - p <= 2 && (*p == '\r' || *p == '\n');

        if (top && blank) {
            top = false;
            ps->top_len = (size_t)(next - d);
            if (ps->top_fields <= max_top_fields && ps->top_len <= MIME_TOP_HEADER_BYTES_MAX)
                ps->top_cut = ps->top_len;
        } else if (s_field_start(p, next)) {
            ps->fields++;
            if (top) {
                /* the block up to here is whole fields: a place to cut it */
                if (++ps->top_fields <= max_top_fields + 1 &&
                    (size_t)(p - d) <= MIME_TOP_HEADER_BYTES_MAX)
                    ps->top_cut = (size_t)(p - d);
            }
        }
        p = next;
    }
    if (top) { /* no body: the whole message is its header block */
        ps->top_len = len;
        if (ps->top_fields <= max_top_fields && len <= MIME_TOP_HEADER_BYTES_MAX)
            ps->top_cut = len;
    }
}

/* --- URLs ------------------------------------------------------------------------------------- */

static bool s_url_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '"' && c != '\'' && c != '<' && c != '>' && c != '`' &&
           c != '(' && c != ')' && c != '[' && c != ']' && c != '{' && c != '}' && c != '\\';
}

static void s_url_add(struct mime_result *r, const char *p, size_t n)
{
    while (n > 0 && strchr(".,;:!?", p[n - 1]) != NULL)
        n--; /* sentence punctuation after a URL */
    if (n > MIME_URL_MAX)
        n = MIME_URL_MAX;
    for (size_t i = 0; i < r->nurls; i++)
        if (strlen(r->urls[i]) == n && strncasecmp(r->urls[i], p, n) == 0)
            return;
    if (r->nurls >= MIME_URLS_MAX)
        return;
    r->urls = xrealloc(r->urls, (r->nurls + 1) * sizeof *r->urls);
    r->urls[r->nurls++] = xstrndup(p, n);
}

static void s_urls_scan(struct mime_result *r, const char *t, size_t len)
{
    static const char *const schemes[] = { "http://", "https://", "ftp://", "www." };

    for (size_t i = 0; i < len && r->nurls < MIME_URLS_MAX; i++) {
        char c = t[i] | 0x20;
        if (c != 'h' && c != 'f' && c != 'w')
            continue;
        if (i > 0 && (isalnum((unsigned char)t[i - 1]) || t[i - 1] == '.' || t[i - 1] == '/'))
            continue; /* inside a word or a URL already taken */
        for (size_t k = 0; k < ARRAY_LEN(schemes); k++) {
            size_t sl = strlen(schemes[k]), e;
            if (len - i <= sl || strncasecmp(t + i, schemes[k], sl) != 0)
                continue;
            for (e = i + sl; e < len && e - i < MIME_URL_MAX && s_url_char((unsigned char)t[e]);)
                e++;
            if (e > i + sl)
                s_url_add(r, t + i, e - i);
            i = e;
            break;
        }
    }
}

/* --- headers ---------------------------------------------------------------------------------- */

/* Bytes of "Name:value" as in the message, the field's final line end excluded. */
static size_t s_field_len(const char *name, const char *raw)
{
    size_t n = strlen(raw);

    while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
        n--;
    return strlen(name) + 1 + n;
}

/* Checks a header list against the limits; keeps the top level ones in r when keep. */
static void s_headers(struct walk *w, GMimeObject *obj, bool keep)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    int count = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
    struct mime_result *r = w->r;

    if (count < 0)
        return;
    if ((unsigned)count > w->lim->max_headers) {
        r->exceptions |= POLICY_EXC_MIME_HEADERS;
        count = (int)w->lim->max_headers;
    }
    if (keep && count > 0)
        r->headers = xcalloc((size_t)count, sizeof *r->headers);
    for (int i = 0; i < count; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *raw = h != NULL ? g_mime_header_get_raw_value(h) : NULL;
        const char *name = h != NULL ? g_mime_header_get_name(h) : NULL;
        const char *val;
        size_t vlen;

        if (name == NULL)
            continue;
        if (raw != NULL && s_field_len(name, raw) > w->lim->max_header_length) {
            r->exceptions |= POLICY_EXC_MIME_HEADER_LENGTH;
            if (!keep)
                continue;
            r->headers[r->nheaders].name = xstrdup(name);
            r->headers[r->nheaders++].value = xstrndup(raw, w->lim->max_header_length);
            continue;
        }
        if (!keep)
            continue;
        val = g_mime_header_get_value(h);
        vlen = val != NULL ? strlen(val) : 0;
        r->headers[r->nheaders].name = xstrdup(name);
        r->headers[r->nheaders++].value = xstrndup(val != NULL ? val : "", vlen);
    }
}

/* --- parts ------------------------------------------------------------------------------------ */

static char *s_to_utf8(const char *data, size_t len, const char *charset)
{
    char *conv = NULL, *valid;
    gsize outlen = 0;

    if (data == NULL || len == 0)
        return g_strdup("");
    if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
        g_ascii_strcasecmp(charset, "us-ascii") != 0)
        conv = g_convert(data, (gssize)len, "UTF-8", charset, NULL, &outlen, NULL);
    valid = conv != NULL ? g_utf8_make_valid(conv, (gssize)outlen)
                         : g_utf8_make_valid(data, (gssize)len);
    g_free(conv);
    return valid;
}

static void s_text_add(struct walk *w, GMimeObject *obj, const char *data, size_t len)
{
    struct mime_result *r = w->r;
    const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
    char *u = s_to_utf8(data, len, charset);

    if (r->ntexts == w->cap_texts) {
        w->cap_texts = w->cap_texts ? 2 * w->cap_texts : 4;
        r->texts = xrealloc(r->texts, w->cap_texts * sizeof *r->texts);
        r->text_lens = xrealloc(r->text_lens, w->cap_texts * sizeof *r->text_lens);
    }
    r->texts[r->ntexts] = xstrdup(u);
    r->text_lens[r->ntexts] = strlen(u);
    s_urls_scan(r, u, r->text_lens[r->ntexts]);
    r->ntexts++;
    g_free(u);
}

/* An attachment that is plain text whatever it is labelled (a .txt sent as octet-stream):
 * its words count for body rules too, so that a label cannot hide them (GTUBE in a "jpg"). */
static bool s_text_attachment(const struct mime_part *mp, const unsigned char *d, size_t len)
{
    if (len == 0 || len > MIME_TEXT_ATTACHMENT_MAX || mp->detected_type != NULL ||
        (mp->filename == NULL && strncmp(mp->declared_type, "text/", 5) == 0))
        return false; /* empty, big, of a known binary type, or a body text already */
    for (size_t i = 0; i < len; i++)
        if (d[i] == '\0' || (d[i] < 0x20 && d[i] != '\t' && d[i] != '\r' && d[i] != '\n'))
            return false;
    return true;
}

/* --- ambiguity (issue 11 point 5) ------------------------------------------------------------ */

static void s_ambiguous(struct walk *w) { w->r->exceptions |= POLICY_EXC_MIME_AMBIGUOUS; }

/* RFC 2046 bcharsnospace, and space inside */
static bool s_bchar(unsigned char c)
{
    return isalnum(c) || strchr("'()+_,-./:=? ", c) != NULL;
}

/* RFC 2045 token characters (no tspecials, no space or controls) */
static bool s_tchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* The boundary parameters of a raw Content-Type value: false when there is more than one, or
 * one whose value breaks the grammar (quoted: bchars, not ending in space; unquoted: a token
 * of bchars), or is empty or over MIME_BOUNDARY_MAX. */
static bool s_boundary_params_ok(const char *v)
{
    unsigned n = 0;

    for (const char *p = v; (p = strcasestr(p, "boundary")) != NULL; p += 8) {
        const char *q = p + 8;
        size_t len = 0;
        bool quoted;

        if (p > v && (isalnum((unsigned char)p[-1]) || p[-1] == '-' || p[-1] == '_'))
            continue; /* part of another word */
        if (*q == '*' || isdigit((unsigned char)*q)) {
            while (*q == '*' || isdigit((unsigned char)*q))
                q++;
            if (*q == '=')
                return false; /* boundary*=, boundary*0=: RFC 2231 forms, read differently */
            continue;
        }
        while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
            q++;
        if (*q != '=')
            continue;
        n++;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        quoted = *q == '"';
        if (quoted) {
            for (q++; q[len] != '\0' && q[len] != '"'; len++)
                if (!s_bchar((unsigned char)q[len]))
                    return false;
            if (q[len] != '"' || (len > 0 && q[len - 1] == ' '))
                return false;
        } else {
            for (; q[len] != '\0' && q[len] != ';' && q[len] != ' ' && q[len] != '\t' &&
                   q[len] != '\r' && q[len] != '\n'; len++)
                if (!s_tchar((unsigned char)q[len]) || !s_bchar((unsigned char)q[len]))
                    return false;
        }
        if (len == 0 || len > MIME_BOUNDARY_MAX)
            return false;
    }
    return n <= 1;
}

/* The header block of obj: a header deciding the structure given twice, or a boundary where
 * it does not belong or in a shape parsers read differently. */
static void s_check_headers(struct walk *w, GMimeObject *obj)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    int n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
    unsigned ct = 0, cte = 0, cd = 0;

    for (int i = 0; i < n; i++) {
        GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(h);
        const char *raw = g_mime_header_get_raw_value(h);

        if (name == NULL)
            continue;
        if (strcasecmp(name, "Content-Type") == 0) {
            ct++;
            if (raw != NULL && !s_boundary_params_ok(raw))
                s_ambiguous(w);
        } else {
            if (strcasecmp(name, "Content-Transfer-Encoding") == 0)
                cte++;
            else if (strcasecmp(name, "Content-Disposition") == 0)
                cd++;
            if (raw != NULL && strncasecmp(name, "Content-", 8) == 0 &&
                strcasestr(raw, "boundary") != NULL && strchr(raw, '=') != NULL)
                s_ambiguous(w); /* a boundary outside Content-Type (ClamAV may take it) */
        }
    }
    if (ct > 1 || cte > 1 || cd > 1)
        s_ambiguous(w);
}

/* A multipart's delimiters: its boundary must not be a prefix of an enclosing one (nor they
 * of it), and its close delimiter must be there. */
static void s_check_multipart(struct walk *w, GMimeObject *obj, const char *b)
{
    const char *cte = g_mime_object_get_header(obj, "Content-Transfer-Encoding");
    char close[MIME_BOUNDARY_MAX + 8];
    size_t bl = b != NULL ? strlen(b) : 0;

    if (cte != NULL) {
        while (*cte == ' ' || *cte == '\t')
            cte++;
        if (strncasecmp(cte, "7bit", 4) != 0 && strncasecmp(cte, "8bit", 4) != 0 &&
            strncasecmp(cte, "binary", 6) != 0)
            s_ambiguous(w); /* RFC 2045: a multipart is never encoded */
    }
    if (bl == 0 || bl > MIME_BOUNDARY_MAX) {
        s_ambiguous(w);
        return;
    }
    for (size_t i = 0; i < w->nbounds; i++) {
        size_t ol = strlen(w->bounds[i]);
        if (strncmp(w->bounds[i], b, ol < bl ? ol : bl) == 0)
            s_ambiguous(w);
    }
    snprintf(close, sizeof close, "\n--%s--", b);
    if (memmem(w->raw, w->rawlen, close, strlen(close)) == NULL)
        s_ambiguous(w); /* unterminated: where it ends is anyone's guess */
}

/* yEnc (not MIME, but mail clients decode it): a text body with a "=ybegin " line is decoded
 * with GMime's yEnc filter and the result handed to the scan like a part. */
static void s_yenc(struct walk *w, const char *text, size_t len)
{
    if (len == 0 || w->part == NULL)
        return;
    const char *b = len >= 8 && memcmp(text, "=ybegin ", 8) == 0 ? text
                                                                   : memmem(text, len, "\n=ybegin ", 9);
    GMimeStream *mem, *filtered;
    GMimeFilter *f;
    GByteArray *out;

    if (b == NULL || w->part == NULL)
        return;
    if (*b == '\n')
        b++;
    mem = g_mime_stream_mem_new();
    filtered = g_mime_stream_filter_new(mem);
    f = g_mime_filter_dos2unix_new(FALSE); /* GMime's yEnc decoder takes CR for data */
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
    g_object_unref(f);
    f = g_mime_filter_yenc_new(FALSE);
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
    g_object_unref(f);
    g_mime_stream_write(filtered, b, len - (size_t)(b - text));
    g_mime_stream_flush(filtered);
    out = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    if (out->len > 0)
        w->part(w->part_arg, out->data, out->len, "yenc");
    else
        s_ambiguous(w); /* it says yEnc and does not decode */
    g_object_unref(filtered);
    g_object_unref(mem);
}

static void s_leaf(struct walk *w, GMimePart *part, unsigned depth)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    GMimeDataWrapper *dw = g_mime_part_get_content(part);
    struct mime_result *r = w->r;
    struct mime_part *mp;
    const char *fn = g_mime_part_get_filename(part);
    char *type = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
    GByteArray *bytes = NULL;
    GMimeStream *out;

    if (r->nparts == w->cap_parts) {
        w->cap_parts = w->cap_parts ? 2 * w->cap_parts : 8;
        r->parts = xrealloc(r->parts, w->cap_parts * sizeof *r->parts);
    }
    mp = &r->parts[r->nparts++];
    memset(mp, 0, sizeof *mp);
    mp->filename = fn != NULL ? xstrdup(fn) : NULL;
    mp->declared_type = xstrdup(type != NULL ? type : "text/plain");
    for (char *p = mp->declared_type; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    mp->depth = depth;
    g_free(type);
    if (dw == NULL || r->decoded_total > w->lim->max_decoded_size)
        return;
    out = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(dw, out); /* decodes base64/QP/uuencode */
    bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
    mp->size = bytes->len;
    r->decoded_total += bytes->len;
    if (r->decoded_total > w->lim->max_decoded_size) {
        r->exceptions |= POLICY_EXC_MIME_SIZE;
        g_object_unref(out);
        return;
    }
    digest_sha256(bytes->data, bytes->len, mp->sha256);
    mp->hashed = true;
    mp->detected_type = mime_detect_type(bytes->data, bytes->len);
    if (strncmp(mp->declared_type, "multipart/", 10) == 0 ||
        strcmp(mp->declared_type, "message/rfc822") == 0 ||
        strcmp(mp->declared_type, "message/global") == 0 ||
        strcmp(mp->declared_type, "message/partial") == 0)
        s_ambiguous(w); /* a container read as a leaf (encoded, or a fragment of one) */
    if (w->part != NULL)
        w->part(w->part_arg, bytes->data, bytes->len, fn);
    if (strncmp(mp->declared_type, "text/", 5) == 0)
        s_yenc(w, (const char *)bytes->data, bytes->len);
    if (((strcmp(mp->declared_type, "text/plain") == 0 ||
          strcmp(mp->declared_type, "text/html") == 0) && mp->filename == NULL) ||
        s_text_attachment(mp, bytes->data, bytes->len)) {
        for (guint i = 0; i < bytes->len; i++)
            if (bytes->data[i] == '\0')
                bytes->data[i] = ' '; /* texts are C strings for the rules */
        s_text_add(w, obj, (const char *)bytes->data, bytes->len);
    }
    g_object_unref(out);
}

static void s_walk(struct walk *w, GMimeObject *obj, unsigned depth)
{
    if (obj == NULL)
        return;
    if (depth > w->lim->max_depth) {
        w->r->exceptions |= POLICY_EXC_MIME_DEPTH;
        return;
    }
    if (++w->parts_seen > w->lim->max_parts) {
        w->r->exceptions |= POLICY_EXC_MIME_PARTS;
        return;
    }
    if (depth > 0) {
        s_headers(w, obj, false);
        s_check_headers(w, obj);
    }
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        /* read the parameter: g_mime_multipart_get_boundary() makes one up when there is none,
         * re-encoding the header — seconds on a hostile parameter list (found by fuzz_mime) */
        const char *b = g_mime_object_get_content_type_parameter(obj, "boundary");
        s_check_multipart(w, obj, b);
        if (w->nbounds < ARRAY_LEN(w->bounds) && b != NULL)
            w->bounds[w->nbounds++] = b;
        for (int i = 0; i < n; i++) {
            s_walk(w, g_mime_multipart_get_part(mp, i), depth + 1);
            if (w->r->exceptions & (POLICY_EXC_MIME_PARTS | POLICY_EXC_MIME_SIZE))
                break;
        }
        if (w->nbounds > 0 && w->bounds[w->nbounds - 1] == b)
            w->nbounds--;
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        const char *cte = g_mime_object_get_header(obj, "Content-Transfer-Encoding");
        if (cte != NULL && (strcasestr(cte, "base64") != NULL ||
                            strcasestr(cte, "quoted-printable") != NULL))
            s_ambiguous(w); /* RFC 2046: message/rfc822 is never encoded */
        if (m != NULL) {
            s_headers(w, GMIME_OBJECT(m), false);
            s_check_headers(w, GMIME_OBJECT(m));
            s_walk(w, g_mime_message_get_mime_part(m), depth + 1);
        }
    } else if (GMIME_IS_PART(obj)) {
        s_leaf(w, GMIME_PART(obj), depth);
    }
}

static GMimeMessage *s_construct(const char *data, size_t len, GMimeStream **sp)
{
    GMimeParser *parser;
    GMimeMessage *m;

    *sp = g_mime_stream_mem_new_with_buffer(data, len);
    parser = g_mime_parser_new_with_stream(*sp);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    m = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    return m;
}

struct mime_result *mime_parse(const char *data, size_t len, const struct mime_limits *lim)
{
    return mime_parse_scan(data, len, lim, NULL, NULL);
}

struct mime_result *mime_parse_scan(const char *data, size_t len, const struct mime_limits *lim,
                                    mime_part_fn *part, void *arg)
{
    struct mime_result *r = xcalloc(1, sizeof *r);
    struct walk w = { .lim = lim, .r = r, .raw = data, .rawlen = len, .part = part,
                      .part_arg = arg };
    size_t stop = lim->max_parts < MIME_CONTAINERS_MAX ? lim->max_parts : MIME_CONTAINERS_MAX;
    bool headers_only = false;
    GMimeStream *stream = NULL;
    GMimeMessage *m;
    const char *v;

    struct prescan ps;
    char *top = NULL;

    s_prescan(data, len, stop, lim->max_headers, &ps);
    if (ps.containers > stop) {
        /* Too many containers to hand to GMime whole: the top-level headers only. */
        r->exceptions |= lim->max_parts <= MIME_CONTAINERS_MAX ? POLICY_EXC_MIME_PARTS
                                                               : POLICY_EXC_MIME_DEPTH;
        headers_only = true;
    }
    if (ps.fields > MIME_HEADER_FIELDS_MAX || ps.top_fields > lim->max_headers) {
        r->exceptions |= POLICY_EXC_MIME_HEADERS;
        headers_only = true;
    }
    if (ps.top_len > MIME_TOP_HEADER_BYTES_MAX) {
        r->exceptions |= POLICY_EXC_MIME_HEADER_LENGTH;
        headers_only = true;
    }
    if (headers_only) {
        /* the first whole fields within the limits, ended as a header block, for the rules */
        len = ps.top_cut < ps.top_len ? ps.top_cut : ps.top_len;
        if (len == 0) /* the first field alone is over the limit: its start */
            len = ps.top_len < MIME_TOP_HEADER_BYTES_MAX ? ps.top_len : MIME_TOP_HEADER_BYTES_MAX;
        top = xmalloc(len + 2);
        memcpy(top, data, len);
        memcpy(top + len, "\r\n", 2);
        data = top;
        len += 2;
    }
    m = s_construct(data, len, &stream);
    if (m == NULL) {
        r->exceptions |= POLICY_EXC_MIME_MALFORMED;
        g_object_unref(stream);
        free(top);
        return r;
    }
    s_headers(&w, GMIME_OBJECT(m), true);
    if (!headers_only) {
        s_check_headers(&w, GMIME_OBJECT(m));
        if (g_mime_message_get_mime_part(m) != NULL) /* GMime keeps Content-* there */
            s_check_headers(&w, g_mime_message_get_mime_part(m));
    }
    if ((v = g_mime_message_get_subject(m)) != NULL)
        r->subject = xstrdup(v);
    if ((v = g_mime_message_get_message_id(m)) != NULL)
        r->message_id = xstrdup(v);
    if (!headers_only)
        s_walk(&w, g_mime_message_get_mime_part(m), 0);
    g_object_unref(m);
    g_object_unref(stream);
    free(top); /* the memory stream borrowed it */
    return r;
}

void mime_result_free(struct mime_result **mp)
{
    struct mime_result *r;

    if (mp == NULL || *mp == NULL)
        return;
    r = *mp;
    for (size_t i = 0; i < r->nheaders; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    for (size_t i = 0; i < r->nparts; i++) {
        free(r->parts[i].filename);
        free(r->parts[i].declared_type);
    }
    free(r->parts);
    for (size_t i = 0; i < r->ntexts; i++)
        free(r->texts[i]);
    free(r->texts);
    free(r->text_lens);
    for (size_t i = 0; i < r->nurls; i++)
        free(r->urls[i]);
    free(r->urls);
    free(r->subject);
    free(r->message_id);
    free(r->fparts);
    free(r);
    *mp = NULL;
}

void mime_facts_fill(struct mime_result *m, struct policy_facts *f)
{
    free(m->fparts);
    m->fparts = m->nparts > 0 ? xcalloc(m->nparts, sizeof *m->fparts) : NULL;
    for (size_t i = 0; i < m->nparts; i++) {
        m->fparts[i].filename = m->parts[i].filename;
        m->fparts[i].declared_type = m->parts[i].declared_type;
        m->fparts[i].detected_type = m->parts[i].detected_type;
        m->fparts[i].size = m->parts[i].size;
        m->fparts[i].depth = m->parts[i].depth;
    }
    f->headers = m->headers;
    f->nheaders = m->nheaders;
    f->parts = m->fparts;
    f->nparts = m->nparts;
    f->texts = (const char *const *)m->texts;
    f->text_lens = m->text_lens;
    f->ntexts = m->ntexts;
    f->exceptions |= m->exceptions;
}
