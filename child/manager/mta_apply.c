/* mta_apply: see mta_apply.h. One step at a time: postconf, then reload; the applied key (the
 * adapter and the parameters) is written only after the reload succeeded. */
#include "manager/mta_apply.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "log.h"
#include "manager/mta_action.h"
#include "manager/runcmd.h"
#include "util.h"

#define MTA_APPLY_FILE "mta_applied"
#define MTA_APPLY_PARAMS 5

enum mta_step { MTA_IDLE, MTA_POSTCONF, MTA_RELOAD };

struct mta_apply {
    mreport_t *mrep;
    char path[4096];
    char applied[MTA_APPLY_KEY_MAX];   /* key of the last successful application; "" none */
    char trying[MTA_APPLY_KEY_MAX];    /* key being applied */
    char failed[MTA_APPLY_KEY_MAX];    /* key of the last failure */
    char params[512];                  /* being applied, for the event */
    const struct mta_local *local;     /* child.conf's commands (mta.adapter local) */
    uint64_t failed_version, retry_at_ms;
    enum mta_step step;
    runcmd_t *cmd;
    char state[MTA_APPLY_STATE_MAX];
    char last_error_event[MTA_APPLY_STATE_MAX]; /* one event per distinct error, not per retry */
    /* the parent's command (R7.4) */
    command_t *commands;
    settings_t *const *settings;
    bool force;                        /* apply at the next step even if unchanged */
    uint64_t req;                      /* command id answered when the application ends */
};

mta_apply_t *mta_apply_new(const char *state_dir, mreport_t *mrep,
                           const struct mta_local *local)
{
    mta_apply_t *ma = xcalloc(1, sizeof *ma);
    char err[512], *data = NULL;
    size_t len;

    ma->mrep = mrep;
    ma->local = local;
    snprintf(ma->path, sizeof ma->path, "%s/%s", state_dir, MTA_APPLY_FILE);
    strlcpy_p(ma->state, "off", sizeof ma->state);
    if (fs_read_file(ma->path, sizeof ma->applied - 1, &data, &len, err, sizeof err) == 0) {
        strlcpy_p(ma->applied, data, sizeof ma->applied);
        free(data);
    }
    return ma;
}

void mta_apply_destroy(mta_apply_t **map)
{
    if (map == NULL || *map == NULL)
        return;
    runcmd_destroy(&(*map)->cmd);
    if ((*map)->req != 0)
        command_reply((*map)->commands, (*map)->req, false,
                      "the manager stopped before the MTA settings were applied", NULL);
    free(*map);
    *map = NULL;
}

const char *mta_apply_state(const mta_apply_t *ma) { return ma->state; }

bool mta_apply_busy(const mta_apply_t *ma) { return ma->cmd != NULL; }

void mta_apply_params(const settings_t *s, char *out, size_t outlen)
{
    snprintf(out, outlen,
             "queue_run_delay=%llds minimal_backoff_time=%llds maximal_backoff_time=%llds "
             "maximal_queue_lifetime=%llds bounce_queue_lifetime=%llds",
             (long long)settings_int(s, SETTING_MTA_QUEUE_RUN_DELAY),
             (long long)settings_int(s, SETTING_MTA_MINIMAL_BACKOFF_TIME),
             (long long)settings_int(s, SETTING_MTA_MAXIMAL_BACKOFF_TIME),
             (long long)settings_int(s, SETTING_MTA_MAXIMAL_QUEUE_LIFETIME),
             (long long)settings_int(s, SETTING_MTA_BOUNCE_QUEUE_LIFETIME));
}

/* The command's answer, if one waits: ok, or the state (the failing step and its output). */
static void s_answer(mta_apply_t *ma, bool ok)
{
    char *txt = NULL;
    json_t *d;

    if (ma->req == 0)
        return;
    d = json_pack("{s:s, s:s}", "params", ma->params, "state", ma->state);
    txt = json_dumps(d, JSON_COMPACT);
    command_reply(ma->commands, ma->req, ok, ok ? NULL : ma->state, txt);
    log_info("command id=%" PRIu64 " apply_mta: %s", ma->req, ok ? "done" : ma->state);
    free(txt);
    json_decref(d);
    ma->req = 0;
}

static void s_failed(mta_apply_t *ma, const char *what, const char *why, const settings_t *s)
{
    uint64_t interval_ms = 1000u * (uint64_t)settings_int(s, SETTING_SUPERVISE_CHECK_INTERVAL_S);

    snprintf(ma->state, sizeof ma->state, "%s failed: %s", what, why);
    strlcpy_p(ma->failed, ma->trying, sizeof ma->failed);
    ma->failed_version = settings_version(s);
    ma->retry_at_ms = now_ms() + interval_ms;
    ma->step = MTA_IDLE;
    log_err("MTA settings not applied: %s; retry in %llu s or with the next configuration",
            ma->state, (unsigned long long)(interval_ms / 1000));
    if (strcmp(ma->last_error_event, ma->state) != 0) {
        mreport_event(ma->mrep, "system", "error", false, NULL, "MTA settings not applied: %s",
                      ma->state);
        strlcpy_p(ma->last_error_event, ma->state, sizeof ma->last_error_event);
    }
    s_answer(ma, false);
}

/* Starts an action of mta.adapter with the parameters (postconf's); 0 started, -1 failed
 * (recorded). */
