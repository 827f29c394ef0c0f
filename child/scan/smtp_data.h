/* smtp_data: the DATA-phase decoder of the SMTP server. A pure byte-stream state machine: it
 * finds the "." terminator, undoes dot-stuffing, stores lines with CRLF ends and enforces the
 * message size and text line limits. No I/O.
 *
 * Only <CR><LF>.<CR><LF> ends a message (R8.5, Postfix's smtpd_forbid_bare_newline): a bare LF
 * or a bare CR is never part of an end of data, so "\n.\n" or "\r.\r\n" cannot smuggle a
 * second transaction past us. In reject mode such a message is refused after its true end; in
 * normalize mode every bare LF or CR becomes a CRLF line end, so that the relay's dot-stuffing
 * covers every line the downstream could see. */
#ifndef PORTCULLIS_SMTP_DATA_H
#define PORTCULLIS_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum smtp_data_status {
    SMTP_DATA_MORE, /* all input consumed, the terminator not yet seen */
    SMTP_DATA_END,  /* terminator seen; bytes after it are left to the caller */
};

enum smtp_bare_mode {
    SMTP_BARE_REJECT,    /* smtp.bare_newline = reject: the message is refused */
    SMTP_BARE_NORMALIZE, /* smtp.bare_newline = normalize: a bare LF/CR ends the line */
};

struct smtp_data {
    int state;          /* decoder state (private) */
    bool after_crlf;    /* the current line began after a CRLF (or at the start of data) */
    bool dot_can_end;   /* the "." being looked at began a line that may end the message */
    enum smtp_bare_mode mode;
    uint64_t size;      /* unstuffed message bytes seen, CRLF line ends included */
    uint64_t max_size;  /* more than this: too_big (smtp.max_message_size) */
    uint64_t line_len;  /* bytes of the current line so far, line end excluded */
    uint64_t max_line;  /* longer lines: line_too_long (smtp.max_line_length) */
    bool too_big;       /* the message is over max_size; nothing more is stored */
    bool line_too_long; /* a line was over max_line; nothing more is stored */
    bool bare_newline;  /* a bare LF or CR was seen (in reject mode nothing more is stored) */
};

void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint64_t max_line,
                    enum smtp_bare_mode mode);

/* Decodes in[0..len) and appends the message bytes to out. *consumed is how much of in was
 * used: all of it for SMTP_DATA_MORE, up to and including the terminator for SMTP_DATA_END.
 * Once the message breaks a limit, out is emptied and nothing more is appended, but the input
 * is still read to its end so that the reply falls in the right place. */
enum smtp_data_status smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
                                     size_t *consumed, struct evbuffer *out);

/* True when the message broke a limit or, in reject mode, held a bare LF/CR (the caller
 * rejects it after the end). */
bool smtp_data_over_limit(const struct smtp_data *d);

#endif
