/* cli_actor: who runs the CLI, for the audit log (R5.4): the effective user, and the user
 * behind sudo when there is one ("root (sudo by alice)"). Issue 6 adds API users. */
#ifndef PORTCULLIS_CLI_ACTOR_H
#define PORTCULLIS_CLI_ACTOR_H

#include <stddef.h>

#define CLI_ACTOR_MAX 128

/* Fills buf and returns it. */
const char *cli_actor(char *buf, size_t n);

#endif
