/* usage: exact usage counters of one stored-mail directory (R5.9), shared by the processes
 * that change it — the scan service adds on every stored file, the manager subtracts on every
 * purge, deletion or release — through a small file `<dir>/.usage` mapped MAP_SHARED and
 * updated with atomic operations, so a check is O(1) and needs no walk. A crash between a
 * file operation and its counter update leaves drift; the manager's background walk measures
 * the truth and corrects it with usage_set (and reports the drift). */
#ifndef PORTCULLIS_USAGE_H
#define PORTCULLIS_USAGE_H

#include <stddef.h>
#include <stdint.h>

#define USAGE_FILE ".usage" /* inside the directory; walks skip it */

typedef struct usage usage_t;

/* Opens (creating, 0600, zeroed) the counter file of dir. NULL with err filled. */
usage_t *usage_open(const char *dir, char *err, size_t errlen);
void usage_close(usage_t **up);

/* Adds a signed delta (a stored file: +size, +1; a removed one: -size, -1); never below 0. */
void usage_add(usage_t *u, int64_t bytes, int64_t files);
void usage_get(const usage_t *u, uint64_t *bytes, uint64_t *files);
/* Replaces both counters with a walk's result. */
void usage_set(usage_t *u, uint64_t bytes, uint64_t files);

#endif
