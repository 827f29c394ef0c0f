/* report_ship: the manager's side of the report spool (R7.3): reads what the scan service
 * spooled, sends it to the parent as ReportBatch messages (one batch in flight, sent again
 * after a timeout or a reconnect), and trims the spool when the parent acknowledges it. */
#ifndef PORTCULLIS_REPORT_SHIP_H
#define PORTCULLIS_REPORT_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define REPORT_SHIP_BATCH_RECORDS 500        /* records in one ReportBatch */
#define REPORT_SHIP_BATCH_BYTES (1u << 20)   /* about this many payload bytes in one batch */
#define REPORT_SHIP_RESEND_MS 5000           /* unacknowledged batch sent again after this */

typedef struct report_ship report_ship_t;
/* Sends one envelope to the parent: 0 sent, -1 not (not connected). */
typedef int (*report_ship_send_fn)(void *arg, const envelope_t *env);

/* Opens (creating if needed) the spool directory for reading. NULL with err filled. */
report_ship_t *report_ship_new(const char *spool_dir, report_ship_send_fn send, void *arg,
                               char *err, size_t errlen);
void report_ship_destroy(report_ship_t **sp);
/* The link came up or went down: whatever was in flight goes again at the next tick. */
void report_ship_reset(report_ship_t *s);
/* While the link is up: sends the next batch unless one is in flight and not yet timed out. */
void report_ship_tick(report_ship_t *s);
/* The parent committed every record up to a->up_to_seq: trims, then sends what follows. */
void report_ship_ack(report_ship_t *s, const Portcullis__ReportAck *a);
/* The spool's epoch: acknowledgements name it (the manager has two spools). */
const char *report_ship_epoch(const report_ship_t *s);
/* Hello.next_report_seq: the first record not known to be acknowledged. */
uint64_t report_ship_next_seq(const report_ship_t *s);
/* Untrimmed records and bytes in the spool (Health). */
void report_ship_depth(report_ship_t *s, uint64_t *records, uint64_t *bytes);

#endif
