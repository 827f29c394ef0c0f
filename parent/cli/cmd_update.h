/* cmd_update: `portcullis update …`: signed component updates (R3.7): import a package
 * (signed here with the update key in the parent's state_dir), list what is stored, and make
 * a version current (also an older one). Returns the exit status (0 done, 1 failed, 2 bad
 * arguments or a refused package). */
#ifndef PORTCULLIS_CMD_UPDATE_H
#define PORTCULLIS_CMD_UPDATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "conf.h"

int cmd_update(PGconn *db, const conf_t *conf, bool json, int argc, char **argv);
void cmd_update_usage(FILE *f);

#endif
