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
#include "policy.h"
#include "scan/av.h"
#include "scan/ers.h"
#include "scan/mime.h"
#include "scan/report.h"
#include "scan/scanpool.h"
#include "scan/scan_control.h"
#include "scan/sandbox.h"
#include "scan/smartscan.h"
#include "scan/smtpd.h"
#include "scan/wrs.h"
#include "scan/wrs_client.h"
#include "settings.h"
#include "util.h"
#include "wire.h"

#define SCAN_SHUTDOWN_GRACE_S 20 /* seconds transactions in progress get to finish on stop */
#define SCAN_STATS_INTERVAL_S 1  /* seconds between ScanStats to the manager */
#define SCAN_REPORT_SYNC_MS 200  /* report spool fdatasync interval for records no 250 waits on */

struct scan {
    const struct scan_options *opt;
    struct event_base *base;
    settings_t *settings;
    smtpd_t *smtpd;
    av_t *av;
    av_t *light;             /* smart scan's light pattern (R2.1); NULL without a directory */
    ers_t *ers;
    scanpool_t *pool;
    policy_t *policy;        /* compiled at start, until the pool takes it */
    wrs_t *wrs;              /* web-reputation lists, likewise */
    scan_control_t *control;
    smartscan_t *smart;
    wrs_client_t *wrs_client;
    struct curl_peer peer;   /* the look-up service's pin and this child's credential (R8.7) */
    struct event *sigterm, *sigint, *stats_timer, *grace_timer, *report_timer, *selftest;
    uint64_t started_ms;
    bool stopping;
};

/* The policy of a snapshot. Before the parent ever sent one (no snapshot, version 0) the
 * built-in default applies: viruses and scan exceptions are quarantined (R5.1) — never
 * delivered unseen. Once the parent has spoken, its rules are authoritative, even empty ones. */
static policy_t *s_compile_policy(const Portcullis__ConfigSnapshot *snap, char *err, size_t n)
{
    Portcullis__Condition c[2] = { PORTCULLIS__CONDITION__INIT, PORTCULLIS__CONDITION__INIT };
    Portcullis__Action a[2] = { PORTCULLIS__ACTION__INIT, PORTCULLIS__ACTION__INIT };
    Portcullis__PolicyRule r[2] = { PORTCULLIS__POLICY_RULE__INIT, PORTCULLIS__POLICY_RULE__INIT };
    Portcullis__Area ar[2] = { PORTCULLIS__AREA__INIT, PORTCULLIS__AREA__INIT };
    Portcullis__Condition *cp[2] = { &c[0], &c[1] };
    Portcullis__Action *ap[2] = { &a[0], &a[1] };
    Portcullis__PolicyRule *rp[2] = { &r[0], &r[1] };
    Portcullis__Area *arp[2] = { &ar[0], &ar[1] };
    static const char *const names[2] = { "Virus found (built-in)", "Scan exception (built-in)" };
    static const char *const kinds[2] = { "virus_found", "scan_exception" };

    if (snap != NULL && snap->version > 0)
        return policy_compile(snap->rules, snap->n_rules, snap->areas, snap->n_areas,
                              snap->spam_rules, snap->n_spam_rules, err, n);
    for (int i = 0; i < 2; i++) {
        c[i].kind = (char *)kinds[i];
        a[i].kind = "quarantine";
        a[i].arg = "Default quarantine";
        r[i].id = (uint64_t)i + 1;
        r[i].name = (char *)names[i];
        r[i].scope = "any";
        r[i].match = "any";
        r[i].n_conditions = 1;
        r[i].conditions = &cp[i];
        r[i].n_actions = 1;
        r[i].actions = &ap[i];
        r[i].enabled = true;
        ar[i].retention_days = 15;
    }
    ar[0].name = "Default quarantine";
    ar[0].kind = "quarantine";
    ar[1].name = "Default archive";
    ar[1].kind = "archive";
    return policy_compile(rp, 2, arp, 2, NULL, 0, err, n);
}

static policy_t *s_default_policy(void)
{
    char err[512];
    policy_t *p = s_compile_policy(NULL, err, sizeof err);

    if (p == NULL)
        fatal("built-in policy refused: %s", err);
    return p;
}

static void s_av_limits(const settings_t *s, struct av_limits *lim)
{
    lim->max_file_size = settings_int(s, SETTING_AV_MAX_FILE_SIZE);
    lim->max_scan_size = settings_int(s, SETTING_AV_MAX_SCAN_SIZE);
    lim->max_recursion = settings_int(s, SETTING_AV_MAX_RECURSION);
    lim->max_files = settings_int(s, SETTING_AV_MAX_FILES);
    lim->scan_timeout_ms = settings_int(s, SETTING_AV_SCAN_TIMEOUT_MS);
}

