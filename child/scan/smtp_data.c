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

static bool s_storing(const struct smtp_data *d) { return !d->too_big && !d->line_too_long; }

static void s_flush(struct s_out *o)
{
    if (o->n > 0 && s_storing(o->d))
        evbuffer_add(o->buf, o->tmp, o->n);
    o->n = 0;
}

/* One message byte (after unstuffing); counts it against the size limit. */
static void s_emit(struct s_out *o, char c)
{
    struct smtp_data *d = o->d;

    d->size++;
    if (d->size > d->max_size && !d->too_big) {
        d->too_big = true;
        o->n = 0;
        evbuffer_drain(o->buf, evbuffer_get_length(o->buf));
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
        o->n = 0;
        evbuffer_drain(o->buf, evbuffer_get_length(o->buf));
    }
}

static void s_line_end(struct s_out *o)
{
    s_emit(o, '\r');
    s_emit(o, '\n');
    o->d->line_len = 0;
    o->d->state = S_BOL;
}

/* A byte inside a line (state S_MID). */
static void s_mid(struct s_out *o, char c)
{
    if (c == '\r') {
        o->d->state = S_CR;
    } else if (c == '\n') {
        s_line_end(o); /* bare LF */
    } else {
        s_line_byte(o);
        s_emit(o, c);
    }
}

void smtp_data_init(struct smtp_data *d, uint64_t max_size, uint64_t max_line)
{
    memset(d, 0, sizeof *d);
    d->state = S_BOL;
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
            if (c == '.') {
                s_line_byte(&o);
                d->state = S_DOT;
            } else {
                d->state = S_MID;
                s_mid(&o, c);
            }
            break;
        case S_DOT:
            if (c == '\n') {
                goto end; /* ".\n": bare-LF terminator, tolerated */
            } else if (c == '\r') {
                d->state = S_DOT_CR;
            } else {
                d->state = S_MID; /* the leading dot was stuffing: drop it */
                s_mid(&o, c);
            }
            break;
        case S_DOT_CR:
            if (c == '\n')
                goto end;
            /* ".\r" then something else: dot dropped, the CR is a bare CR in the line. */
            d->state = S_CR;
            /* fall through */
        case S_CR:
            if (c == '\n') {
                s_line_end(&o);
            } else if (c == '\r') {
                s_line_byte(&o); /* the previous CR was bare; this one may end the line */
                s_emit(&o, '\r');
            } else {
                s_line_byte(&o);
                s_emit(&o, '\r');
                d->state = S_MID;
                s_mid(&o, c);
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

bool smtp_data_over_limit(const struct smtp_data *d) { return d->too_big || d->line_too_long; }
