/* mta_adapter: what the parent may ask of a child's MTA (R8.2). The fleet setting mta.adapter
 * names one of the adapters every child knows — never a command line:
 *   postfix        the system Postfix (postqueue -f; postconf -e …; postfix reload)
 *   postfix:DIR    a Postfix instance with its configuration in DIR (-c DIR for each command)
 *   local          the commands in this child's own child.conf (mta_flush_command,
 *                  mta_postconf_command, mta_reload_command), which only that host's root writes
 *   none           the child leaves its MTA alone
 * The check is shared by the parent (validating the setting) and the child (using it). */
#ifndef PORTCULLIS_MTA_ADAPTER_H
#define PORTCULLIS_MTA_ADAPTER_H

#include <stddef.h>

#define MTA_ADAPTER_MAX 300      /* characters of an mta.adapter value */
#define MTA_ADAPTER_FORMAT "postfix, postfix:/ABSOLUTE/CONFIG/DIR, local or none"

enum mta_adapter_kind { MTA_ADAPTER_POSTFIX, MTA_ADAPTER_LOCAL, MTA_ADAPTER_NONE };

struct mta_adapter {
    enum mta_adapter_kind kind;
    char dir[MTA_ADAPTER_MAX];   /* postfix:DIR; "" for the system Postfix */
};

/* Parses an mta.adapter value: 0 ok, -1 with err filled. DIR must be absolute, of letters,
 * digits and "/._-" only, without "..": it becomes an argument of a privileged command. */
int mta_adapter_parse(const char *text, struct mta_adapter *out, char *err, size_t errlen);

#endif
