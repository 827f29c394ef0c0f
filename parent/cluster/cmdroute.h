/* cmdroute: the daemon's half of the commands table (R7.4): pending rows go to their child
 * (or fail at once when it is down), answers are written back, rows past their deadline
 * time out; every final state is NOTIFYd to the waiting caller (admin_command.c). The loop
 * never waits for a child: a command is a row, a send, and later an answer. */
#ifndef PORTCULLIS_CMDROUTE_H
#define PORTCULLIS_CMDROUTE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "wire.h"

#define CMDROUTE_BATCH 100                  /* pending rows sent per pass */
#define CMDROUTE_DATA_KEEP_S 3600           /* unread fetch chunks are cleared after this */
#define CMDROUTE_CLEANUP_MS (10 * 60 * 1000) /* how often that cleanup runs */

typedef struct cmdroute cmdroute_t;
/* Sends env to the child; 0 sent, -1 the child is not connected (last_seen says since when). */
typedef int (*cmdroute_send_fn)(void *arg, int64_t child_id, const envelope_t *env);

cmdroute_t *cmdroute_new(cmdroute_send_fn send, void *arg);
void cmdroute_free(cmdroute_t **rp);
/* Sends the pending rows (on NOTIFY, and every tick for any NOTIFY missed). */
void cmdroute_dispatch(cmdroute_t *r, PGconn *db);
/* Times out rows past their deadline; clears old fetch data now and then. */
void cmdroute_tick(cmdroute_t *r, PGconn *db);
/* A child's answer; child_id is the sender's (ZAP-bound) identity. */
void cmdroute_reply(cmdroute_t *r, PGconn *db, int64_t child_id, const char *child_name,
                    const Portcullis__CommandReply *rep);

#endif
