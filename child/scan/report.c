/* report: see report.h. A thin layer over the spool writer: one process-wide writer opened by
 * scan_main at start, records appended as they happen, made durable by report_sync (before a
 * 250 that rests on a stored message, and on scan_main's 200 ms timer for the rest). */
#include "scan/report.h"

#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "spool.h"
#include "util.h"

#define REPORT_EVENT_MAX 1024 /* bytes of one system event's text */

static spool_writer_t *s_writer;

int report_open(const char *spool_dir, char *err, size_t errlen)
{
    if (s_writer != NULL)
        return 0;
    s_writer = spool_writer_open(spool_dir, err, errlen);
    return s_writer != NULL ? 0 : -1;
}

void report_close(void) { spool_writer_close(&s_writer); }

static int s_append(Portcullis__Report *r, const char *what)
{
    if (s_writer == NULL) {
        log_err("report %s not spooled: the spool is not open", what);
        return -1;
    }
    return spool_writer_append(s_writer, r);
}

int report_tracking(const Portcullis__TrackingRecord *t)
{
    Portcullis__Report r = PORTCULLIS__REPORT__INIT;

    r.body_case = PORTCULLIS__REPORT__BODY_TRACKING;
    r.tracking = (Portcullis__TrackingRecord *)t; /* packed, never modified */
    return s_append(&r, "tracking");
}

int report_stored(const Portcullis__StoredMessage *m)
{
    Portcullis__Report r = PORTCULLIS__REPORT__INIT;

    r.body_case = PORTCULLIS__REPORT__BODY_STORED;
    r.stored = (Portcullis__StoredMessage *)m;
    return s_append(&r, "stored");
}

int report_event(const char *category, const char *severity, const char *fmt, ...)
{
    char text[REPORT_EVENT_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (s_writer == NULL) {
        log_err("report event not spooled: the spool is not open");
        return -1;
    }
    return spool_writer_append_event(s_writer, category, severity, false, NULL, text);
}

int report_sync(void) { return spool_writer_sync(s_writer); }
