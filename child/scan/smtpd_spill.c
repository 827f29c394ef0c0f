/* smtpd_spill: the global cap on message bytes held in memory (R8.5). Each session's body is
 * counted while it grows; when a session's growth would take all sessions past
 * smtp.message_memory_max, that message goes on in an unnamed file (O_TMPFILE, 0600, in the
 * spool directory: nothing to clean up after a crash) and at the end of data the body becomes
 * one read-only mapping of it, so the scan, the store and the relay see a contiguous message
 * as before — backed by the page cache, which the kernel can reclaim, not by our heap. */
#include "scan/smtpd_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "settings.h"
#include "util.h"

static int s_open(struct smtpd *srv)
{
    int fd = openat(srv->spill_dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        /* a file system without O_TMPFILE: a named file, unlinked at once */
        char name[64], rnd[17];
        for (int i = 0; i < 8 && fd < 0; i++) {
            random_hex(rnd, 8);
            snprintf(name, sizeof name, ".spill-%s", rnd);
            fd = openat(srv->spill_dir, name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
            if (fd >= 0)
                unlinkat(srv->spill_dir, name, 0);
        }
    }
    return fd;
}

/* Moves what the body holds to the file. */
static void s_write_out(struct smtpd_session *s)
{
    struct evbuffer *b = s->body;

    while (!s->spill_failed && evbuffer_get_length(b) > 0) {
        int n = evbuffer_write(b, s->spill_fd);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            log_err("id=%s cannot write the spilled message: %s", s->id,
                    n < 0 ? strerror(errno) : "no progress");
            s->spill_failed = true;
            break;
        }
        s->spill_len += (uint64_t)n;
    }
    if (s->spill_failed)
        evbuffer_drain(b, evbuffer_get_length(b));
}

void smtpd_spill_account(struct smtpd_session *s)
{
    struct smtpd *srv = s->srv;
    uint64_t len = evbuffer_get_length(s->body);
    uint64_t max = (uint64_t)settings_int(srv->settings, SETTING_SMTP_MEMORY_MAX);

    if (s->spill_fd >= 0) {
        s_write_out(s);
        return;
    }
    if (len <= s->mem_counted) { /* the decoder emptied it (a limit broken): give back */
        srv->mem_bytes -= s->mem_counted - len;
        s->mem_counted = len;
        return;
    }
    if (srv->mem_bytes + (len - s->mem_counted) <= max || srv->spill_dir < 0) {
        srv->mem_bytes += len - s->mem_counted;
        s->mem_counted = len;
        return;
    }
    if ((s->spill_fd = s_open(srv)) < 0) {
        log_err("id=%s cannot spill the message past smtp.message_memory_max: %s", s->id,
                strerror(errno));
        s->spill_failed = true;
        evbuffer_drain(s->body, evbuffer_get_length(s->body));
    } else {
        log_info("id=%s message spilled to disk: sessions hold %llu bytes, "
                 "smtp.message_memory_max=%llu", s->id,
                 (unsigned long long)(srv->mem_bytes + len - s->mem_counted),
                 (unsigned long long)max);
        s_write_out(s);
    }
    srv->mem_bytes -= s->mem_counted;
    s->mem_counted = 0;
}

int smtpd_spill_finish(struct smtpd_session *s)
{
    struct evbuffer_file_segment *seg;

    if (s->spill_fd < 0)
        return s->spill_failed ? -1 : 0;
    s_write_out(s);
    if (s->spill_failed)
        return -1;
    if (s->spill_len == 0)
        return 0;
    /* mmap, not sendfile: the scan needs the bytes; the mapping owns the descriptor */
    seg = evbuffer_file_segment_new(s->spill_fd, 0, (ev_off_t)s->spill_len,
                                    EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_SENDFILE);
    if (seg == NULL || evbuffer_add_file_segment(s->body, seg, 0, (ev_off_t)s->spill_len) != 0) {
        log_err("id=%s cannot map the spilled message (%llu bytes)", s->id,
                (unsigned long long)s->spill_len);
        if (seg != NULL)
            evbuffer_file_segment_free(seg); /* closes the descriptor */
        else
            close(s->spill_fd);
        s->spill_fd = -1;
        s->spill_failed = true;
        return -1;
    }
    evbuffer_file_segment_free(seg); /* the body holds its own reference */
    s->spill_fd = -1;                /* closed with the mapping */
    return 0;
}

void smtpd_spill_release(struct smtpd_session *s)
{
    s->srv->mem_bytes -= s->mem_counted;
    s->mem_counted = 0;
    if (s->spill_fd >= 0)
        close(s->spill_fd);
    s->spill_fd = -1;
    s->spill_len = 0;
    s->spill_failed = false;
}
