/* store: writes quarantine and archive message files durably (R1.2, R5.6). A file is written
 * under a temporary name, fsynced, renamed to <file_id>.eml, and its directory fsynced (and the
 * parent of a bucket directory this call created), so that the 250 that follows rests on it. */
#include "scan/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "util.h"

void store_area_dir(const char *area, char *out, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a of the exact name: distinct names stay distinct */
    size_t i = 0;

    for (const unsigned char *p = (const unsigned char *)area; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    for (const unsigned char *p = (const unsigned char *)area;
         *p != '\0' && i + 10 < n && i < STORE_AREA_DIR_MAX - 10; p++)
        out[i++] = isalnum(*p) && *p < 0x80 ? (char)tolower(*p) : '_';
    snprintf(out + i, n - i, "-%08x", h);
}

/* mkdir one level (0700); *made tells whether this call created it. */
static int s_mkdir(const char *path, bool *made, char *err, size_t errlen)
{
    *made = false;
    if (mkdir(path, 0700) == 0) {
        *made = true;
        return 0;
    }
    if (errno == EEXIST)
        return 0;
    snprintf(err, errlen, "mkdir %s: %s", path, strerror(errno));
    return -1;
}

static int s_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int store_write(const char *base, const char *area, const char *kind, const void *data,
                size_t len, uint64_t when_ms, struct store_file *out, char *err, size_t errlen)
{
    char adir[STORE_AREA_DIR_MAX + 1], area_path[STORE_PATH_MAX - 256];
    char bucket_path[STORE_PATH_MAX - 128], tmp[STORE_PATH_MAX];
    time_t t = (time_t)(when_ms / 1000);
    struct tm tm;
    bool made_area = false, made_bucket = false;
    int fd;

    memset(out, 0, sizeof *out);
    strlcpy_p(out->area, area, sizeof out->area);
    out->kind = strcmp(kind, "archive") == 0 ? "archive" : "quarantine";
    gmtime_r(&t, &tm);
    strftime(out->bucket, sizeof out->bucket, "%Y%m%d%H", &tm);
    random_hex(out->file_id, STORE_FILE_ID_BYTES);
    store_area_dir(area, adir, sizeof adir);
    if (strlen(base) > STORE_PATH_MAX - 512) {
        snprintf(err, errlen, "directory name too long");
        return -1;
    }
    if (fs_mkdir_p(base, 0700, err, errlen) != 0)
        return -1;
    snprintf(area_path, sizeof area_path, "%.3500s/%s", base, adir);
    snprintf(bucket_path, sizeof bucket_path, "%s/%s", area_path, out->bucket);
    if (s_mkdir(area_path, &made_area, err, errlen) != 0 ||
        s_mkdir(bucket_path, &made_bucket, err, errlen) != 0)
        return -1;
    snprintf(out->path, sizeof out->path, "%s/%s.eml", bucket_path, out->file_id);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", bucket_path, out->file_id);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (s_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (rename(tmp, out->path) != 0) {
        snprintf(err, errlen, "rename %s: %s", out->path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* The bucket's parent is synced every time, not only by the thread that made the bucket:
     * another thread's 250 may otherwise rest on an entry not yet durable. */
    if (fs_fsync_dir(bucket_path) != 0 || fs_fsync_dir(area_path) != 0 ||
        (made_area && fs_fsync_dir(base) != 0)) {
        snprintf(err, errlen, "fsync directory of %s: %s", out->path, strerror(errno));
        unlink(out->path);
        return -1;
    }
    out->size = len;
    return 0;
}

void store_remove(const struct store_file *f)
{
    if (f->path[0] != '\0' && unlink(f->path) != 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", f->path, strerror(errno));
}
