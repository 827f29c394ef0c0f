/* api_logs: the query fields of the API's searches (R5.4, R7.3) — tracking log, events, audit
 * log (api_logs.c) and the quarantine/archive search (api_stored.c) — read into an
 * admin_log_filter with the checks the CLI makes (admin_log.h: times, limits, cursors). */
#ifndef PORTCULLIS_API_LOGS_H
#define PORTCULLIS_API_LOGS_H

#include "admin/admin_log.h"
#include "api/api.h"

struct api_log_query {
    struct admin_log_filter f;       /* its times point into since / until */
    char since[ADMIN_LOG_TIME_LEN], until[ADMIN_LOG_TIME_LEN];
};

/* Reads rq's query fields into q: only the names in allowed (NULL-terminated) are accepted;
 * since/until are normalised (default_since when since is absent, NULL for none), limit and
 * after are checked. 0 ok; -1 having answered (400 naming the field and what is accepted, 503
 * when the database failed). */
int api_logs_filter(const struct api_req *rq, struct api_resp *rs, const char *const *allowed,
                    const char *default_since, struct api_log_query *q);
/* An admin_log search failed with err: 503 when the database went away, else 400. */
void api_logs_fail(const struct api_req *rq, struct api_resp *rs, const char *err);

#endif
