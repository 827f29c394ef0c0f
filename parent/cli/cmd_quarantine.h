/* cmd_quarantine: `portcullis quarantine|archive search|show|download|release|delete|reconcile`
 * (R5.3, R5.4). Returns the exit status (0, 1 failed, 2 usage). */
#ifndef PORTCULLIS_CMD_QUARANTINE_H
#define PORTCULLIS_CMD_QUARANTINE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

/* True if argv0 is one of this module's subcommands. */
bool cmd_quarantine_handles(const char *sub);
/* kind: "quarantine" or "archive"; argv[0] is the subcommand. */
int cmd_quarantine(PGconn *db, bool json, const char *kind, int argc, char **argv);
void cmd_quarantine_usage(FILE *f);

#endif
