/* hdrpeek: the few header fields a reconciliation needs to index a stored file that has no
 * index row (R5.3): From, To/Cc, Subject, read from the head of the message. Pure and
 * bounded; not a MIME parser (encoded words stay encoded), every byte outside printable
 * ASCII becomes '?', so the result is always valid text for the database. */
#ifndef PORTCULLIS_HDRPEEK_H
#define PORTCULLIS_HDRPEEK_H

#include <stddef.h>

#define HDRPEEK_ADDR_MAX 320     /* bytes of one address (RFC 5321 path limits, rounded) */
#define HDRPEEK_RCPT_MAX 100     /* recipients taken from To and Cc */
#define HDRPEEK_SUBJECT_MAX 998  /* bytes of the subject (RFC 5322 line limit) */
#define HDRPEEK_FIELD_MAX 16384  /* bytes of one unfolded header field considered */

struct hdrpeek {
    char sender[HDRPEEK_ADDR_MAX + 1];
    char subject[HDRPEEK_SUBJECT_MAX + 1];
    char rcpts[HDRPEEK_RCPT_MAX][HDRPEEK_ADDR_MAX + 1];
    size_t nrcpts;
};

/* Reads the header block at the start of buf (stops at the first empty line or at len). */
void hdrpeek_parse(const char *buf, size_t len, struct hdrpeek *out);

#endif
