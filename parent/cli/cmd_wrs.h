/* cmd_wrs: `portcullis wrs …`: the web-reputation block-lists (R3.2): import a list of URLs
 * and domains with their levels and categories, and show what is stored. Returns the exit
 * status (0 done, 1 failed, 2 bad arguments or a malformed file). */
#ifndef PORTCULLIS_CMD_WRS_H
#define PORTCULLIS_CMD_WRS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

int cmd_wrs(PGconn *db, bool json, int argc, char **argv);
/* The usage lines, for `portcullis -h`. */
void cmd_wrs_usage(FILE *f);

#endif
