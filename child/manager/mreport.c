/* mreport: see mreport.h. */
#include "manager/mreport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "spool.h"
#include "util.h"

#define MREPORT_EVENT_MAX 1024 /* bytes of one event's text */

struct mreport {
    spool_writer_t *w;
};

mreport_t *mreport_open(const char *dir, char *err, size_t errlen)
{
    spool_writer_t *w = spool_writer_open(dir, err, errlen);
    mreport_t *r;

    if (w == NULL)
        return NULL;
    r = xcalloc(1, sizeof *r);
    r->w = w;
    return r;
}

void mreport_close(mreport_t **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    spool_writer_close(&(*rp)->w);
    free(*rp);
    *rp = NULL;
}

int mreport_append(mreport_t *r, Portcullis__Report *rec)
{
    if (r == NULL || spool_writer_append(r->w, rec) != 0 || spool_writer_sync(r->w) != 0)
        return -1;
    return 0;
}

int mreport_event(mreport_t *r, const char *category, const char *severity, bool notify,
                  const char *subject, const char *fmt, ...)
{
    char text[MREPORT_EVENT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (r == NULL ||
        spool_writer_append_event(r->w, category, severity, notify, subject, text) != 0 ||
        spool_writer_sync(r->w) != 0) {
        log_err("system event not recorded for the parent: %s", text);
        return -1;
    }
    return 0;
}

int mreport_removed(mreport_t *r, const char *kind, const char *file_id, const char *reason)
{
    Portcullis__Report rec = PORTCULLIS__REPORT__INIT;
    Portcullis__StoredRemoved x = PORTCULLIS__STORED_REMOVED__INIT;

    x.kind = (char *)kind;
    x.file_id = (char *)file_id;
    x.reason = (char *)reason;
    x.at_ms = wall_ms();
    rec.body_case = PORTCULLIS__REPORT__BODY_REMOVED;
    rec.removed = &x;
    if (r == NULL || spool_writer_append(r->w, &rec) != 0) {
        log_err("removal of %s file %s (%s) not recorded for the parent", kind, file_id, reason);
        return -1;
    }
    return 0;
}

int mreport_sync(mreport_t *r) { return r != NULL ? spool_writer_sync(r->w) : -1; }