/* The web-reputation lists of a snapshot (none before the parent ever sent one). */
static wrs_t *s_compile_wrs(const Portcullis__ConfigSnapshot *snap, char *err, size_t n)
{
    if (snap == NULL || snap->version == 0)
        return wrs_new(NULL, 0, err, n);
    return wrs_new(snap->wrs, snap->n_wrs, err, n);
}

/* The snapshot the manager wrote (settings, policy, web-reputation lists); defaults when there
 * is none. */
/* R8.7: look-ups go to the parent's HTTPS key and carry this child's credential, which the
 * manager put in the snapshot (the parent never sends one). */
static void s_peer_of(const Portcullis__ConfigSnapshot *snap, struct curl_peer *peer)
{
    memset(peer, 0, sizeof *peer);
    if (snap->update_tls_pin != NULL)
        strlcpy_p(peer->pin, snap->update_tls_pin, sizeof peer->pin);
    if (snap->lookup_token != NULL)
        strlcpy_p(peer->bearer, snap->lookup_token, sizeof peer->bearer);
}

static settings_t *s_load_settings(const char *path, policy_t **policy, wrs_t **wrs,
                                   struct curl_peer *peer)
{
    Portcullis__ConfigSnapshot *snap;
    settings_t *s;
    struct stat st;
    char err[512];
    char *data;
    size_t len;

    *policy = NULL;
    *wrs = NULL;
    if (path == NULL || (stat(path, &st) != 0 && errno == ENOENT)) {
        log_info("no configuration at %s: using defaults", path != NULL ? path : "(none)");
        *policy = s_default_policy();
        return settings_new_defaults();
    }
    if (fs_read_file(path, WIRE_MSG_MAX, &data, &len, err, sizeof err) != 0) {
        log_err("configuration %s unreadable (%s): using defaults", path, err);
        *policy = s_default_policy();
        return settings_new_defaults();
    }
    snap = portcullis__config_snapshot__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (snap == NULL || snap->n_settings > WIRE_SETTINGS_MAX) {
        log_err("configuration %s undecodable: using defaults", path);
        if (snap != NULL)
            portcullis__config_snapshot__free_unpacked(snap, NULL);
        *policy = s_default_policy();
        return settings_new_defaults();
    }
    s = wire_settings_from_snapshot(snap, err, sizeof err);
    if (s != NULL)
        s_peer_of(snap, peer);
    if (s != NULL && (*policy = s_compile_policy(snap, err, sizeof err)) == NULL)
        settings_free(&s);
    if (s != NULL && (*wrs = s_compile_wrs(snap, err, sizeof err)) == NULL) {
        policy_free(policy);
        settings_free(&s);
    }
    if (s == NULL)
        log_err("configuration %s version %" PRIu64 " refused (%s): using defaults", path,
                snap->version, err);
    portcullis__config_snapshot__free_unpacked(snap, NULL);
    if (s == NULL)
        *policy = s_default_policy();
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
    policy_t *np = ns != NULL ? s_compile_policy(snap, err, sizeof err) : NULL;
    wrs_t *nw = np != NULL ? s_compile_wrs(snap, err, sizeof err) : NULL;
    struct av_limits lim;

    if (nw == NULL) {
        policy_free(&np);
        settings_free(&ns);
    }
    if (ns == NULL) {
        log_warn("config version=%" PRIu64 " refused: %s (keeping version=%" PRIu64 ")",
                 snap->version, err, settings_version(sc->settings));
        s_send_applied(sc, false, snap->version, err);
        return;
    }
    smtpd_set_settings(sc->smtpd, ns); /* new transactions use it from now on */
    log_info("config version=%" PRIu64 " web reputation entries=%zu", snap->version,
             wrs_count(nw));
    scanpool_set_policy(sc->pool, &np, &nw); /* scans in progress keep theirs */
    settings_free(&sc->settings);
    sc->settings = ns;
    s_av_limits(ns, &lim);
    av_set_limits(sc->av, &lim);        /* a change builds a new engine beside the old */
    if (sc->light != NULL)
        av_set_limits(sc->light, &lim);
    ers_configure(sc->ers, ns);
    s_peer_of(snap, &sc->peer);
    smartscan_configure(sc->smart, ns, &sc->peer);
    wrs_client_configure(sc->wrs_client, ns, &sc->peer);
    log_info("config applied version=%" PRIu64, snap->version);
    s_send_applied(sc, true, 0, NULL);
}

