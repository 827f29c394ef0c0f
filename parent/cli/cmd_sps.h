/* cmd_sps: `portcullis sps …`: the smart-protection hash table (R2.1): import a list of
 * known-malicious SHA-256 digests with their threat names, and show how many there are.
 * Returns the exit status (0 done, 1 failed, 2 bad arguments or a malformed file). */
#ifndef PORTCULLIS_CMD_SPS_H
#define PORTCULLIS_CMD_SPS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

int cmd_sps(PGconn *db, bool json, int argc, char **argv);
/* The usage lines, for `portcullis -h`. */
void cmd_sps_usage(FILE *f);

#endif
