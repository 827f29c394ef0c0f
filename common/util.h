/* util: allocation that aborts on exhaustion (input limits make OOM a bug, not an attack),
 * clocks, and small string helpers shared by every process. */
#ifndef PORTCULLIS_UTIL_H
#define PORTCULLIS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

uint64_t now_ms(void);      /* CLOCK_MONOTONIC, for intervals and deadlines */
uint64_t wall_ms(void);     /* CLOCK_REALTIME, for display and records */
struct timespec;
/* The CLOCK_REALTIME instant ms from now, for pthread_cond_timedwait. */
void deadline_after_ms(struct timespec *ts, unsigned ms);

/* Parses a whole decimal integer (optional sign); 0 ok, -1 on junk or overflow. */
int parse_int64(const char *s, int64_t *out);

/* Copies at most size-1 bytes and always terminates; returns strlen(src). */
size_t strlcpy_p(char *dst, const char *src, size_t size);

/* Random bytes as lowercase hex: out must hold 2*nbytes+1. */
void random_hex(char *out, size_t nbytes);

/* Raises the soft open-files limit to the hard one (R8.8: every listener counts its
 * connections, but a daemon should not run out of files first); logs what it got. */
void raise_nofile_limit(void);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
