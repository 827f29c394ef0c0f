/* mta_apply: a child applies the mta.* retry settings to its upstream Postfix (R4.3) when
 * mta.apply is on: mta.adapter's postconf (`postconf [-c DIR] -e queue_run_delay=…s
 * minimal_backoff_time=…s maximal_backoff_time=…s maximal_queue_lifetime=…s
 * bounce_queue_lifetime=…s`), then its reload, both through runcmd (no shell, never blocking
 * the loop; R8.2: the parent chooses the adapter, never the program). What was last
 * applied successfully is kept in state_dir/mta_applied (atomic), so only a change is applied;
 * a failure is retried at the next configuration or after supervise.check_interval_s. The
 * outcome travels in Health.mta_state ("ok", "off", "applying" or the error) and as events. */
#ifndef PORTCULLIS_MTA_APPLY_H
#define PORTCULLIS_MTA_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "manager/command.h"
#include "manager/mreport.h"
#include "settings.h"

#define MTA_APPLY_STATE_MAX 768   /* bytes of mta_state: the failing step and its output */
#define MTA_APPLY_KEY_MAX 3072    /* both commands and the parameters, as stored */

typedef struct mta_apply mta_apply_t;

struct mta_local;
/* mrep and local are borrowed. Reads state_dir/mta_applied if there is one. */
mta_apply_t *mta_apply_new(const char *state_dir, mreport_t *mrep,
                           const struct mta_local *local);
/* NULL-safe; a command still running is killed. */
void mta_apply_destroy(mta_apply_t **map);
/* Every loop turn, with the settings in force. */
void mta_apply_tick(mta_apply_t *ma, const settings_t *settings);
const char *mta_apply_state(const mta_apply_t *ma); /* borrowed */
/* A postconf or reload command is running. */
bool mta_apply_busy(const mta_apply_t *ma);
/* The parent's command "apply_mta" (R7.4): applies the mta.* settings now even if unchanged and
 * answers with the outcome (an application already running answers for it); refused while
 * mta.apply is off. *settings is the manager's pointer to the settings in force. */
void mta_apply_commands(mta_apply_t *ma, command_t *cmd, settings_t *const *settings);
/* The postconf arguments for settings: "queue_run_delay=900s minimal_backoff_time=900s …". */
void mta_apply_params(const settings_t *settings, char *out, size_t outlen);

#endif
