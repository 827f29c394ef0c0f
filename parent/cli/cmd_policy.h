/* cmd_policy: `portcullis policy …` (rules, R5.1) and `portcullis area …` (areas, R5.2). Each
 * takes the arguments after its command word and returns the exit status (0 done, 1 failed,
 * 2 bad arguments or a change refused by validation — nothing is changed then). */
#ifndef PORTCULLIS_CMD_POLICY_H
#define PORTCULLIS_CMD_POLICY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

int cmd_policy_rules(PGconn *db, bool json, int argc, char **argv);
int cmd_policy_areas(PGconn *db, bool json, int argc, char **argv);
/* The usage lines of both, for `portcullis -h`. */
void cmd_policy_usage(FILE *f);

#endif
