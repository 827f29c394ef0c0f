/* mime: one message parsed with GMime into what rules look at: top-level headers (unfolded,
 * RFC 2047 decoded), parts (names, declared and detected types, decoded sizes, depth), decoded
 * text bodies and the URLs in them. Every limit (mime.* settings) is checked where the bytes
 * are read; going past one sets a POLICY_EXC_MIME_* bit and stops descending, never more. */
#ifndef PORTCULLIS_MIME_H
#define PORTCULLIS_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define MIME_CONTAINERS_MAX 2000 /* multipart and message/rfc822 headers handed to GMime: its
                                  * parser recurses once per level, so this bounds its stack */
#define MIME_HEADER_FIELDS_MAX 20000 /* header-field lines anywhere in a message handed to
                                      * GMime (it builds an object for each: ~700 bytes) */
#define MIME_TOP_HEADER_BYTES_MAX (4u << 20) /* bytes of the top-level header block handed over */
#define MIME_URLS_MAX 256        /* URLs kept per message */
#define MIME_URL_MAX 2048        /* bytes of one URL; longer ones are cut */
#define MIME_TEXT_ATTACHMENT_MAX (256u * 1024) /* bytes of a text attachment body rules read */
#define MIME_MAGIC_BYTES 512     /* decoded bytes of a part kept for type detection */
#define MIME_BOUNDARY_MAX 70      /* bytes of a boundary (RFC 2046); longer ones are ambiguous */
#define MIME_STACK_BYTES (32u << 20) /* stack size scan threads need for the deepest parse */

struct mime_limits {
    unsigned max_depth;        /* mime.max_depth */
    unsigned max_parts;        /* mime.max_parts */
    uint64_t max_decoded_size; /* mime.max_decoded_size */
    unsigned max_headers;      /* mime.max_headers (per part) */
    uint64_t max_header_length;/* mime.max_header_length */
};

struct mime_part {
    char *filename;             /* NULL if none */
    char *declared_type;        /* lowercase "type/subtype" */
    const char *detected_type;  /* static string from the magic table; NULL if unknown */
    uint64_t size;              /* decoded bytes */
    unsigned depth;             /* 0: the message itself */
    bool hashed;                /* sha256 set: the part was decoded whole */
    unsigned char sha256[32];   /* SHA-256 of the decoded content (smart scan look-ups, R2.1) */
};

struct mime_result {
    struct policy_header *headers; /* top level; name and value owned */
    size_t nheaders;
    struct mime_part *parts;
    size_t nparts;
    char **texts;               /* decoded text/plain and text/html bodies, UTF-8 */
    size_t *text_lens;
    size_t ntexts;
    char **urls;
    size_t nurls;
    char *subject;              /* decoded; NULL if absent */
    char *message_id;           /* without <>; NULL if absent */
    unsigned exceptions;        /* POLICY_EXC_MIME_* */
    uint64_t decoded_total;
    struct policy_part *fparts; /* views for policy_facts */
};

/* Once, before any thread starts (g_mime_init). */
void mime_init(void);
/* Never NULL: malformed input gives a result with what could be read and an exception bit. */
struct mime_result *mime_parse(const char *data, size_t len, const struct mime_limits *lim);

/* Each decoded leaf part (base64/QP/uuencode undone by GMime, yEnc by us), while it is in
 * memory: the scan service hands it to ClamAV, so that GMime's reading of the structure is
 * scanned as well as ClamAV's own (issue 11 point 5). */
typedef void mime_part_fn(void *arg, const unsigned char *data, size_t len,
                          const char *filename);
/* mime_parse, calling part for every decoded part (NULL: none). The result's exceptions get
 * POLICY_EXC_MIME_AMBIGUOUS when the structure can be read two ways: a header that decides
 * the structure given twice (Content-Type, Content-Transfer-Encoding, Content-Disposition), a
 * boundary parameter twice or outside Content-Type, a boundary that breaks RFC 2046's grammar
 * or is a prefix of an enclosing one, a multipart without its close delimiter, or an encoding
 * on a multipart or message/rfc822 part that RFC 2045 forbids there. */
struct mime_result *mime_parse_scan(const char *data, size_t len, const struct mime_limits *lim,
                                    mime_part_fn *part, void *arg);
void mime_result_free(struct mime_result **mp);
/* Fills the MIME facts of f (headers, parts, texts, exceptions |=); borrowed from m. */
void mime_facts_fill(struct mime_result *m, struct policy_facts *f);
/* Content type from the first bytes of a decoded part; NULL if unknown. */
const char *mime_detect_type(const unsigned char *p, size_t n);

#endif
