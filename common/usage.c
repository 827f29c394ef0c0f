/* usage: see usage.h. The counter file is one small struct mapped MAP_SHARED by every process
 * that opens it; the kernel keeps one page for all of them, so an atomic add in the scan
 * service is seen at once by the manager. Writes reach the disk with normal page write-back:
 * a machine crash may lose the last updates, which the manager's verification walk repairs. */
#include "usage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "util.h"

#define USAGE_MAGIC 0x3153474153550a50ull /* "P\nUSAGS1": format of the mapped struct */

/* The file's layout. Fields only ever change with __atomic builtins. */
struct usage_file {
    uint64_t magic;
    uint64_t bytes;
    uint64_t files;
    uint64_t reserved[5]; /* room to grow without a new format: one cache line in all */
};

struct usage {
    struct usage_file *f;
};

usage_t *usage_open(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    struct usage_file *f;
    uint64_t zero = 0;
    usage_t *u;
    int fd;

    if (fs_mkdir_p(dir, 0770, err, errlen) != 0)
        return NULL;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, USAGE_FILE) >= sizeof path) {
        snprintf(err, errlen, "%s: path too long", dir);
        return NULL;
    }
    /* 0660: the scan service adds, the manager subtracts (R8.1), whatever their umasks */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return NULL;
    }
    (void)fchmod(fd, 0660);
    /* Growing an empty or short file fills it with zeros; two processes racing here both
     * truncate to the same size, and a file already in use is never shrunk. */
    if (fstat(fd, &st) != 0 ||
        ((size_t)st.st_size < sizeof *f && ftruncate(fd, (off_t)sizeof *f) != 0)) {
        snprintf(err, errlen, "size %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd); /* the mapping keeps the file */
    if (f == MAP_FAILED) {
        snprintf(err, errlen, "mmap %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!__atomic_compare_exchange_n(&f->magic, &zero, USAGE_MAGIC, false, __ATOMIC_SEQ_CST,
                                     __ATOMIC_SEQ_CST) &&
        zero != USAGE_MAGIC) {
        snprintf(err, errlen, "%s is not a usage counter file (remove it: the next "
                 "verification walk rebuilds it)", path);
        munmap(f, sizeof *f);
        return NULL;
    }
    u = xcalloc(1, sizeof *u);
    u->f = f;
    return u;
}

void usage_close(usage_t **up)
{
    if (up == NULL || *up == NULL)
        return;
    munmap((*up)->f, sizeof *(*up)->f);
    free(*up);
    *up = NULL;
}

/* Adds delta to *p, clamping at 0: a removal counted twice (or a counter just reset) must not
 * wrap to 2^64 and look like a full disk. */
static void s_add_clamped(uint64_t *p, int64_t delta)
{
    uint64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED), next;
    /* |delta| without overflow at INT64_MIN */
    uint64_t mag = delta >= 0 ? (uint64_t)delta : (uint64_t)(-(delta + 1)) + 1;

    do
        next = delta >= 0 ? cur + mag : (mag > cur ? 0 : cur - mag);
    while (!__atomic_compare_exchange_n(p, &cur, next, true, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
}

void usage_add(usage_t *u, int64_t bytes, int64_t files)
{
    if (u == NULL)
        return;
    if (bytes != 0)
        s_add_clamped(&u->f->bytes, bytes);
    if (files != 0)
        s_add_clamped(&u->f->files, files);
}

void usage_get(const usage_t *u, uint64_t *bytes, uint64_t *files)
{
    if (u == NULL) {
        *bytes = *files = 0;
        return;
    }
    *bytes = __atomic_load_n(&u->f->bytes, __ATOMIC_SEQ_CST);
    *files = __atomic_load_n(&u->f->files, __ATOMIC_SEQ_CST);
}

void usage_set(usage_t *u, uint64_t bytes, uint64_t files)
{
    if (u == NULL)
        return;
    __atomic_store_n(&u->f->bytes, bytes, __ATOMIC_SEQ_CST);
    __atomic_store_n(&u->f->files, files, __ATOMIC_SEQ_CST);
}
