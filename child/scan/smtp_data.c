/* smtp_data: see smtp_data.h. The decoder handles one byte at a time through a five-state
 * machine and batches output in a small local buffer, so its speed does not depend on how the
 * peer's bytes are split across reads. */
#include "scan/smtp_data.h"

#include <event2/buffer.h>
#include <string.h>

enum {
    S_BOL,    /* at the beginning of a line */
    S_DOT,    /* line began with "." */
    S_DOT_CR, /* line began with ".\r" */
    S_MID,    /* inside a line */
    S_CR,     /* inside a line, after "\r" */
};

#define S_BATCH 4096 /* bytes: output collected before one evbuffer_add() */

struct s_out {
    struct smtp_data *d;
    struct evbuffer *buf;
    char tmp[S_BATCH];
    size_t n;
};

static bool s_storing(const struct smtp_data *d)
{
    return !d->too_big && !d->line_too_long &&
           !(d->bare_newline && d->mode == SMTP_BARE_REJECT);
}

static void s_flush(struct s_out *o)
{
    if (o->n > 0 && s_storing(o->d))
        evbuffer_add(o->buf, o->tmp, o->n);
    o->n = 0;
}

/* The message will be refused: what was stored goes. */
static void s_discard(struct s_out *o)
{
    o->n = 0;
    evbuffer_drain(o->buf, evbuffer_get_length(o->buf));
}

/* One message byte (after unstuffing); counts it against the size limit. */
static void s_emit(struct s_out *o, char c)
{
    struct smtp_data *d = o->d;

    d->size++;
    if (d->size > d->max_size && !d->too_big) {
        d->too_big = true;
        s_discard(o);
    }
    if (!s_storing(d))
        return;
    o->tmp[o->n++] = c;
    if (o->n == sizeof o->tmp)
        s_flush(o);
}

static void s_line_byte(struct s_out *o)
{
    struct smtp_data *d = o->d;

    if (++d->line_len > d->max_line && !d->line_too_long) {
        d->line_too_long = true;
        s_discard(o);
    }
}

/* A line ends: with a CRLF (crlf) or a bare LF/CR. Stored as CRLF either way; only a line
 * after a CRLF may be the terminator. */
static void s_line_end(struct s_out *o, bool crlf)
{
    struct smtp_data *d = o->d;

    if (!crlf && !d->bare_newline) {
        d->bare_newline = true;
        if (d->mode == SMTP_BARE_REJECT)
            s_discard(o);
    }
    s_emit(o, '\r');
    s_emit(o, '\n');
    d->line_len = 0;
    d->after_crlf = crlf;
    d->state = S_BOL;
}

/* A byte inside a line (state S_MID). */
static void s_mid(struct s_out *o, char c)
{
    if (c == '\r') {
        o->d->state = S_CR;
    } else if (c == '\n') {
        s_line_end(o, false); /* bare LF */
    } else {
        s_line_byte(o);
        s_emit(o, c);
    }
}

/* A byte at the beginning of a line (state S_BOL). */
static void s_bol(struct s_out *o, char c)
{
    struct smtp_data *d = o->d;

    if (c == '.') {
        s_line_byte(o);
        d->dot_can_end = d->after_crlf;
        d->state = S_DOT;
    } else {
        d->state = S_MID;
        s_mid(o, c);
    }
}

/* A line that is a lone "." but not the terminator: the dot is content. */
static void s_lone_dot(struct s_out *o, bool crlf)
{
    s_emit(o, '.');
    s_line_end(o, crlf);
}

void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint64_t max_line,
                    enum smtp_bare_mode mode)
{
    memset(d, 0, sizeof *d);
    d->state = S_BOL;
    d->after_crlf = true; /* the DATA command line ended with a CRLF */
    d->mode = mode;
    d->max_size = max_size;
    d->max_line = max_line;
}

enum smtp_data_status smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
                                     size_t *consumed, struct evbuffer *out)
{
    struct s_out o = { .d = d, .buf = out, .n = 0 };

    for (size_t i = 0; i < len; i++) {
        char c = in[i];

        switch (d->state) {
        case S_BOL:
            s_bol(&o, c);
            break;
        case S_DOT:
            if (c == '\n') {
                s_lone_dot(&o, false); /* ".\n": never an end of data */
            } else if (c == '\r') {
                d->state = S_DOT_CR;
            } else {
                d->state = S_MID; /* the leading dot was stuffing: drop it */
                s_mid(&o, c);
            }
            break;
        case S_DOT_CR:
            if (c == '\n') {
                if (d->dot_can_end)
                    goto end;
                s_lone_dot(&o, true); /* "\n.\r\n" after a bare LF: content */
                break;
            }
            s_lone_dot(&o, false); /* ".\r" then something else: a bare CR */
            s_bol(&o, c);
            break;
        case S_CR:
            if (c == '\n') {
                s_line_end(&o, true);
            } else if (c == '\r') {
                s_line_end(&o, false); /* the previous CR was bare; this one may end a line */
                d->state = S_CR;
            } else {
                s_line_end(&o, false); /* bare CR */
                s_bol(&o, c);
            }
            break;
        default: /* S_MID */
            s_mid(&o, c);
            break;
        }
        continue;
    end:
        s_flush(&o);
        d->state = S_BOL;
        *consumed = i + 1;
        return SMTP_DATA_END;
    }
    s_flush(&o);
    *consumed = len;
    return SMTP_DATA_MORE;
}

bool smtp_data_over_limit(const struct smtp_data *d)
{
    return d->too_big || d->line_too_long || (d->bare_newline && d->mode == SMTP_BARE_REJECT);
}
