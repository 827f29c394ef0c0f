/* enrol: the parent's answer to an EnrollRequest on the enrolment socket (R7.1): a one-time
 * token enrols the key at once; without a token the key waits for an administrator's
 * `portcullis child approve NAME`. */
#ifndef PORTCULLIS_ENROL_H
#define PORTCULLIS_ENROL_H

#include <libpq-fe.h>

#include "wire.h"

#define ENROL_PENDING_MAX 100          /* pending requests in all (R8.3) */
#define ENROL_PENDING_PER_ADDRESS 5    /* new pending requests per source address … */
#define ENROL_PENDING_WINDOW_S 3600    /* … within this many seconds */

/* Decides and records; fills reply (status + message for the child's log). */
void enrol_handle(PGconn *db, const char *key_z85, const char *address,
                  const Portcullis__EnrollRequest *req, Portcullis__EnrollReply *reply,
                  char *msg, size_t msglen);

#endif
