/* notify: administrator notification mail (R2.4, R5.11). Producers write a row in table
 * `notifications` in the same statement as the event that caused it (db_event_notify, report
 * ingest); this thread of portcullis-parent sends each through libcurl's SMTP to
 * notify.admin_address via notify.smtp_url, and retries a failure with backoff
 * (NOTIFY_RETRY_MIN_S doubling to NOTIFY_RETRY_MAX_S) until NOTIFY_ATTEMPTS_MAX. A change of
 * configuration (the administrator may have fixed the mail settings) retries at once. */
#ifndef PORTCULLIS_NOTIFY_H
#define PORTCULLIS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define NOTIFY_BATCH 20              /* rows taken per sweep */
#define NOTIFY_RETRY_MIN_S 60        /* first retry after a failed send */
#define NOTIFY_RETRY_MAX_S 3600      /* retries at most this far apart */
#define NOTIFY_ATTEMPTS_MAX 30       /* then the row is 'failed' (about a day of retrying) */
#define NOTIFY_SEND_TIMEOUT_S 30     /* one SMTP dialogue */
#define NOTIFY_CONNECT_TIMEOUT_S 10
#define NOTIFY_SWEEP_MS 5000         /* due rows are looked for at least this often */
#define NOTIFY_LINE_MAX 900          /* body lines are broken before the 998-byte SMTP limit */

typedef struct notifier notifier_t;

/* Starts the sender thread on its own PostgreSQL connection (made and re-made by the thread:
 * an unreachable database is not an error here). NULL with err filled. */
notifier_t *notifier_start(const char *dsn, char *err, size_t errlen);
/* Stops the thread (a send in progress is abandoned and retried later). NULL-safe. */
void notifier_stop(notifier_t **np);

/* Delay before attempt number attempts+1, after `attempts` failures (attempts >= 1). */
unsigned notify_backoff_s(unsigned attempts);

/* The whole RFC 5322 message, CRLF line ends, dot-stuffing left to libcurl. The subject is
 * cleaned of control characters and RFC 2047-encoded when not ASCII; body lines longer than
 * NOTIFY_LINE_MAX are broken. Returns a malloc'd string. */
char *notify_format(const char *from, const char *to_list, const char *subject, const char *body,
                    time_t date, const char *message_id);

#endif
