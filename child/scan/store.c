/* store: writes quarantine and archive message files durably (R1.2, R5.6). A file is written
 * under a temporary name, fsynced, renamed to <file_id>.eml, and its directory fsynced (and the
 * parent of a bucket directory this call created), so that the 250 that follows rests on it. */
#include "scan/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storepath.h"

#include "fs.h"
#include "log.h"
#include "usage.h"
#include "util.h"

#define STORE_USAGE_DIRS 4 /* stored-mail bases with counters: quarantine and archive */

/* The usage counters (R5.9) of each base directory, opened at its first write and kept for
 * the life of the process; scan threads share them (the adds themselves are atomic). */
static struct {
    pthread_mutex_t mu;
    char base[STORE_USAGE_DIRS][STORE_PATH_MAX / 2];
    usage_t *u[STORE_USAGE_DIRS];
    unsigned n;
    bool warned;
} s_usage = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* NULL when the counters cannot be opened: mail still flows, the manager's verification walk
 * finds the drift and corrects it. */
static usage_t *s_usage_of(const char *base)
{
    usage_t *u = NULL;
    char err[512];

    pthread_mutex_lock(&s_usage.mu);
    for (unsigned i = 0; i < s_usage.n && u == NULL; i++)
        if (strcmp(s_usage.base[i], base) == 0)
            u = s_usage.u[i];
    if (u == NULL && s_usage.n < STORE_USAGE_DIRS) {
        if ((u = usage_open(base, err, sizeof err)) != NULL) {
            strlcpy_p(s_usage.base[s_usage.n], base, sizeof s_usage.base[0]);
            s_usage.u[s_usage.n++] = u;
        } else if (!s_usage.warned) {
            log_err("usage counters of %s: %s; stored files are not counted until the "
                    "manager's verification walk", base, err);
            s_usage.warned = true;
        }
    }
    pthread_mutex_unlock(&s_usage.mu);
    return u;
}

/* mkdir one level (0770: the manager purges and releases what the scan service stores, R8.1);
 * *made tells whether this call created it. */
static int s_mkdir(const char *path, bool *made, char *err, size_t errlen)
{
    *made = false;
    if (mkdir(path, 0770) == 0) {
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
    char adir[STOREPATH_AREA_DIR_MAX + 1], area_path[STORE_PATH_MAX - 256];
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
    storepath_area_dir(area, adir, sizeof adir);
    if (strlen(base) > STORE_PATH_MAX - 512) {
        snprintf(err, errlen, "directory name too long");
        return -1;
    }
    if (fs_mkdir_p(base, 0770, err, errlen) != 0)
        return -1;
    snprintf(area_path, sizeof area_path, "%.3500s/%s", base, adir);
    snprintf(bucket_path, sizeof bucket_path, "%s/%s", area_path, out->bucket);
    if (s_mkdir(area_path, &made_area, err, errlen) != 0 ||
        s_mkdir(bucket_path, &made_bucket, err, errlen) != 0)
        return -1;
    snprintf(out->path, sizeof out->path, "%s/%s.eml", bucket_path, out->file_id);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", bucket_path, out->file_id);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640); /* the manager reads */
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
    out->usage = s_usage_of(base);
    usage_add(out->usage, (int64_t)len, 1);
    return 0;
}

void store_remove(const struct store_file *f)
{
    if (f->path[0] == '\0')
        return;
    if (unlink(f->path) == 0)
        usage_add(f->usage, -(int64_t)f->size, -1);
    else if (errno != ENOENT)
        log_warn("cannot remove %s: %s", f->path, strerror(errno));
}
