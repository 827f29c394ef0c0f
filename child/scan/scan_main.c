/* scan_main: the scan service process: loads the configuration the manager left on disk, binds
 * the SMTP listener, runs the event loop, applies configuration snapshots from the manager
 * (validate whole, then swap), reports counters every second, and stops gracefully on SIGTERM
 * or when the manager goes away. */
#include "scan/scan.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "fs.h"
#include "log.h"
#include "scan/scan_control.h"
#include "scan/smtpd.h"
#include "settings.h"
#include "util.h"
#include "wire.h"

#define SCAN_SHUTDOWN_GRACE_S 20 /* seconds transactions in progress get to finish on stop */
#define SCAN_STATS_INTERVAL_S 1  /* seconds between ScanStats to the manager */

struct scan {
    const struct scan_options *opt;
    struct event_base *base;
    settings_t *settings;
    smtpd_t *smtpd;
    scan_control_t *control;
    struct event *sigterm, *sigint, *stats_timer, *grace_timer;
    uint64_t started_ms;
    bool stopping;
};

/* The snapshot the manager wrote; defaults when there is none. */
static settings_t *s_load_settings(const char *path)
{
    Portcullis__ConfigSnapshot *snap;
    settings_t *s;
    struct stat st;
    char err[512];
    char *data;
    size_t len;

    if (path == NULL || (stat(path, &st) != 0 && errno == ENOENT)) {
        log_info("no configuration at %s: using defaults", path != NULL ? path : "(none)");
        return settings_new_defaults();
    }
    if (fs_read_file(path, WIRE_MSG_MAX, &data, &len, err, sizeof err) != 0) {
        log_err("configuration %s unreadable (%s): using defaults", path, err);
        return settings_new_defaults();
    }
    snap = portcullis__config_snapshot__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (snap == NULL || snap->n_settings > WIRE_SETTINGS_MAX) {
        log_err("configuration %s undecodable: using defaults", path);
        if (snap != NULL)
            portcullis__config_snapshot__free_unpacked(snap, NULL);
        return settings_new_defaults();
    }
    s = wire_settings_from_snapshot(snap, err, sizeof err);
    if (s == NULL)
        log_err("configuration %s version %" PRIu64 " refused (%s): using defaults", path,
                snap->version, err);
    portcullis__config_snapshot__free_unpacked(snap, NULL);
    return s != NULL ? s : settings_new_defaults();
}

static void s_send_applied(struct scan *sc, bool ok, uint64_t refused, const char *error)
{
    Portcullis__Envelope env = PORTCULLIS__ENVELOPE__INIT;
    Portcullis__ConfigApplied ca = PORTCULLIS__CONFIG_APPLIED__INIT;

    ca.version = settings_version(sc->settings);
    ca.ok = ok;
    ca.refused_version = refused;
    ca.error = (char *)(error != NULL ? error : "");
    env.body_case = PORTCULLIS__ENVELOPE__BODY_CONFIG_APPLIED;
    env.config_applied = &ca;
    scan_control_send(sc->control, &env);
}

static void s_apply_config(struct scan *sc, const Portcullis__ConfigSnapshot *snap)
{
    char err[512];
    settings_t *ns = wire_settings_from_snapshot(snap, err, sizeof err);

    if (ns == NULL) {
        log_warn("config version=%" PRIu64 " refused: %s (keeping version=%" PRIu64 ")",
                 snap->version, err, settings_version(sc->settings));
        s_send_applied(sc, false, snap->version, err);
        return;
    }
    smtpd_set_settings(sc->smtpd, ns); /* new transactions use it from now on */
    settings_free(&sc->settings);
    sc->settings = ns;
    log_info("config applied version=%" PRIu64, snap->version);
    s_send_applied(sc, true, 0, NULL);
}

static void s_control_message(const envelope_t *env, void *arg)
{
    struct scan *sc = arg;

    if (env->body_case == PORTCULLIS__ENVELOPE__BODY_CONFIG)
        s_apply_config(sc, env->config);
    else
        log_debug("control channel: %s ignored", wire_body_name(env));
}

static void s_drained(void *arg)
{
    struct scan *sc = arg;

    log_info("scan service: all sessions finished");
    event_base_loopexit(sc->base, NULL);
}