static void s_control_message(const envelope_t *env, void *arg)
{
    struct scan *sc = arg;

    if (env->body_case == PORTCULLIS__ENVELOPE__BODY_CONFIG)
        s_apply_config(sc, env->config);
    else if (env->body_case == PORTCULLIS__ENVELOPE__BODY_RELOAD_SIGNATURES) {
        /* the manager says why: an installed update, or the administrator's command (R7.4) */
        const char *why = env->reload_signatures->reason != NULL &&
                                  env->reload_signatures->reason[0] != '\0'
                              ? env->reload_signatures->reason : "manager";
        av_reload(sc->av, why);
        if (sc->light != NULL)
            av_reload(sc->light, why);
        /* `portcullis child reload NAME` also ends this child's own switch away from smart
         * scan (R2.4, R8.4: the administrator's per-child way back) */
        if (strcmp(why, "administrator") == 0)
            smartscan_resume(sc->smart);
    }
    else
        log_debug("control channel: %s ignored", wire_body_name(env));
}

/* R2.3/R2.4, R8.4: the manager records it as this child's event; its Health shows it. */
static void s_method_changed(const char *method, const char *reason, void *arg)
{
    struct scan *sc = arg;
    Portcullis__Envelope env = PORTCULLIS__ENVELOPE__INIT;
    Portcullis__ScanMethodChanged mc = PORTCULLIS__SCAN_METHOD_CHANGED__INIT;

    mc.method = (char *)method;
    mc.reason = (char *)reason;
    mc.at_ms = wall_ms();
    env.body_case = PORTCULLIS__ENVELOPE__BODY_SCAN_METHOD_CHANGED;
    env.scan_method_changed = &mc;
    if (sc->control == NULL || scan_control_send(sc->control, &env) != 0)
        log_warn("scan method change to %s not reported to the manager", method);
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
    struct av_info ai, li;

    (void)fd;
    (void)what;
    smtpd_get_stats(sc->smtpd, &st);
    av_get_info(sc->av, &ai);
    ss.messages_quarantined = st.messages_quarantined;
    ss.messages_deleted = st.messages_deleted;
    ss.viruses_found = st.viruses_found;
    ss.scan_exceptions = st.scan_exceptions;
    ss.signature_version = ai.version;
    ss.engine_swaps = ai.swaps;
    av_get_info(sc->light, &li); /* "none" without one */
    ss.light_signature_version = li.version;
    ss.connections = st.connections;
    ss.messages_relayed = st.messages_relayed;
    ss.messages_tempfailed = st.messages_tempfailed;
    ss.messages_rejected = st.messages_rejected;
    ss.inflight = st.inflight;
    ss.sessions = st.sessions;
    ss.bytes_relayed = st.bytes_relayed;
    ss.started_ms = sc->started_ms;
    ss.config_version = settings_version(sc->settings);
    ss.ers_state = (char *)ers_state_name(sc->ers);
    ss.scan_method = smartscan_in_force(sc->smart) ? "smart"
                     : settings_bool(sc->settings, SETTING_AV_ENABLED) && ai.loaded
                         ? "conventional"
                         : "none";
    ss.smart_scan_state = (char *)smartscan_state(sc->smart);
    ss.scan_ms_buckets = st.scan_ms.buckets;
    ss.n_scan_ms_buckets = SCAN_LATENCY_NBUCKETS;
    ss.scan_ms_sum = st.scan_ms.sum_ms;
    ss.scan_ms_count = st.scan_ms.count;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_SCAN_STATS;
    env.scan_stats = &ss;
    scan_control_send(sc->control, &env);
}

static void s_report_sync_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    report_sync();
}

