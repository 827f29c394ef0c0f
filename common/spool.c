/* spool: see spool.h. A segment is seg-<first seq, 20 digits>.log holding frames
 *   magic u32 | len u32 | seq u64 | crc32c u32 | packed Report (len bytes)
 * little-endian, the CRC-32C over len, seq and the payload. Sequence numbers are contiguous,
 * so a segment's last seq is the next segment's first minus one: trim needs names only. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "util.h"

#define SPOOL_MAGIC 0x31535050u        /* "PPS1" on disk */
#define SPOOL_HEADER_LEN 20            /* bytes before the payload */
#define SPOOL_FULL_LOG_MS 60000        /* "spool full" is logged at most this often */
#define SPOOL_DISK_RECHECK_MS 1000     /* a full writer re-counts the directory this often */
#define SPOOL_SEG_NAME_LEN 28          /* "seg-" + 20 digits + ".log" */

struct spool_writer {
    char *dir;
    int lockfd, fd;
    uint64_t seg_first, seg_size, next_seq, disk_bytes;
    uint64_t disk_checked_ms, full_logged_ms;
    bool dirty;
};

struct cursor {
    uint64_t seg;      /* first seq of the segment (its name); 0: none */
    uint64_t off;      /* byte offset of the next frame in it */
    uint64_t seq;      /* last seq passed */
};

struct spool_reader {
    char *dir;
    char epoch[SPOOL_EPOCH_LEN + 1];
    struct cursor rd, tail;
    uint8_t *buf;
    size_t cap;
    uint64_t corrupt_logged_seg;
};

/* --- CRC-32C (Castagnoli), table-driven ------------------------------------------------------ */

static uint32_t s_crc_table[256];

static uint32_t s_crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
    if (s_crc_table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            s_crc_table[i] = c;
        }
    }
    crc = ~crc;
    while (n--)
        crc = s_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t s_get64(const uint8_t *p) { return s_get32(p) | (uint64_t)s_get32(p + 4) << 32; }

static uint32_t s_frame_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    return s_crc32c(s_crc32c(0, hdr + 4, 12), payload, len);
}

/* --- directory: segments and the epoch ------------------------------------------------------ */

static void s_seg_path(const char *dir, uint64_t first, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/seg-%020" PRIu64 ".log", dir, first);
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* First seqs of the segments, ascending (caller frees *firsts). 0 ok, -1 with errno. */
static int s_segments(const char *dir, uint64_t **firsts, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t cap = 0;

    *firsts = NULL;
    *n = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        const char *s = de->d_name;
        uint64_t v = 0;
        size_t i;
        if (strlen(s) != SPOOL_SEG_NAME_LEN || strncmp(s, "seg-", 4) != 0 ||
            strcmp(s + 24, ".log") != 0)
            continue;
        for (i = 4; i < 24 && s[i] >= '0' && s[i] <= '9'; i++)
            v = v * 10 + (uint64_t)(s[i] - '0');
        if (i != 24 || v == 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *firsts = xrealloc(*firsts, cap * sizeof **firsts);
        }
        (*firsts)[(*n)++] = v;
    }
    closedir(d);
    if (*n > 1)
        qsort(*firsts, *n, sizeof **firsts, s_cmp_u64);
    return 0;
}

