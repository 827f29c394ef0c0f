/* report: the scan service's side of the report spool (R7.3). Called from the event-loop
 * thread only (the spool has one writer). The manager ships what is written here to the parent
 * and trims it after the parent's acknowledgement. */
#ifndef PORTCULLIS_REPORT_H
#define PORTCULLIS_REPORT_H

#include <stddef.h>

#include "portcullis.pb-c.h"

/* Opens the spool directory (created 0700 if absent). 0 ok, -1 with err filled. */
int report_open(const char *spool_dir, char *err, size_t errlen);
void report_close(void);
/* Appends one record; 0 ok, -1 (logged) when the spool cannot take it (disk full, …): the
 * caller must not acknowledge a stored message it could not index (answer 4xx instead). */
int report_tracking(const Portcullis__TrackingRecord *t);
int report_stored(const Portcullis__StoredMessage *m);
int report_event(const char *category, const char *severity, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Makes every appended record durable (fdatasync). Called before a 250 that rests on a stored
 * message, and on a short timer for the rest. */
int report_sync(void);

#endif
