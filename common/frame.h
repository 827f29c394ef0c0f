/* frame: length-prefixed frames on a byte stream (the manager <-> scan service socket pair).
 * Each frame is a 4-byte big-endian length followed by that many bytes. The reader is a pure
 * accumulator so it can be fed from poll(2) loops and libevent alike, and unit-tested. */
#ifndef PORTCULLIS_FRAME_H
#define PORTCULLIS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_LEN 4
#define FRAME_MAX (4u * 1024 * 1024) /* bytes: one Envelope; config snapshots are far smaller */

struct frame_reader {
    uint8_t *buf;
    size_t len, cap;
    size_t max;     /* largest frame accepted */
    size_t consumed; /* bytes of buf already handed out */
};

void frame_reader_init(struct frame_reader *r, size_t max);
void frame_reader_free(struct frame_reader *r);
void frame_reader_push(struct frame_reader *r, const void *data, size_t n);
/* 1: frame and len point at the next frame (valid until the next push/next call);
 * 0: need more bytes; -1: a frame announced a length over max (stream is unusable). */
int frame_reader_next(struct frame_reader *r, const uint8_t **frame, size_t *len);

void frame_header(uint8_t hdr[FRAME_HEADER_LEN], uint32_t len);

#endif
