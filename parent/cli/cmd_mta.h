/* cmd_mta: `portcullis mta …` — the upstream MTA's retry settings as a timetable (R4.3). */
#ifndef PORTCULLIS_CMD_MTA_H
#define PORTCULLIS_CMD_MTA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

/* argv[0] is the subcommand; returns the process exit status. */
int cmd_mta(PGconn *db, int argc, char **argv, bool json);
void cmd_mta_usage(FILE *f);

#endif
