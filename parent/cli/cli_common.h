/* cli_common: what several `portcullis` commands share: who runs them (for the audit log),
 * how a refused change exits, and how a new configuration version is announced. */
#ifndef PORTCULLIS_CLI_COMMON_H
#define PORTCULLIS_CLI_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define CLI_ACTOR_MAX 128

/* The effective user, and the user behind sudo when there is one ("root (sudo by alice)"),
 * for the audit log (R5.4); issue 6 adds API users. Fills buf and returns it. */
const char *cli_actor(char *buf, size_t n);
/* Prints err; exit 1 for a database failure, 2 for anything the administrator can fix. */
int cli_refused(const char *err);
/* "<what>; configuration version N is being pushed to the children", or "nothing to change"
 * for version 0. */
void cli_changed(const char *what, uint64_t version);

#endif
