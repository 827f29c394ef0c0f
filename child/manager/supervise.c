/* supervise: see supervise.h. Events go to the manager's own spool (mreport), so a stop the
 * manager sees while the parent is away still reaches the parent's log later. */
#include "manager/supervise.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <jansson.h>
#include <sys/wait.h>

#include "log.h"
#include "manager/mta_action.h"
#include "manager/runcmd.h"
#include "util.h"

#define SUPERVISE_CMD_ERR_MAX 256

struct supervise {
    struct scan_proc *scan;
    mreport_t *mrep;
    pid_t ready_pid;          /* the start already recorded as "started" (first ScanStats) */
    pid_t killed_pid;         /* hung and sent SIGKILL: say why when it is reaped */
    char kill_reason[128];
    bool flush_due;           /* a start since the last flush began */
    bool flush_waits_logged;
    pid_t flush_for;          /* the start the running flush is for */
    runcmd_t *flush;
    char flush_cmd[1100];     /* what the flush runs, for its event */
    const struct mta_local *local;
    uint64_t last_stats_ms;
    uint64_t next_check_ms;
    /* the parent's commands (R7.4) */
    command_t *cmd;
    settings_t *const *settings;
    bool flush_admin;         /* the running flush is the administrator's */
    uint64_t flush_req;       /* command id answered when the running flush ends; 0 none */
    char reply_err[RUNCMD_RESULT_MAX + 1200];
};

supervise_t *supervise_new(struct scan_proc *scan, mreport_t *mrep,
                           const struct mta_local *local)
{
    supervise_t *sv = xcalloc(1, sizeof *sv);

    sv->scan = scan;
    sv->mrep = mrep;
    sv->local = local;
    return sv;
}

void supervise_destroy(supervise_t **svp)
{
    supervise_t *sv;

    if (svp == NULL || *svp == NULL)
        return;
    sv = *svp;
    if (sv->scan->pid != 0) {
        pid_t pid = sv->scan->pid;
        scan_proc_stop(sv->scan);
        mreport_event(sv->mrep, "system", "warning", false, NULL,
                      "scan service stopped pid=%ld: the manager is stopping", (long)pid);
    }
    runcmd_destroy(&sv->flush);
    if (sv->flush_req != 0)
        command_reply(sv->cmd, sv->flush_req, false,
                      "the manager stopped before the upstream queue flush ended", NULL);
    free(sv);
    *svp = NULL;
}

void supervise_on_stats(supervise_t *sv)
{
    sv->last_stats_ms = now_ms();
    if (sv->scan->pid == 0 || sv->scan->pid == sv->ready_pid)
        return;
    sv->ready_pid = sv->scan->pid;
    sv->flush_due = true;
    sv->flush_waits_logged = false;
    mreport_event(sv->mrep, "system", "info", false, NULL,
                  "scan service started pid=%ld listen=%s (restarts so far: %u)",
                  (long)sv->scan->pid, sv->scan->listen, sv->scan->restarts);
}

bool supervise_reap(supervise_t *sv)
{
    pid_t pid = sv->scan->pid;
    char how[192];
    int st;

    if (!scan_proc_reap(sv->scan))
        return false;
    st = sv->scan->exit_status;
    if (WIFSIGNALED(st))
        snprintf(how, sizeof how, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(st));
    if (pid == sv->killed_pid)
        snprintf(how + strlen(how), sizeof how - strlen(how), ", %s", sv->kill_reason);
    {
        uint64_t now = now_ms();
        uint64_t in = sv->scan->next_start_ms > now ? sv->scan->next_start_ms - now : 0;
        mreport_event(sv->mrep, "system", "warning", false, NULL,
                      "scan service stopped pid=%ld: %s; restart in %llu ms", (long)pid, how,
                      (unsigned long long)in);
    }
    return true;
}

/* --- flush (R1.5) -------------------------------------------------------------------------- */

/* Starts the upstream queue flush of mta.adapter (R1.5, R8.2); 0 started, -1 not (err
 * filled; recorded as an event unless there is nothing to run). */