static bool s_epoch_valid(const char *s, size_t len)
{
    if (len != SPOOL_EPOCH_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int s_epoch_read(const char *path, char *out, char *err, size_t errlen)
{
    char *data;
    size_t len;

    if (fs_read_file(path, 256, &data, &len, err, errlen) != 0)
        return -1;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
        len--;
    if (!s_epoch_valid(data, len)) {
        snprintf(err, errlen, "%s: not %d hex characters", path, SPOOL_EPOCH_LEN);
        free(data);
        return -1;
    }
    memcpy(out, data, SPOOL_EPOCH_LEN);
    out[SPOOL_EPOCH_LEN] = '\0';
    free(data);
    return 0;
}

/* Creates the directory and its EPOCH if absent. The writer and the reader may race to make
 * the epoch: it is written to a temporary file and linked into place, so the first one wins
 * and both read the same value. */
static int s_dir_prepare(const char *dir, char *epoch, char *err, size_t errlen)
{
    char path[4096], tmp[4200], val[SPOOL_EPOCH_LEN + 2], rnd[17];
    int fd;

    /* group portcullis: the scan service writes, its manager ships and removes (R8.1) */
    if (fs_mkdir_p(dir, 0770, err, errlen) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/EPOCH", dir);
    if (access(path, F_OK) == 0)
        return s_epoch_read(path, epoch, err, errlen);
    random_hex(val, SPOOL_EPOCH_LEN / 2);
    val[SPOOL_EPOCH_LEN] = '\n';
    random_hex(rnd, 8);
    snprintf(tmp, sizeof tmp, "%s/EPOCH.tmp.%s", dir, rnd);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 || write(fd, val, SPOOL_EPOCH_LEN + 1) != SPOOL_EPOCH_LEN + 1 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return -1;
    }
    close(fd);
    if (link(tmp, path) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    unlink(tmp);
    fs_fsync_dir(dir);
    return s_epoch_read(path, epoch, err, errlen);
}

/* --- frames ------------------------------------------------------------------------------- */

enum frame_result { FRAME_END, FRAME_OK, FRAME_BAD };

/* Reads the frame at off (file size size). FRAME_OK: *payload (in *buf) and *len, *seq;
 * FRAME_END: off is the end of the file; FRAME_BAD: incomplete or corrupt. With check false
 * only the header is read (depth counting): the CRC is not verified. */
static enum frame_result s_frame_at(int fd, uint64_t off, uint64_t size, bool check,
                                    uint8_t **buf, size_t *cap, uint32_t *len, uint64_t *seq)
{
    uint8_t hdr[SPOOL_HEADER_LEN];

    if (off == size)
        return FRAME_END;
    if (size - off < SPOOL_HEADER_LEN ||
        pread(fd, hdr, sizeof hdr, (off_t)off) != (ssize_t)sizeof hdr)
        return FRAME_BAD;
    *len = s_get32(hdr + 4);
    *seq = s_get64(hdr + 8);
    if (s_get32(hdr) != SPOOL_MAGIC || *len > SPOOL_RECORD_MAX || *seq == 0 ||
        size - off - SPOOL_HEADER_LEN < *len)
        return FRAME_BAD;
    if (!check)
        return FRAME_OK;
    if (*cap < *len || *buf == NULL) {
        *cap = *len > 4096 ? *len : 4096;
        *buf = xrealloc(*buf, *cap);
    }
    if (pread(fd, *buf, *len, (off_t)(off + SPOOL_HEADER_LEN)) != (ssize_t)*len ||
        s_frame_crc(hdr, *buf, *len) != s_get32(hdr + 16))
        return FRAME_BAD;
    return FRAME_OK;
}

static uint64_t s_dir_bytes(const char *dir, const uint64_t *firsts, size_t n)
{
    char path[4096];
    struct stat st;
    uint64_t total = 0;

    for (size_t i = 0; i < n; i++) {
        s_seg_path(dir, firsts[i], path, sizeof path);
        if (stat(path, &st) == 0)
            total += (uint64_t)st.st_size;
    }
    return total;
}

/* --- writer ------------------------------------------------------------------------------- */

/* Keeps the valid prefix of the newest segment (cutting a torn or corrupt tail) and positions
 * the writer after it. */
static int s_writer_recover(spool_writer_t *w, uint64_t first, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t off = 0, last = first - 1, seq;
    uint32_t len;
    enum frame_result fr;

    s_seg_path(w->dir, first, path, sizeof path);
    w->fd = open(path, O_RDWR | O_CLOEXEC);
    if (w->fd < 0 || fstat(w->fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while ((fr = s_frame_at(w->fd, off, (uint64_t)st.st_size, true, &buf, &cap, &len, &seq)) ==
           FRAME_OK) {
        if (seq != last + 1)
            break; /* out of sequence: treated as the start of the damage */
        last = seq;
        off += SPOOL_HEADER_LEN + len;
    }
    free(buf);
    if (off != (uint64_t)st.st_size) {
        log_warn("spool %s: cut a torn or corrupt tail of %" PRIu64 " bytes after seq=%" PRIu64,
                 path, (uint64_t)st.st_size - off, last);
        if (ftruncate(w->fd, (off_t)off) != 0 || fsync(w->fd) != 0) {
            snprintf(err, errlen, "%s: truncate: %s", path, strerror(errno));
            return -1;
        }
    }
    if (lseek(w->fd, (off_t)off, SEEK_SET) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    w->seg_first = first;
    w->seg_size = off;
    w->next_seq = last + 1;
    return 0;
}

spool_writer_t *spool_writer_open(const char *dir, char *err, size_t errlen)
{
    spool_writer_t *w = xcalloc(1, sizeof *w);
    char path[4096], epoch[SPOOL_EPOCH_LEN + 1];
    uint64_t *firsts = NULL;
    size_t n = 0;

    w->dir = xstrdup(dir);
    w->fd = -1;
    w->lockfd = -1;
    w->next_seq = 1;
    if (s_dir_prepare(dir, epoch, err, errlen) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/LOCK", dir);
    w->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (w->lockfd < 0 || flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "%s: %s", path,
                 errno == EWOULDBLOCK ? "another writer has this spool" : strerror(errno));
        goto fail;
    }
    if (s_segments(dir, &firsts, &n) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (n > 0 && s_writer_recover(w, firsts[n - 1], err, errlen) != 0)
        goto fail;
    w->disk_bytes = s_dir_bytes(dir, firsts, n);
    free(firsts);
    return w;
fail:
    free(firsts);
    spool_writer_close(&w);
    return NULL;
}

static int s_writer_new_segment(spool_writer_t *w)
{
    char path[4096];
    int fd;

    if (w->fd >= 0) {
        if (w->dirty && fdatasync(w->fd) != 0)
            log_err("spool %s: fdatasync: %s", w->dir, strerror(errno));
        close(w->fd);
        w->fd = -1;
        w->dirty = false;
    }
    s_seg_path(w->dir, w->next_seq, path, sizeof path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_err("spool: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (fs_fsync_dir(w->dir) != 0)
        log_warn("spool %s: fsync of directory: %s", w->dir, strerror(errno));
    w->fd = fd;
    w->seg_first = w->next_seq;
    w->seg_size = 0;
    return 0;
}

/* False (logged at most once a minute) when the spool is at its disk bound. */
static bool s_writer_room(spool_writer_t *w, size_t frame)
{
    uint64_t now = now_ms();

    if (w->disk_bytes + frame <= SPOOL_DISK_MAX)
        return true;
    if (now - w->disk_checked_ms >= SPOOL_DISK_RECHECK_MS || w->disk_checked_ms == 0) {
        uint64_t *firsts;
        size_t n;
        w->disk_checked_ms = now;
        if (s_segments(w->dir, &firsts, &n) == 0) {
            w->disk_bytes = s_dir_bytes(w->dir, firsts, n); /* the manager trims behind us */
            free(firsts);
        }
        if (w->disk_bytes + frame <= SPOOL_DISK_MAX)
            return true;
    }
    if (w->full_logged_ms == 0 || now - w->full_logged_ms >= SPOOL_FULL_LOG_MS) {
        w->full_logged_ms = now;
        log_err("spool %s full: %" PRIu64 " bytes of unacknowledged reports (limit %llu); "
                "refusing records until the parent acknowledges", w->dir, w->disk_bytes,
                (unsigned long long)SPOOL_DISK_MAX);
    }
    return false;
}

int spool_writer_append(spool_writer_t *w, Portcullis__Report *r)
{
    size_t len, frame, off = 0;
    uint8_t *buf;

    if (w == NULL || r == NULL)
        return -1;
    r->seq = w->next_seq;
    len = portcullis__report__get_packed_size(r);
    if (len > SPOOL_RECORD_MAX) {
        log_err("spool: record of %zu bytes over the %u-byte limit; not written", len,
                SPOOL_RECORD_MAX);
        return -1;
    }
    frame = SPOOL_HEADER_LEN + len;
    if (!s_writer_room(w, frame))
        return -1;
    if ((w->fd < 0 || (w->seg_size > 0 && w->seg_size + frame > SPOOL_SEGMENT_MAX)) &&
        s_writer_new_segment(w) != 0)
        return -1;
    buf = xmalloc(frame);
    portcullis__report__pack(r, buf + SPOOL_HEADER_LEN);
    s_put32(buf, SPOOL_MAGIC);
    s_put32(buf + 4, (uint32_t)len);
    s_put64(buf + 8, r->seq);
    s_put32(buf + 16, s_frame_crc(buf, buf + SPOOL_HEADER_LEN, len));
    while (off < frame) {
        ssize_t n = write(w->fd, buf + off, frame - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        log_err("spool %s: write of seq=%" PRIu64 ": %s", w->dir, r->seq,
                n < 0 ? strerror(errno) : "short write");
        /* Take back a partial frame so the next append starts on a boundary. */
        if (ftruncate(w->fd, (off_t)w->seg_size) != 0 ||
            lseek(w->fd, (off_t)w->seg_size, SEEK_SET) < 0)
            log_err("spool %s: cannot cut a partial frame: %s", w->dir, strerror(errno));
        free(buf);
        return -1;
    }
    free(buf);
    w->seg_size += frame;
    w->disk_bytes += frame;
    w->next_seq++;
    w->dirty = true;
    return 0;
}

int spool_writer_append_event(spool_writer_t *w, const char *category, const char *severity,
                              bool notify, const char *subject, const char *text)
{
    Portcullis__Report r = PORTCULLIS__REPORT__INIT;
    Portcullis__SystemEvent e = PORTCULLIS__SYSTEM_EVENT__INIT;

    e.category = (char *)category;
    e.severity = (char *)severity;
    e.message = (char *)text;
    e.at_ms = wall_ms();
    e.notify = notify;
    e.subject = (char *)(subject != NULL ? subject : "");
    r.body_case = PORTCULLIS__REPORT__BODY_EVENT;
    r.event = &e;
    return spool_writer_append(w, &r);
}

int spool_writer_sync(spool_writer_t *w)
{
    if (w == NULL || w->fd < 0 || !w->dirty)
        return 0;
    if (fdatasync(w->fd) != 0) {
        log_err("spool %s: fdatasync: %s", w->dir, strerror(errno));
        return -1;
    }
    w->dirty = false;
    return 0;
}

void spool_writer_close(spool_writer_t **wp)
{
    spool_writer_t *w;

    if (wp == NULL || (w = *wp) == NULL)
        return;
    spool_writer_sync(w);
    if (w->fd >= 0)
        close(w->fd);
    if (w->lockfd >= 0)
        close(w->lockfd);
    free(w->dir);
    free(w);
    *wp = NULL;
}

/* --- reader ------------------------------------------------------------------------------- */

spool_reader_t *spool_reader_open(const char *dir, char *err, size_t errlen)
{
    spool_reader_t *r = xcalloc(1, sizeof *r);

    r->dir = xstrdup(dir);
    if (s_dir_prepare(dir, r->epoch, err, errlen) != 0) {
        spool_reader_close(&r);
        return NULL;
    }
    return r;
}

const char *spool_reader_epoch(const spool_reader_t *r) { return r != NULL ? r->epoch : ""; }

static bool s_has(const uint64_t *firsts, size_t n, uint64_t seg)
{
    for (size_t i = 0; i < n; i++)
        if (firsts[i] == seg)
            return true;
    return false;
}

static int s_open_seg(const char *dir, uint64_t first, uint64_t *size)
{
    char path[4096];
    struct stat st;
    int fd;

    s_seg_path(dir, first, path, sizeof path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (fd >= 0)
        *size = (uint64_t)st.st_size;
    return fd;
}

/* A bad frame in a segment that is not the newest is damage, not a tail being written. */
static void s_log_corrupt(spool_reader_t *r, uint64_t seg, uint64_t off)
{
    if (r->corrupt_logged_seg == seg)
        return;
    r->corrupt_logged_seg = seg;
    log_err("spool %s: segment %020" PRIu64 " is damaged at offset %" PRIu64
            "; its remaining records are skipped", r->dir, seg, off);
}

int spool_reader_read(spool_reader_t *r, uint64_t after_seq, size_t max_records,
                      size_t max_bytes, Portcullis__Report ***out, size_t *n)
{
    uint64_t *firsts = NULL, size = 0, seq;
    size_t nseg, i = 0, bytes = 0, cap = 0;
    uint32_t len;
    struct cursor c = { 0, 0, 0 };

    *out = NULL;
    *n = 0;
    if (r == NULL || s_segments(r->dir, &firsts, &nseg) != 0)
        return -1;
    /* Where to start: the cursor if it stands right after after_seq, else the segment that
     * holds after_seq + 1 (read from its beginning, skipping what is older). */
    if (r->rd.seg != 0 && r->rd.seq == after_seq && s_has(firsts, nseg, r->rd.seg)) {
        c = r->rd;
        while (firsts[i] != c.seg)
            i++;
    } else {
        for (size_t k = 0; k < nseg; k++)
            if (firsts[k] <= after_seq + 1)
                i = k;
        c.seg = nseg > 0 ? firsts[i] : 0;
        c.seq = c.seg > 0 ? c.seg - 1 : 0;
    }
    for (; i < nseg && *n < max_records && (bytes < max_bytes || *n == 0); i++) {
        int fd = s_open_seg(r->dir, firsts[i], &size);
        enum frame_result fr = FRAME_END;
        if (firsts[i] != c.seg)
            c = (struct cursor){ firsts[i], 0, firsts[i] - 1 };
        if (fd < 0)
            continue; /* trimmed under us */
        while (*n < max_records && (bytes < max_bytes || *n == 0) &&
               (fr = s_frame_at(fd, c.off, size, true, &r->buf, &r->cap, &len, &seq)) == FRAME_OK) {
            c.off += SPOOL_HEADER_LEN + len;
            c.seq = seq;
            if (seq <= after_seq)
                continue;
            Portcullis__Report *rep = portcullis__report__unpack(NULL, len, r->buf);
            if (rep == NULL) {
                log_err("spool %s: seq=%" PRIu64 " passes its CRC but does not decode; skipped",
                        r->dir, seq);
                continue;
            }
            rep->seq = seq;
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                *out = xrealloc(*out, cap * sizeof **out);
            }
            (*out)[(*n)++] = rep;
            bytes += len;
        }
        close(fd);
        if (fr == FRAME_BAD && i + 1 < nseg)
            s_log_corrupt(r, firsts[i], c.off);
        else if (fr != FRAME_END)
            break; /* limit reached, or the tail being written */
    }
    if (c.seg != 0)
        r->rd = c;
    free(firsts);
    return 0;
}

void spool_reports_free(Portcullis__Report **reports, size_t n)
{
    if (reports == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        portcullis__report__free_unpacked(reports[i], NULL);
    free(reports);
}

int spool_reader_trim(spool_reader_t *r, uint64_t up_to_seq)
{
    uint64_t *firsts;
    size_t n, removed = 0;
    char path[4096];
    int rc = 0;

    if (r == NULL || s_segments(r->dir, &firsts, &n) != 0)
        return -1;
    /* Segment i ends where segment i + 1 begins; the newest is never removed. */
    for (size_t i = 0; i + 1 < n && firsts[i + 1] - 1 <= up_to_seq; i++) {
        s_seg_path(r->dir, firsts[i], path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            log_err("spool: cannot remove %s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        removed++;
        if (r->rd.seg == firsts[i])
            r->rd.seg = 0;
        if (r->tail.seg == firsts[i])
            r->tail = (struct cursor){ firsts[i + 1], 0, r->tail.seq };
    }
    if (removed > 0)
        fs_fsync_dir(r->dir);
    free(firsts);
    return rc;
}

void spool_reader_depth(spool_reader_t *r, uint64_t *records, uint64_t *bytes)
{
    uint64_t *firsts, size = 0, seq;
    size_t n, i = 0;
    uint32_t len;

    *records = 0;
    *bytes = 0;
    if (r == NULL || s_segments(r->dir, &firsts, &n) != 0)
        return;
    if (n == 0) {
        free(firsts);
        return;
    }
    *bytes = s_dir_bytes(r->dir, firsts, n);
    /* The tail cursor walks headers only, from where it stopped last time. */
    if (r->tail.seg == 0 || !s_has(firsts, n, r->tail.seg))
        r->tail = (struct cursor){ firsts[0], 0, r->tail.seq > firsts[0] - 1 ? r->tail.seq
                                                                             : firsts[0] - 1 };
    while (firsts[i] != r->tail.seg)
        i++;
    for (; i < n; i++) {
        int fd = s_open_seg(r->dir, firsts[i], &size);
        enum frame_result fr = FRAME_END;
        if (firsts[i] != r->tail.seg)
            r->tail = (struct cursor){ firsts[i], 0, r->tail.seq };
        if (fd < 0)
            continue;
        while ((fr = s_frame_at(fd, r->tail.off, size, false, NULL, NULL, &len, &seq)) ==
               FRAME_OK) {
            r->tail.off += SPOOL_HEADER_LEN + len;
            r->tail.seq = seq;
        }
        close(fd);
        if (fr == FRAME_BAD && i + 1 == n)
            break;
    }
    *records = r->tail.seq >= firsts[0] ? r->tail.seq - firsts[0] + 1 : 0;
    free(firsts);
}

void spool_reader_close(spool_reader_t **rp)
{
    spool_reader_t *r;

    if (rp == NULL || (r = *rp) == NULL)
        return;
    free(r->dir);
    free(r->buf);
    free(r);
    *rp = NULL;
}
