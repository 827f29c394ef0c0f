/* cmd_spam: `portcullis spam …`: the anti-spam rules (R5.1) whose scores make each message's
 * spam score (policy condition spam_score). Returns the exit status (0 done, 1 failed, 2 bad
 * arguments or a change refused by validation — nothing is changed then). */
#ifndef PORTCULLIS_CMD_SPAM_H
#define PORTCULLIS_CMD_SPAM_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

int cmd_spam(PGconn *db, bool json, int argc, char **argv);
/* The usage lines, for `portcullis -h`. */
void cmd_spam_usage(FILE *f);

#endif