static int s_flush_start(supervise_t *sv, const settings_t *settings, bool admin, char *err,
                         size_t errlen)
{
    struct runcmd_argv av;
    int r;

    sv->flush_due = false;
    r = mta_action_argv(settings, sv->local, MTA_ACTION_FLUSH, NULL, 0, &av, sv->flush_cmd,
                        sizeof sv->flush_cmd, err, errlen);
    if (r == 0) {
        log_info("upstream queue not flushed: %s", sv->flush_cmd);
        snprintf(err, errlen, "%s: nothing to run", sv->flush_cmd);
        return -1;
    }
    sv->flush_for = sv->scan->pid;
    sv->flush_admin = admin;
    if (r > 0) {
        sv->flush = runcmd_start("upstream queue flush", av.argv, RUNCMD_TIMEOUT_MS, err,
                                 errlen);
        runcmd_argv_free(&av);
    }
    if (sv->flush != NULL)
        return 0;
    mreport_event(sv->mrep, "system", "error", false, NULL,
                  "upstream queue flush failed: %s (mta.adapter %s)", err,
                  settings_str(settings, SETTING_MTA_ADAPTER));
    return -1;
}

/* The administrator's flush has ended: its answer. */
static void s_flush_answer(supervise_t *sv)
{
    json_t *d;
    char *txt;
    bool ok = runcmd_ok(sv->flush);

    if (sv->flush_req == 0)
        return;
    d = json_pack("{s:s, s:s, s:s}", "command", sv->flush_cmd, "result",
                  runcmd_result(sv->flush), "output", runcmd_output(sv->flush));
    txt = json_dumps(d, JSON_COMPACT);
    snprintf(sv->reply_err, sizeof sv->reply_err, "upstream queue flush failed: %s (%s)",
             runcmd_result(sv->flush), sv->flush_cmd);
    command_reply(sv->cmd, sv->flush_req, ok, ok ? NULL : sv->reply_err, txt);
    log_info("command id=%" PRIu64 " flush: %s", sv->flush_req, ok ? "done" : sv->reply_err);
    free(txt);
    json_decref(d);
    sv->flush_req = 0;
}

static void s_flush_tick(supervise_t *sv, const settings_t *settings)
{
    if (sv->flush != NULL && runcmd_poll(sv->flush)) {
        if (runcmd_ok(sv->flush) && sv->flush_admin)
            mreport_event(sv->mrep, "system", "info", false, NULL,
                          "upstream queue flushed on the administrator's request: %s",
                          sv->flush_cmd);
        else if (runcmd_ok(sv->flush))
            mreport_event(sv->mrep, "system", "info", false, NULL,
                          "upstream queue flushed after the scan service start pid=%ld: %s",
                          (long)sv->flush_for, sv->flush_cmd);
        else
            mreport_event(sv->mrep, "system", "error", false, NULL,
                          "upstream queue flush failed: %s (%s)", runcmd_result(sv->flush),
                          sv->flush_cmd);
        s_flush_answer(sv);
        runcmd_destroy(&sv->flush);
    }
    /* After every start, once it accepts; one at a time (a start during a flush gets its own). */
    if (!sv->flush_due || sv->flush != NULL || sv->scan->pid == 0 ||
        sv->scan->pid != sv->ready_pid)
        return;
    /* Never configured: the command is the parent's to choose; the first configuration
     * brings it and the flush runs then. */
    if (settings_version(settings) == 0) {
        if (!sv->flush_waits_logged)
            log_info("upstream queue flush waits for the parent's first configuration");
        sv->flush_waits_logged = true;
        return;
    }
    {
        char err[SUPERVISE_CMD_ERR_MAX];
        s_flush_start(sv, settings, false, err, sizeof err);
    }
}

/* --- periodic check ------------------------------------------------------------------------ */

static void s_check(supervise_t *sv, uint64_t interval_ms)
{
    struct scan_proc *sp = sv->scan;
    uint64_t now = now_ms(), silent, limit;

    if (sp->pid == 0 || sp->pid == sv->killed_pid)
        return;
    if (sp->pid != sv->ready_pid) {
        silent = now - sp->started_ms;
        limit = SUPERVISE_START_GRACE_MS;
    } else {
        silent = now - sv->last_stats_ms;
        limit = SUPERVISE_HUNG_CHECKS * interval_ms;
        if (limit < SUPERVISE_HUNG_MIN_MS)
            limit = SUPERVISE_HUNG_MIN_MS;
    }
    log_debug("scan service check pid=%ld silent_ms=%llu limit_ms=%llu", (long)sp->pid,
              (unsigned long long)silent, (unsigned long long)limit);
    if (silent <= limit)
        return;
    snprintf(sv->kill_reason, sizeof sv->kill_reason, "hung: no statistics for %llu s%s",
             (unsigned long long)(silent / 1000),
             sp->pid != sv->ready_pid ? " since its start" : "");
    log_err("scan service pid=%ld %s; killing it", (long)sp->pid, sv->kill_reason);
    mreport_event(sv->mrep, "system", "error", false, NULL,
                  "scan service not responding pid=%ld (%s); killing it for a restart",
                  (long)sp->pid, sv->kill_reason);
    sv->killed_pid = sp->pid;
    scan_proc_kill(sp, SIGKILL); /* works on a stopped process too; the reap restarts it */
}