static int s_run(mta_apply_t *ma, enum mta_action a, const char *params, const settings_t *s)
{
    const char *extra[MTA_APPLY_PARAMS];
    char copy[512], err[512], why[1700], desc[1100];
    struct runcmd_argv av;
    size_t n = 0;
    int r;

    strlcpy_p(copy, params != NULL ? params : "", sizeof copy);
    for (char *save = NULL, *w = strtok_r(copy, " ", &save); w != NULL && n < MTA_APPLY_PARAMS;
         w = strtok_r(NULL, " ", &save))
        extra[n++] = w;
    r = mta_action_argv(s, ma->local, a, extra, n, &av, desc, sizeof desc, err, sizeof err);
    if (r > 0) {
        ma->cmd = runcmd_start(mta_action_name(a), av.argv, RUNCMD_TIMEOUT_MS, err, sizeof err);
        runcmd_argv_free(&av);
        if (ma->cmd != NULL)
            return 0;
        snprintf(why, sizeof why, "\"%s\": %s", desc, err);
    } else {
        snprintf(why, sizeof why, "%s", r == 0 ? desc : err);
    }
    s_failed(ma, mta_action_name(a), why, s);
    return -1;
}

static void s_done(mta_apply_t *ma, const settings_t *s)
{
    char err[512];
    bool ok = runcmd_ok(ma->cmd);
    char result[RUNCMD_RESULT_MAX];

    strlcpy_p(result, runcmd_result(ma->cmd), sizeof result);
    runcmd_destroy(&ma->cmd);
    if (!ok) {
        s_failed(ma, ma->step == MTA_POSTCONF ? "postconf" : "reload", result, s);
        return;
    }
    if (ma->step == MTA_POSTCONF) {
        ma->step = MTA_RELOAD;
        s_run(ma, MTA_ACTION_RELOAD, NULL, s);
        return;
    }
    ma->step = MTA_IDLE;
    strlcpy_p(ma->applied, ma->trying, sizeof ma->applied);
    ma->failed[0] = '\0';
    ma->last_error_event[0] = '\0';
    strlcpy_p(ma->state, "ok", sizeof ma->state);
    if (fs_write_atomic(ma->path, ma->applied, strlen(ma->applied), 0600, err, sizeof err) != 0)
        log_err("MTA settings applied but not remembered (applied again at the next start): %s",
                err);
    log_info("MTA settings applied: %s", ma->params);
    mreport_event(ma->mrep, "system", "info", false, NULL, "MTA settings applied: %s", ma->params);
    s_answer(ma, true);
}

void mta_apply_tick(mta_apply_t *ma, const settings_t *s)
{
    const char *adapter = settings_str(s, SETTING_MTA_ADAPTER);
    char params[sizeof ma->params], key[MTA_APPLY_KEY_MAX];

    if (ma->cmd != NULL) {
        if (runcmd_poll(ma->cmd))
            s_done(ma, s);
        return;
    }
    if (!settings_bool(s, SETTING_MTA_APPLY)) {
        strlcpy_p(ma->state, "off", sizeof ma->state);
        return;
    }
    mta_apply_params(s, params, sizeof params);
    snprintf(key, sizeof key, "%s\n%s\n", adapter, params);
    if (strcmp(key, ma->applied) == 0 && !ma->force) {
        strlcpy_p(ma->state, "ok", sizeof ma->state);
        return;
    }
    /* The same failure again only after the check interval or with a new configuration. */
    if (strcmp(key, ma->failed) == 0 && settings_version(s) == ma->failed_version &&
        now_ms() < ma->retry_at_ms && !ma->force)
        return;
    if (strcmp(ma->state, "ok") == 0 || strcmp(ma->state, "off") == 0)
        strlcpy_p(ma->state, "applying", sizeof ma->state);
    strlcpy_p(ma->trying, key, sizeof ma->trying);
    strlcpy_p(ma->params, params, sizeof ma->params);
    log_info("applying MTA settings%s: mta.adapter %s: %s",
             ma->force ? " (the administrator's request)" : "", adapter, params);
    ma->force = false;
    ma->step = MTA_POSTCONF;
    s_run(ma, MTA_ACTION_POSTCONF, params, s);
}

/* --- the parent's command (R7.4) --------------------------------------------------------------- */

static int s_cmd_apply(void *arg, const Portcullis__Command *cmd, Portcullis__CommandReply *reply)
{
    mta_apply_t *ma = arg;
    const settings_t *s = *ma->settings;

    reply->ok = false;
    if (ma->req == cmd->id && cmd->id != 0)
        return 1; /* sent again while it runs: the one answer comes when it ends */
    if (!settings_bool(s, SETTING_MTA_APPLY)) {
        reply->error = "mta.apply is off: this child does not apply MTA settings to its upstream "
                       "Postfix (set mta.apply to true, and mta.adapter to the Postfix it "
                       "serves, to have them applied)";
        return 0;
    }
    if (ma->req != 0) {
        reply->error = "an application of the MTA settings asked for earlier is still running; "
                       "retry when it has ended";
        return 0;
    }
    ma->req = cmd->id;
    if (ma->cmd == NULL) { /* else the running application answers when it ends */
        ma->force = true;
        mta_apply_tick(ma, s); /* starts it now (or fails and answers now) */
    }
    return 1;
}

void mta_apply_commands(mta_apply_t *ma, command_t *cmd, settings_t *const *settings)
{
    ma->commands = cmd;
    ma->settings = settings;
    if (command_register(cmd, "apply_mta", s_cmd_apply, ma) != 0)
        fatal("mta_apply: cannot register the apply_mta command");
}
