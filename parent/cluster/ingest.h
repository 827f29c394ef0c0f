/* ingest: a child's ReportBatch (R7.3) into PostgreSQL in one transaction: tracking records
 * into message_log (day partitions made on demand), stored-message entries into
 * stored_messages, events into events. Records already present are left alone (unique child,
 * spool epoch, seq), so a batch sent again is harmless; the caller acknowledges on success. */
#ifndef PORTCULLIS_INGEST_H
#define PORTCULLIS_INGEST_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "portcullis.pb-c.h"

#define INGEST_BATCH_MAX 5000     /* records in one batch; a child sends at most 500 */
#define INGEST_TEXT_MAX 4096      /* bytes kept of any one text field */
#define INGEST_LIST_MAX 1000      /* recipients, verdicts or archive areas kept per record */

typedef struct ingest ingest_t;

ingest_t *ingest_new(void);
void ingest_free(ingest_t **ip);
/* Commits the batch; *up_to_seq gets the highest seq in it (what to acknowledge).
 * 0 committed (or nothing to commit), -1 with err filled (nothing committed). */
int ingest_batch(ingest_t *in, PGconn *db, int64_t child_id, const char *child_name,
                 const Portcullis__ReportBatch *b, uint64_t *up_to_seq, char *err,
                 size_t errlen);

#endif