void supervise_tick(supervise_t *sv, const settings_t *settings)
{
    uint64_t now = now_ms();
    uint64_t interval_ms =
        1000u * (uint64_t)settings_int(settings, SETTING_SUPERVISE_CHECK_INTERVAL_S);

    s_flush_tick(sv, settings);
    /* A shorter interval takes effect now, not after the old one has run out. */
    if (sv->next_check_ms == 0 || sv->next_check_ms > now + interval_ms)
        sv->next_check_ms = now + interval_ms;
    if (now >= sv->next_check_ms) {
        sv->next_check_ms = now + interval_ms;
        s_check(sv, interval_ms);
    }
}

/* --- the parent's commands (R7.4) ------------------------------------------------------------ */

static int s_cmd_flush(void *arg, const Portcullis__Command *cmd, Portcullis__CommandReply *reply)
{
    supervise_t *sv = arg;
    const settings_t *s = *sv->settings;

    reply->ok = false;
    if (sv->flush_req == cmd->id && cmd->id != 0)
        return 1; /* sent again while it runs: the one answer comes when it ends */
    if (sv->flush_req != 0) {
        reply->error = "an upstream queue flush asked for earlier is still running; retry when "
                       "it has ended";
        return 0;
    }
    if (sv->flush != NULL) { /* one is running (after a start): its end answers */
        sv->flush_req = cmd->id;
        log_info("command id=%" PRIu64 " flush: a flush is running, answered when it ends",
                 cmd->id);
        return 1;
    }
    if (settings_version(s) == 0) {
        reply->error = "no configuration from the parent yet: its mta.adapter is not known";
        return 0;
    }
    if (sv->scan->pid == 0) {
        reply->error = "the scan service is not running: the upstream queue is flushed when it "
                       "has started";
        return 0;
    }
    log_info("command id=%" PRIu64 " flush: mta.adapter %s", cmd->id,
             settings_str(s, SETTING_MTA_ADAPTER));
    if (s_flush_start(sv, s, true, sv->reply_err, sizeof sv->reply_err) != 0) {
        reply->error = sv->reply_err;
        return 0;
    }
    sv->flush_req = cmd->id;
    return 1;
}

static int s_cmd_reload(void *arg, const Portcullis__Command *cmd,
                        Portcullis__CommandReply *reply)
{
    supervise_t *sv = arg;
    Portcullis__ReloadSignatures rs = PORTCULLIS__RELOAD_SIGNATURES__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    rs.reason = "administrator";
    env.body_case = PORTCULLIS__ENVELOPE__BODY_RELOAD_SIGNATURES;
    env.reload_signatures = &rs;
    if (sv->scan->pid == 0 || scan_proc_send(sv->scan, &env) != 0) {
        reply->ok = false;
        reply->error = "the scan service is not running: it loads the signatures when it starts";
        return 0;
    }
    log_info("command id=%" PRIu64 " reload: signature reload asked of the scan service pid=%ld",
             cmd->id, (long)sv->scan->pid);
    snprintf(sv->reply_err, sizeof sv->reply_err, "{\"scan_pid\":%ld}", (long)sv->scan->pid);
    reply->ok = true;
    reply->detail = sv->reply_err;
    return 0;
}

void supervise_commands(supervise_t *sv, command_t *cmd, settings_t *const *settings)
{
    sv->cmd = cmd;
    sv->settings = settings;
    if (command_register(cmd, "flush", s_cmd_flush, sv) != 0 ||
        command_register(cmd, "reload", s_cmd_reload, sv) != 0)
        fatal("supervise: cannot register the flush and reload commands");
}
