/* mta_action: the argv of each MTA action a child performs (R8.2) — the upstream queue flush
 * after a scan service start, and the postconf + reload that apply the mta.* retry settings —
 * built from the fleet's mta.adapter (see mta_adapter.h) and, for the "local" adapter only,
 * from this host's child.conf. The parent names an adapter; it never names a program. */
#ifndef PORTCULLIS_MTA_ACTION_H
#define PORTCULLIS_MTA_ACTION_H

#include <stddef.h>

#include "conf.h"
#include "manager/runcmd.h"
#include "settings.h"

#define MTA_LOCAL_CMD_MAX 1024 /* bytes of one child.conf command */

/* child.conf's mta_flush_command, mta_postconf_command, mta_reload_command ("" unset). */
struct mta_local {
    char flush[MTA_LOCAL_CMD_MAX];
    char postconf[MTA_LOCAL_CMD_MAX];
    char reload[MTA_LOCAL_CMD_MAX];
    /* The privileged helper (portcullis-mta, R8.1) when the manager gave up root: every
     * action goes through it ("" : run directly, the manager never dropped) */
    char helper[MTA_LOCAL_CMD_MAX];
};

enum mta_action { MTA_ACTION_FLUSH, MTA_ACTION_POSTCONF, MTA_ACTION_RELOAD };

void mta_local_from_conf(const conf_t *conf, struct mta_local *out);
const char *mta_action_name(enum mta_action a); /* "flush", "postconf", "reload" */

/* The argv of action a (params appended: postconf's NAME=VALUE words). 1: av filled (free
 * it) and desc says what runs; 0: nothing to run (mta.adapter none, or a local command left
 * unset), desc says why; -1: err filled (an unusable adapter or command). */
int mta_action_argv(const settings_t *s, const struct mta_local *local, enum mta_action a,
                    const char *const *params, size_t nparams, struct runcmd_argv *av,
                    char *desc, size_t desclen, char *err, size_t errlen);

#endif
