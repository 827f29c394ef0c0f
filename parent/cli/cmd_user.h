/* cmd_user: `portcullis user …`: the people who use the REST API and the web console (issue 6):
 * users with a role, argon2id passwords, and bearer tokens for scripts (Prometheus, cron).
 * Returns the exit status (0, 1 failed, 2 usage or refused). */
#ifndef PORTCULLIS_CMD_USER_H
#define PORTCULLIS_CMD_USER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

int cmd_user(PGconn *db, bool json, int argc, char **argv);
void cmd_user_usage(FILE *f);

#endif
