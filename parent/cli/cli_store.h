/* cli_store: the quarantine and archive usage lines of `portcullis status` (R5.12, R5.13):
 * per child usage, quota, percentage, last purge and the under-1-GB flag, and cluster totals. */
#ifndef PORTCULLIS_CLI_STORE_H
#define PORTCULLIS_CLI_STORE_H

#include <jansson.h>

/* Lines for one child's health.stores (nothing when it has not reported them). */
void cli_store_print_child(const json_t *health);
/* The cluster totals of admin_status's store_totals. */
void cli_store_print_totals(const json_t *status);

#endif