static void s_cleanup(struct scan *sc)
{
    smtpd_free(&sc->smtpd);   /* jobs still scanning are disowned… */
    scanpool_free(&sc->pool); /* …and end here, unacknowledged */
    ers_free(&sc->ers);       /* after the sessions: they hold its queries */
    smartscan_free(&sc->smart); /* look-ups in flight end too */
    wrs_client_free(&sc->wrs_client);
    av_free(&sc->av);
    av_free(&sc->light);
    policy_free(&sc->policy);
    wrs_free(&sc->wrs);
    scan_control_free(&sc->control);
    if (sc->sigterm != NULL)
        event_free(sc->sigterm);
    if (sc->selftest != NULL)
        event_free(sc->selftest);
    if (sc->sigint != NULL)
        event_free(sc->sigint);
    if (sc->stats_timer != NULL)
        event_free(sc->stats_timer);
    if (sc->grace_timer != NULL)
        event_free(sc->grace_timer);
    if (sc->report_timer != NULL)
        event_free(sc->report_timer);
    report_close();
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
    umask(007); /* what it stores its manager reads and removes (group portcullis, R8.1) */
    sc.started_ms = wall_ms();
    mime_init(); /* library set-up, once, before any scan thread */
    if (av_init() != 0)
        fatal("scan service cannot start: libclamav");
    sc.settings = s_load_settings(opt->config_path, &sc.policy, &sc.wrs, &sc.peer);
    sc.base = event_base_new();
    if (sc.base == NULL)
        fatal("scan service: cannot create the event loop");
    if (report_open(opt->spool_dir, err, sizeof err) != 0)
        fatal("scan service cannot start: report spool: %s", err);
    sc.smtpd = smtpd_new(sc.base, opt->listen, opt->downstream, opt->hostname, sc.settings, err,
                         sizeof err);
    if (sc.smtpd == NULL)
        fatal("scan service cannot start: %s", err);
    {
        struct av_limits lim;
        s_av_limits(sc.settings, &lim);
        sc.av = av_new(opt->signature_dir, &lim);
        av_watch(sc.av, sc.base);
        if (opt->light_signature_dir != NULL && opt->light_signature_dir[0] != '\0') {
            sc.light = av_new_optional("light pattern", opt->light_signature_dir, &lim);
            av_watch(sc.light, sc.base);
        }
    }
    sc.pool = scanpool_new(sc.base, (unsigned)settings_int(sc.settings, SETTING_SCAN_THREADS),
                           sc.av, opt->quarantine_dir, opt->archive_dir, smtpd_scan_done,
                           sc.smtpd);
    if (sc.pool == NULL)
        fatal("scan service cannot start: no scan threads");
    scanpool_set_policy(sc.pool, &sc.policy, &sc.wrs);
    scanpool_set_light(sc.pool, sc.light);
    smtpd_set_pool(sc.smtpd, sc.pool);
    if (smtpd_set_spill_dir(sc.smtpd, opt->spool_dir) != 0)
        fatal("scan service cannot start: spool directory %s: %m", opt->spool_dir);
    sc.ers = ers_new(sc.base, opt->dns_server, err, sizeof err);
    if (sc.ers == NULL)
        fatal("scan service cannot start: email reputation: %s", err);
    ers_configure(sc.ers, sc.settings);
    smtpd_set_ers(sc.smtpd, sc.ers);
    sc.smart = smartscan_new(sc.base, s_method_changed, &sc);
    if (sc.smart == NULL)
        fatal("scan service cannot start: smart-protection client");
    smtpd_set_smartscan(sc.smtpd, sc.smart);
    sc.wrs_client = wrs_client_new(sc.base);
    if (sc.wrs_client == NULL)
        fatal("scan service cannot start: web-reputation client");
    wrs_client_configure(sc.wrs_client, sc.settings, &sc.peer);
    smtpd_set_wrs(sc.smtpd, sc.wrs_client);
    if (opt->control_fd >= 0) {
        struct scan_control_handlers h = { .message = s_control_message,
                                           .closed = s_control_closed };
        sc.control = scan_control_new(sc.base, opt->control_fd, &h, &sc);
        if (sc.control == NULL)
            fatal("scan service cannot start: control channel unusable");
        sc.stats_timer = event_new(sc.base, -1, EV_PERSIST, s_stats_cb, &sc);
        evtimer_add(sc.stats_timer, &every);
    }
    {
        struct timeval sync_every = { 0, SCAN_REPORT_SYNC_MS * 1000 };
        sc.report_timer = event_new(sc.base, -1, EV_PERSIST, s_report_sync_cb, &sc);
        evtimer_add(sc.report_timer, &sync_every);
    }
    smartscan_configure(sc.smart, sc.settings, &sc.peer); /* R2.2: checks the server at start */
    sc.sigterm = evsignal_new(sc.base, SIGTERM, s_signal_cb, &sc);
    sc.sigint = evsignal_new(sc.base, SIGINT, s_signal_cb, &sc);
    evsignal_add(sc.sigterm, NULL);
    evsignal_add(sc.sigint, NULL);
    sc.selftest = sandbox_selftest_on(sc.base);
    if (sandbox_install(err, sizeof err) != 0)
        log_err("scan service runs WITHOUT its system-call filter: %s", err);
    else
        log_info("system-call filter in force");
    log_info("scan service ready listen=%s downstream=%s config_version=%" PRIu64, opt->listen,
             opt->downstream, settings_version(sc.settings));
    event_base_dispatch(sc.base);
    s_cleanup(&sc);
    log_info("scan service stopped");
    return 0;
}
