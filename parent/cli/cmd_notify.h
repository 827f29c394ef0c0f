/* cmd_notify: `portcullis notify …`: notification mail to the administrator — what was sent,
 * what is waiting and why, and a test mail. Returns the exit status (0, 1 failed, 2 usage). */
#ifndef PORTCULLIS_CMD_NOTIFY_H
#define PORTCULLIS_CMD_NOTIFY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

int cmd_notify(PGconn *db, bool json, int argc, char **argv);
void cmd_notify_usage(FILE *f);

#endif
