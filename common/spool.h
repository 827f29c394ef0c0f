/* spool: the child's report spool (R7.3): append-only segment files of CRC-framed Report
 * records, written by the scan service and read, shipped and trimmed by the manager after the
 * parent's acknowledgement. A torn tail (crash mid-write) is cut on open; nothing acknowledged
 * is kept, nothing unacknowledged is dropped. The directory has a random epoch (file EPOCH)
 * so that (child, epoch, seq) stays unique even if the directory is ever recreated. */
#ifndef PORTCULLIS_SPOOL_H
#define PORTCULLIS_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "portcullis.pb-c.h"

#define SPOOL_RECORD_MAX (1u << 20)         /* bytes of one packed Report */
#define SPOOL_SEGMENT_MAX (16u << 20)       /* bytes before the writer starts a new segment */
#define SPOOL_EPOCH_LEN 32                  /* hex characters */
#define SPOOL_DISK_MAX (1ull << 30)         /* bytes of segments before appends are refused:
                                             * the scan service tempfails, nothing is lost */

typedef struct spool_writer spool_writer_t;
typedef struct spool_reader spool_reader_t;

/* Opens (creating if needed, mode 0700) the spool directory for appending; recovers a torn
 * tail and continues the sequence. NULL with err filled. One writer per directory. */
spool_writer_t *spool_writer_open(const char *dir, char *err, size_t errlen);
/* Sets r->seq and appends; durable after the next spool_writer_sync (or at once if the
 * writer syncs every record). 0 ok, -1 with the reason logged (disk full, …). */
int spool_writer_append(spool_writer_t *w, Portcullis__Report *r);
int spool_writer_sync(spool_writer_t *w);
/* Appends a SystemEvent record stamped now (notify/subject: the parent mails the
 * administrator, see proto). Same result as spool_writer_append. */
int spool_writer_append_event(spool_writer_t *w, const char *category, const char *severity,
                              bool notify, const char *subject, const char *text);
void spool_writer_close(spool_writer_t **wp);

spool_reader_t *spool_reader_open(const char *dir, char *err, size_t errlen);
const char *spool_reader_epoch(const spool_reader_t *r);
/* Up to max_records (and about max_bytes) records with seq > after_seq, oldest first.
 * *out is an array of unpacked reports the caller frees with spool_reports_free. */
int spool_reader_read(spool_reader_t *r, uint64_t after_seq, size_t max_records,
                      size_t max_bytes, Portcullis__Report ***out, size_t *n);
void spool_reports_free(Portcullis__Report **reports, size_t n);
/* Deletes segments whose every record has seq <= up_to_seq (never the one being written). */
int spool_reader_trim(spool_reader_t *r, uint64_t up_to_seq);
/* Records and bytes not yet trimmed, for Health and the disk bound. */
void spool_reader_depth(spool_reader_t *r, uint64_t *records, uint64_t *bytes);
void spool_reader_close(spool_reader_t **rp);

#endif
