/* storepath: names inside a stored-mail directory (R5.6): <base>/<area-dir>/<YYYYMMDDHH>/
 * <file_id>.eml. Pure checks and conversions shared by the child's command handlers (which
 * must never leave the store directory whatever a command says) and the parent's
 * reconciliation (which maps an area directory back to its area). */
#ifndef PORTCULLIS_STOREPATH_H
#define PORTCULLIS_STOREPATH_H

#include <stdbool.h>
#include <stddef.h>

#define STOREPATH_FILE_ID_LEN 32    /* hex characters of a file id */
#define STOREPATH_BUCKET_LEN 10     /* YYYYMMDDHH */
#define STOREPATH_AREA_DIR_MAX 64   /* bytes of an area directory name */
#define STOREPATH_REL_MAX (STOREPATH_AREA_DIR_MAX + STOREPATH_BUCKET_LEN + STOREPATH_FILE_ID_LEN + 3)

/* 32 lowercase hex digits. */
bool storepath_file_id_valid(const char *s);
/* 10 digits forming a plausible YYYYMMDDHH. */
bool storepath_bucket_valid(const char *s);
/* What storepath_area_dir makes: [a-z0-9_]*, '-', 8 lowercase hex; no '/', no leading '.'. */
bool storepath_area_dir_valid(const char *s);
/* "<file_id>.eml" → file_id (out: STOREPATH_FILE_ID_LEN + 1 bytes); false for anything else. */
bool storepath_file_name(const char *name, char *out);
/* The directory name of an area: lowercase alnum and '_', '-', 8 hex of FNV-1a of the exact
 * name. The scan service's stores, the manager and the parent's reconciliation all use it. */
void storepath_area_dir(const char *area, char *out, size_t n);
/* "area-dir/bucket/file_id" → its parts, each checked. 0 ok, -1 malformed. */
int storepath_rel_parse(const char *rel, char *area_dir, char *bucket, char *file_id);

#endif