static void s_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct scan *sc = arg;
    struct smtpd_stats st;

    (void)fd;
    (void)what;
    smtpd_get_stats(sc->smtpd, &st);
    log_warn("scan service: shutdown grace of %d s over: dropping %u sessions (%u transactions "
             "unacknowledged, they stay queued upstream)",
             SCAN_SHUTDOWN_GRACE_S, st.sessions, st.inflight);
    event_base_loopexit(sc->base, NULL);
}

static void s_stop(struct scan *sc, const char *why)
{
    struct timeval grace = { SCAN_SHUTDOWN_GRACE_S, 0 };
    struct smtpd_stats st;

    if (sc->stopping)
        return;
    sc->stopping = true;
    smtpd_get_stats(sc->smtpd, &st);
    log_info("scan service stopping reason=%s sessions=%u inflight=%u", why, st.sessions,
             st.inflight);
    sc->grace_timer = evtimer_new(sc->base, s_grace_cb, sc);
    evtimer_add(sc->grace_timer, &grace);
    smtpd_shutdown(sc->smtpd, s_drained, sc);
}

static void s_control_closed(void *arg) { s_stop(arg, "manager gone"); }

static void s_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    s_stop(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void s_stats_cb(evutil_socket_t fd, short what, void *arg)
{
    struct scan *sc = arg;
    Portcullis__Envelope env = PORTCULLIS__ENVELOPE__INIT;
    Portcullis__ScanStats ss = PORTCULLIS__SCAN_STATS__INIT;
    struct smtpd_stats st;

    (void)fd;
    (void)what;
    smtpd_get_stats(sc->smtpd, &st);
    ss.connections = st.connections;
    ss.messages_relayed = st.messages_relayed;
    ss.messages_tempfailed = st.messages_tempfailed;
    ss.messages_rejected = st.messages_rejected;
    ss.inflight = st.inflight;
    ss.sessions = st.sessions;
    ss.bytes_relayed = st.bytes_relayed;
    ss.started_ms = sc->started_ms;
    ss.config_version = settings_version(sc->settings);
    env.body_case = PORTCULLIS__ENVELOPE__BODY_SCAN_STATS;
    env.scan_stats = &ss;
    scan_control_send(sc->control, &env);
}

static void s_cleanup(struct scan *sc)
{
    smtpd_free(&sc->smtpd);
    scan_control_free(&sc->control);
    if (sc->sigterm != NULL)
        event_free(sc->sigterm);
    if (sc->sigint != NULL)
        event_free(sc->sigint);
    if (sc->stats_timer != NULL)
        event_free(sc->stats_timer);
    if (sc->grace_timer != NULL)
        event_free(sc->grace_timer);
    settings_free(&sc->settings);
    if (sc->base != NULL)
        event_base_free(sc->base);
}

int scan_main(const struct scan_options *opt)
{
    struct scan sc = { .opt = opt };
    struct timeval every = { SCAN_STATS_INTERVAL_S, 0 };
    char err[512];

    /* Never outlive the manager: its death is our SIGTERM (graceful stop). */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        log_warn("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    sc.started_ms = wall_ms();
    sc.settings = s_load_settings(opt->config_path);
    sc.base = event_base_new();
    if (sc.base == NULL)
        fatal("scan service: cannot create the event loop");
    sc.smtpd = smtpd_new(sc.base, opt->listen, opt->downstream, opt->hostname, sc.settings, err,
                         sizeof err);
    if (sc.smtpd == NULL)
        fatal("scan service cannot start: %s", err);
    if (opt->control_fd >= 0) {
        struct scan_control_handlers h = { .message = s_control_message,
                                           .closed = s_control_closed };
        sc.control = scan_control_new(sc.base, opt->control_fd, &h, &sc);
        if (sc.control == NULL)
            fatal("scan service cannot start: control channel unusable");
        sc.stats_timer = event_new(sc.base, -1, EV_PERSIST, s_stats_cb, &sc);
        evtimer_add(sc.stats_timer, &every);
    }
    sc.sigterm = evsignal_new(sc.base, SIGTERM, s_signal_cb, &sc);
    sc.sigint = evsignal_new(sc.base, SIGINT, s_signal_cb, &sc);
    evsignal_add(sc.sigterm, NULL);
    evsignal_add(sc.sigint, NULL);
    log_info("scan service ready listen=%s downstream=%s config_version=%" PRIu64, opt->listen,
             opt->downstream, settings_version(sc.settings));
    event_base_dispatch(sc.base);
    s_cleanup(&sc);
    log_info("scan service stopped");
    return 0;
}
