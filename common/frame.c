/* frame: see frame.h. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void frame_reader_init(struct frame_reader *r, size_t max)
{
    memset(r, 0, sizeof *r);
    r->max = max;
}

void frame_reader_free(struct frame_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

void frame_reader_push(struct frame_reader *r, const void *data, size_t n)
{
    /* Compact what was handed out before growing. */
    if (r->consumed > 0) {
        memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
        r->len -= r->consumed;
        r->consumed = 0;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        r->buf = xrealloc(r->buf, cap);
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, n);
    r->len += n;
}

int frame_reader_next(struct frame_reader *r, const uint8_t **frame, size_t *len)
{
    size_t avail = r->len - r->consumed;
    const uint8_t *p = r->buf + r->consumed;
    uint32_t n;

    if (avail < FRAME_HEADER_LEN)
        return 0;
    n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (n > r->max)
        return -1;
    if (avail - FRAME_HEADER_LEN < n)
        return 0;
    *frame = p + FRAME_HEADER_LEN;
    *len = n;
    r->consumed += FRAME_HEADER_LEN + n;
    return 1;
}

void frame_header(uint8_t hdr[FRAME_HEADER_LEN], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}
