/* cli_log: `portcullis log query` and `portcullis quarantine|archive list` (R7.3). Each takes
 * the arguments after its two command words and returns the exit status (0, 1 failed, 2 bad
 * arguments). */
#ifndef PORTCULLIS_CLI_LOG_H
#define PORTCULLIS_CLI_LOG_H

#include <libpq-fe.h>
#include <stdbool.h>

int cli_log_query(PGconn *db, bool json, int argc, char **argv);
/* kind: "quarantine" or "archive". */
int cli_stored_list(PGconn *db, bool json, const char *kind, int argc, char **argv);
/* The same with the search filters of R5.4: --subject, --rule, --verdict, --state. */
int cli_stored_search(PGconn *db, bool json, const char *kind, int argc, char **argv);

#endif
