/* admin_notify: what an administrator does with notification mail (R2.4, R5.11): list the
 * recent ones with their delivery state, and queue a test mail to check the notify.*
 * settings end to end. The sending is parent/sched/notify.c. */
#ifndef PORTCULLIS_ADMIN_NOTIFY_H
#define PORTCULLIS_ADMIN_NOTIFY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#define ADMIN_NOTIFY_LIST_DEFAULT 20
#define ADMIN_NOTIFY_LIST_MAX 1000

/* Newest first: id, created, state, attempts, subject, recipients, sent, last error, child. */
json_t *admin_notify_list(PGconn *c, size_t limit, char *err, size_t errlen);
/* Queues a test notification (event category "system"); *id is its notification id. */
int admin_notify_test(PGconn *c, const char *actor, long long *id, char *err, size_t errlen);

#endif
