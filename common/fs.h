/* fs: file helpers with the durability rules of the mail path: atomic replace
 * (write temp, fsync, rename, fsync directory) and bounded whole-file reads. */
#ifndef PORTCULLIS_FS_H
#define PORTCULLIS_FS_H

#include <stddef.h>
#include <sys/types.h>

/* Replaces path with data atomically and durably; mode applies to the new file.
 * 0 ok, -1 with err filled. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                    size_t errlen);
/* Reads a whole file of at most max bytes into a NUL-terminated buffer (caller frees). */
int fs_read_file(const char *path, size_t max, char **data, size_t *len, char *err,
                 size_t errlen);
/* mkdir -p with mode for each created component. */
int fs_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen);
int fs_fsync_dir(const char *dir);

#endif
