/* store: quarantine and archive files (R5.6): <base>/<area-dir>/<YYYYMMDDHH UTC>/<file_id>.eml,
 * mode 0600 in 0700 directories; the file, its directory and the bucket's parent are fsynced
 * before store_write returns, so a 250 resting on the file is durable (R1.2). */
#ifndef PORTCULLIS_STORE_H
#define PORTCULLIS_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_FILE_ID_BYTES 16   /* random bytes of a file id: 32 hex characters */
#define STORE_PATH_MAX 4096

struct store_file {
    char area[128];
    const char *kind;                          /* "quarantine" or "archive" (static) */
    char file_id[2 * STORE_FILE_ID_BYTES + 1];
    char bucket[11];                           /* YYYYMMDDHH */
    char path[STORE_PATH_MAX];
    uint64_t size;
    struct usage *usage;                       /* the base's counters (R5.9); may be NULL */
};

/* 0 ok (out filled), -1 with err filled; nothing is left behind on failure. */
int store_write(const char *base, const char *area, const char *kind, const void *data,
                size_t len, uint64_t when_ms, struct store_file *out, char *err, size_t errlen);
/* Removes a file written but not indexed (the message will come again). */
void store_remove(const struct store_file *f);

#endif
