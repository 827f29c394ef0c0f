/* manager: see manager.h. One zmq_poll loop over the parent link (enrolment DEALER, then
 * cluster DEALER), the scan service's control socket and a self-pipe for signals.
 *
 * Link states (Paranoid Pirate): ENROL asks the enrolment socket whether our key is in (the
 * answer is quick and says why not); LINKING sends Hello until the parent answers; UP carries
 * config, heartbeats and health; silence for LINK_LIVENESS heartbeats → BACKOFF (1 → 32 s)
 * → ENROL again. Mail never waits for any of this: the scan service runs on the cached
 * configuration from the first second. */
#include "manager/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "conf.h"
#include "fs.h"
#include "keys.h"
#include "privdrop.h"
#include <sys/stat.h>
#include "manager/mta_action.h"
#include "link.h"
#include "log.h"
#include "lookup_auth.h"
#include "manager/command.h"
#include "manager/config_cache.h"
#include "manager/mreport.h"
#include "manager/mta_apply.h"
#include "manager/quota.h"
#include "manager/report_ship.h"
#include "manager/scan_proc.h"
#include "manager/update.h"
#include "manager/supervise.h"
#include "policy.h"
#include "util.h"
#include "wire.h"

#define MANAGER_ENROL_RETRY_MS 2000     /* resend an unanswered or pending enrolment request */
#define MANAGER_REFUSED_RETRY_MS 30000  /* after a refusal: the administrator has to act */
#define MANAGER_CONNECT_RETRY_MS 200   /* resend while the connection is being made */
#define MANAGER_RATE_WINDOW 61          /* one-second samples kept for messages per minute */

static const struct conf_key s_conf_keys[] = {
    { "name", NULL, "this child's name, as the parent knows it" },
    { "parent_cluster", NULL, "parent's cluster endpoint, e.g. tcp://parent:7710" },
    { "parent_enrol", NULL, "parent's enrolment endpoint, e.g. tcp://parent:7711" },
    { "parent_public_key", NULL, "parent's CURVE public key (Z85), from `portcullis child enroll-token`" },
    { "enroll_token", "", "one-time enrolment token; empty: wait for `portcullis child approve`" },
    { "state_dir", "/var/lib/portcullis", "keys, cached configuration, spool" },
    { "smtp_listen", "127.0.0.1:10025", "where the upstream MTA delivers to the scan service" },
    { "downstream", "127.0.0.1:10026", "the downstream (reinjection) MTA" },
    { "hostname", "", "name in the SMTP greeting; empty: the system host name" },
    { "log_level", "info", "error, warning, info or debug" },
    { "signature_dir", "/var/lib/portcullis/signatures", "ClamAV signature files (watched: hot reload)" },
    { "light_signature_dir", "", "smart scan's local light pattern (ClamAV files, watched); empty: state_dir/light" },
    { "quarantine_dir", "", "quarantined message files; empty: state_dir/quarantine" },
    { "archive_dir", "", "archived message files; empty: state_dir/archive" },
    { "dns_server", "", "DNS server IP[:PORT] for email reputation; empty: /etc/resolv.conf" },
    { "user", "portcullis", "system user the manager runs as once started as root (R8.1)" },
    { "scan_user", "portcullis-scan", "system user of the scan service (group: user's group)" },
    { "mta_flush_command", "", "mta.adapter local: the upstream queue flush (this host's own)" },
    { "mta_postconf_command", "", "mta.adapter local: sets Postfix parameters (NAME=VALUE added)" },
    { "mta_reload_command", "", "mta.adapter local: reloads the MTA after postconf" },
};

enum link_state { LINK_ENROL, LINK_LINKING, LINK_UP, LINK_BACKOFF };

struct manager {
    conf_t *conf;
    const char *name, *parent_public;
    struct curve_keypair keys;
    char config_path[4096], hostname[256];
    settings_t *settings;            /* in force; version 0 = defaults, never configured */
    struct mta_local mta_local;      /* child.conf's MTA commands (mta.adapter local) */
    struct launcher launcher;        /* starts the scan service as its user (R8.1) */
    uint64_t pending_ack;            /* version sent to the scan service, awaiting its word */

    void *ctx, *sock;
    enum link_state state;
    uint64_t state_until_ms, last_rx_ms, last_tx_ms, next_health_ms;
    unsigned backoff_ms;
    int last_enrol_status;           /* to log a pending/refused answer once, not every 5 s */

    struct scan_proc scan;
    char spool_dir[4096], mspool_dir[4096], quarantine_dir[4096], archive_dir[4096];
    char light_dir[4096];      /* smart scan's light pattern (R2.1) */
    report_ship_t *ship;             /* reports from the spool to the parent (R7.3) */
    mreport_t *mrep;                 /* the manager's own events and removals (R1.6) */
    quota_t *quota;                  /* disk quotas and retention purge (R5.5, R5.7-R5.13) */
    report_ship_t *mship;            /* … shipped from state_dir/mspool */
    update_t *upd;                   /* signed component updates (R3.7): update.c */
    supervise_t *sup;                /* scan service events, flush, checks (R1.5): supervise.c */
    mta_apply_t *mta;                /* mta.* to the upstream Postfix (R4.3): mta_apply.c */
    command_t *cmd;                  /* the parent's commands (R7.4): command.c */
    uint64_t started_ms;
    uint64_t rate_at[MANAGER_RATE_WINDOW], rate_count[MANAGER_RATE_WINDOW];
    unsigned rate_head;
};

static int s_sigpipe[2] = { -1, -1 };


static void s_on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    ssize_t w = write(s_sigpipe[1], &b, 1);
    (void)w;
    errno = saved;
}

/* --- link --------------------------------------------------------------------------------- */

/* 0 sent; -1 not sent (no connection yet: ZMQ_IMMEDIATE queues nothing). */
static int s_send(struct manager *m, const envelope_t *env)
{
    if (m->sock == NULL)
        return -1;
    if (wire_send_zmq(m->sock, NULL, 0, env) == 0) {
        m->last_tx_ms = now_ms();
        return 0;
    }
    if (errno != EAGAIN)
        log_warn("send %s to parent: %s", wire_body_name(env), zmq_strerror(errno));
    return -1;
}

static int s_ship_send(void *arg, const envelope_t *env) { return s_send(arg, env); }

static void s_open(struct manager *m, const char *endpoint, int64_t max_msg)
{
    char err[512];

    link_close(&m->sock);
    m->sock = link_client_socket(m->ctx, &m->keys, m->parent_public, endpoint, max_msg, err,
                                 sizeof err);
    if (m->sock == NULL)
        log_err("%s", err);
}

static void s_send_enrol(struct manager *m)
{
    Portcullis__EnrollRequest req = PORTCULLIS__ENROLL_REQUEST__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    req.name = (char *)m->name;
    req.token = (char *)conf_get(m->conf, "enroll_token");
    req.software_version = PORTCULLIS_VERSION;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_ENROLL_REQUEST;
    env.enroll_request = &req;
    /* Unsent means not connected yet: try again soon rather than after the full retry. */
    m->state_until_ms = now_ms() + (s_send(m, &env) == 0 ? MANAGER_ENROL_RETRY_MS
                                                          : MANAGER_CONNECT_RETRY_MS);
}

static void s_enter_enrol(struct manager *m)
{
    m->state = LINK_ENROL;
    s_open(m, conf_get(m->conf, "parent_enrol"), LINK_ENROL_MSG_MAX);
    s_send_enrol(m);
}

static void s_send_hello(struct manager *m)
{
    Portcullis__Hello h = PORTCULLIS__HELLO__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    h.name = (char *)m->name;
    h.software_version = PORTCULLIS_VERSION;
    h.config_version = settings_version(m->settings);
    h.next_report_seq = report_ship_next_seq(m->ship);
    Portcullis__PatternVersion upv[UPDATE_COMPONENTS], *upp[UPDATE_COMPONENTS];
    h.n_patterns = update_patterns(m->upd, upv, upp);
    h.patterns = upp;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    if (s_send(m, &env) != 0)
        m->state_until_ms = now_ms() + MANAGER_CONNECT_RETRY_MS;
    else
        m->state_until_ms = now_ms() + LINK_HEARTBEAT_MS;
}

static void s_enter_linking(struct manager *m)
{
    m->state = LINK_LINKING;
    s_open(m, conf_get(m->conf, "parent_cluster"), LINK_CLUSTER_MSG_MAX);
    m->last_rx_ms = now_ms();
    s_send_hello(m);
}

/* R10.2: the wait is drawn from the upper half of the backoff, so that a fleet that lost its
 * parent at the same moment does not come back at the same moment. */
static void s_link_lost(struct manager *m, const char *why)
{
    uint32_t wait_ms = m->backoff_ms / 2 + randombytes_uniform(m->backoff_ms / 2 + 1);

    log_warn("link down: %s; reconnecting in %u ms", why, wait_ms);
    link_close(&m->sock);
    report_ship_reset(m->ship);
    report_ship_reset(m->mship);
    m->state = LINK_BACKOFF;
    m->state_until_ms = now_ms() + wait_ms;
    m->backoff_ms = m->backoff_ms * 2 > LINK_RECONNECT_MAX_MS ? LINK_RECONNECT_MAX_MS
                                                              : m->backoff_ms * 2;
}

static void s_enrol_reply(struct manager *m, const Portcullis__EnrollReply *r)
{
    int st = (int)r->status;
    bool changed = st != m->last_enrol_status;

    m->last_enrol_status = st;
    switch (r->status) {
    case PORTCULLIS__ENROLL_REPLY__STATUS__ENROLLED:
        if (changed)
            log_info("enrolled with parent name=%s: %s", m->name, r->message);
        s_enter_linking(m);
        return;
    case PORTCULLIS__ENROLL_REPLY__STATUS__PENDING:
        if (changed) {
            char fp[KEYS_FP_LEN + 1] = "?";
            (void)keys_fingerprint(m->keys.public_z85, fp);
            log_warn("enrolment pending name=%s key fingerprint=%s: %s (approve with "
                     "`portcullis child approve %s --fingerprint %s` after comparing)",
                     m->name, fp, r->message, m->name, fp);
        }
        m->state_until_ms = now_ms() + MANAGER_ENROL_RETRY_MS;
        return;
    default:
        log_err("enrolment refused name=%s: %s", m->name, r->message ? r->message : "");
        m->state_until_ms = now_ms() + MANAGER_REFUSED_RETRY_MS;
        return;
    }
}

/* --- configuration ------------------------------------------------------------------------ */

static void s_ack(struct manager *m, uint64_t version, bool ok, const char *error)
{
    Portcullis__ConfigApplied a = PORTCULLIS__CONFIG_APPLIED__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    a.ok = ok;
    if (ok)
        a.version = version;
    else {
        a.version = settings_version(m->settings);
        a.refused_version = version;
        a.error = (char *)error;
    }
    env.body_case = PORTCULLIS__ENVELOPE__BODY_CONFIG_APPLIED;
    env.config_applied = &a;
    s_send(m, &env);
}

/* R8.7: this child's look-up credential, derived from its own CURVE secret and the look-up
 * service's public key in the snapshot, put into the snapshot for the scan service (which
 * cannot read the keys). Whatever the parent may have put there is replaced. */
static void s_lookup_token(struct manager *m, Portcullis__ConfigSnapshot *snap)
{
    uint8_t sk[32];
    char hex[LOOKUP_TOKEN_HEX_LEN + 1], bearer[LOOKUP_BEARER_MAX + 1];

    /* protobuf-c's empty default string is a shared constant: never freed */
    if (snap->lookup_token != NULL && snap->lookup_token != protobuf_c_empty_string)
        free(snap->lookup_token);
    snap->lookup_token = (char *)protobuf_c_empty_string;
    if (snap->lookup_public_key.len != LOOKUP_KEY_LEN)
        return; /* a parent without a look-up key: look-ups go out without a credential */
    if (zmq_z85_decode(sk, m->keys.secret_z85) == NULL ||
        lookup_token(sk, snap->lookup_public_key.data, m->name, hex) != 0) {
        log_err("look-up credential not derived: the snapshot's look-up key is unusable");
    } else {
        snprintf(bearer, sizeof bearer, "%s:%s", m->name, hex);
        snap->lookup_token = xstrdup(bearer);
    }
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(hex, sizeof hex);
}

static void s_config(struct manager *m, envelope_t *env)
{
    Portcullis__ConfigSnapshot *snap = env->config;
    char err[1024];
    settings_t *s;
    policy_t *pol = NULL;

    if (snap->version == settings_version(m->settings)) {
        s_ack(m, snap->version, true, NULL);
        return;
    }
    s = wire_settings_from_snapshot(snap, err, sizeof err);
    /* The scan service compiles the policy itself; a snapshot it could not use is refused. */
    if (s != NULL && (pol = policy_compile(snap->rules, snap->n_rules, snap->areas,
                                           snap->n_areas, snap->spam_rules, snap->n_spam_rules,
                                           err, sizeof err)) == NULL)
        settings_free(&s);
    policy_free(&pol);
    if (s == NULL) {
        log_err("configuration version=%" PRIu64 " refused, keeping version=%" PRIu64 ": %s",
                snap->version, settings_version(m->settings), err);
        s_ack(m, snap->version, false, err);
        return;
    }
    s_lookup_token(m, snap);
    if (config_cache_store(m->config_path, snap, err, sizeof err) != 0) {
        log_err("configuration version=%" PRIu64 " not stored: %s", snap->version, err);
        settings_free(&s);
        s_ack(m, snap->version, false, err);
        return;
    }
    settings_free(&m->settings);
    m->settings = s;
    quota_set_areas(m->quota, snap->areas, snap->n_areas);
    log_info("configuration version=%" PRIu64 " stored", snap->version);
    update_config(m->upd, snap); /* a new component version starts downloading */
    {
        /* A shorter health interval takes effect now, not after the old one has run out. */
        uint64_t next = now_ms() + 1000u * (uint64_t)settings_int(s, SETTING_CLUSTER_HEALTH_INTERVAL_S);
        if (m->next_health_ms > next)
            m->next_health_ms = next;
    }
    /* In force once the scan service says so; a stopped one reads the file when it starts. */
    if (scan_proc_send(&m->scan, env) == 0)
        m->pending_ack = snap->version;
    else
        s_ack(m, snap->version, true, NULL);
}

/* Handles one envelope from the scan service; true if it kept env (caller must not free). */
static bool s_scan_message(struct manager *m, envelope_t *env)
{
    switch (env->body_case) {
    case PORTCULLIS__ENVELOPE__BODY_SCAN_STATS:
        if (m->scan.stats == NULL)
            log_info("scan service running pid=%ld", (long)m->scan.pid);
        else
            portcullis__scan_stats__free_unpacked(m->scan.stats, NULL);
        m->scan.stats = env->scan_stats;
        env->scan_stats = NULL;
        supervise_on_stats(m->sup);
        env->body_case = PORTCULLIS__ENVELOPE__BODY__NOT_SET;
        break;
    case PORTCULLIS__ENVELOPE__BODY_CONFIG_APPLIED: {
        const Portcullis__ConfigApplied *a = env->config_applied;
        if (a->ok)
            log_info("scan service applied configuration version=%" PRIu64, a->version);
        else
            log_err("scan service refused configuration version=%" PRIu64 ": %s",
                    a->refused_version, a->error);
        if (a->ok && a->version == m->pending_ack)
            m->pending_ack = 0;
        s_ack(m, a->ok ? a->version : a->refused_version, a->ok, a->error);
        break;
    }
    case PORTCULLIS__ENVELOPE__BODY_SCAN_METHOD_CHANGED: {
        /* R2.3/R2.4, R8.4: this child's own state — shown in its Health, never a fleet
         * setting. The event (and the administrator's mail) goes through the manager's spool,
         * so a switch while the parent is away is shipped once the link is back. */
        const Portcullis__ScanMethodChanged *mc = env->scan_method_changed;
        bool smart = strcmp(mc->method, "smart") == 0;
        char subject[160];
        log_warn("scan method changed to %s: %s", mc->method, mc->reason);
        snprintf(subject, sizeof subject, "Portcullis: child %s switched to %s scan", m->name,
                 smart ? "smart" : "conventional");
        mreport_event(m->mrep, "system", "warning", true, subject,
                      "child %s switched to %s scan: %.300s", m->name,
                      smart ? "smart" : "conventional", mc->reason);
        break;
    }
    default:
        log_warn("scan service sent an unexpected %s; ignored", wire_body_name(env));
        break;
    }
    return false;
}

/* --- health (R7.2) ------------------------------------------------------------------------ */

static uint64_t s_messages_total(const struct manager *m)
{
    const Portcullis__ScanStats *s = m->scan.stats;
    return s == NULL ? 0 : s->messages_relayed + s->messages_tempfailed + s->messages_rejected;
}

/* One sample a second; the per-minute figure is the difference across the window, counting
 * a scan service restart (counter reset) as a fresh start rather than a negative rate. */
static void s_rate_sample(struct manager *m)
{
    uint64_t now = now_ms();
    unsigned last = (m->rate_head + MANAGER_RATE_WINDOW - 1) % MANAGER_RATE_WINDOW;

    if (m->rate_at[last] != 0 && now - m->rate_at[last] < 1000)
        return;
    m->rate_at[m->rate_head] = now;
    m->rate_count[m->rate_head] = s_messages_total(m);
    m->rate_head = (m->rate_head + 1) % MANAGER_RATE_WINDOW;
}

static uint32_t s_per_minute(const struct manager *m)
{
    uint64_t now = now_ms(), cur = s_messages_total(m), oldest = cur;

    for (unsigned i = 0; i < MANAGER_RATE_WINDOW; i++) {
        if (m->rate_at[i] != 0 && now - m->rate_at[i] <= 60000 && m->rate_count[i] <= cur &&
            m->rate_count[i] < oldest)
            oldest = m->rate_count[i];
    }
    return (uint32_t)(cur - oldest);
}

static void s_send_health(struct manager *m)
{
    Portcullis__Health h = PORTCULLIS__HEALTH__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    h.state = "up";
    h.scan_service = (char *)scan_proc_state(&m->scan);
    /* R2.1: conventional = the local ClamAV engine is loaded and in use; smart scan comes with
     * the smart-protection service. "none": scanning off, or no signatures loaded yet. */
    h.scan_method = settings_bool(m->settings, SETTING_AV_ENABLED) && m->scan.stats != NULL &&
                            m->scan.stats->signature_version != NULL &&
                            strstr(m->scan.stats->signature_version, "sigs=") != NULL
                        ? "conventional"
                        : "none";
    /* The scan service knows the method in force (smart, or switched away from it: R2.3). */
    if (m->scan.stats != NULL && m->scan.stats->scan_method != NULL &&
        m->scan.stats->scan_method[0] != '\0')
        h.scan_method = m->scan.stats->scan_method;
    if (m->scan.stats != NULL && m->scan.stats->smart_scan_state != NULL &&
        m->scan.stats->smart_scan_state[0] != '\0')
        h.smart_scan_state = m->scan.stats->smart_scan_state;
    h.config_version = settings_version(m->settings);
    h.ers_state = m->scan.stats != NULL && m->scan.stats->ers_state != NULL
                      ? m->scan.stats->ers_state : "off";
    h.stats = m->scan.stats;
    h.messages_per_minute = s_per_minute(m);
    h.scan_restarts = m->scan.restarts;
    h.mta_state = (char *)mta_apply_state(m->mta);
    h.uptime_s = (now_ms() - m->started_ms) / 1000;
    {
        uint64_t records, bytes;
        report_ship_depth(m->ship, &h.spool_records, &h.spool_bytes);
        report_ship_depth(m->mship, &records, &bytes);
        h.spool_records += records;
        h.spool_bytes += bytes;
    }
    /* Smart scan's light pattern (R2.1) after any other pattern versions listed above. */
    Portcullis__PatternVersion light = PORTCULLIS__PATTERN_VERSION__INIT;
    Portcullis__PatternVersion *pats[WIRE_PATTERNS_MAX];
    if (m->scan.stats != NULL && m->scan.stats->light_signature_version != NULL &&
        m->scan.stats->light_signature_version[0] != '\0' && h.n_patterns < WIRE_PATTERNS_MAX) {
        for (size_t i = 0; i < h.n_patterns; i++)
            pats[i] = h.patterns[i];
        light.component = "light";
        light.version = m->scan.stats->light_signature_version;
        pats[h.n_patterns++] = &light;
        h.patterns = pats;
    }
    Portcullis__StoreUsage su[QUOTA_DIRS], *sup[QUOTA_DIRS];
    h.n_stores = quota_health(m->quota, su, sup);
    h.stores = sup;
    /* Installed component versions (R3.7) stand for their component over any load stamp. */
    Portcullis__PatternVersion upv[UPDATE_COMPONENTS], *upp[UPDATE_COMPONENTS];
    Portcullis__PatternVersion *allp[WIRE_PATTERNS_MAX];
    size_t nup = update_patterns(m->upd, upv, upp), nall = 0;
    for (size_t i = 0; i < h.n_patterns && nall + nup < WIRE_PATTERNS_MAX; i++) {
        bool mine = false;
        for (size_t k = 0; k < nup; k++)
            mine = mine || strcmp(h.patterns[i]->component, upp[k]->component) == 0;
        if (!mine)
            allp[nall++] = h.patterns[i];
    }
    for (size_t k = 0; k < nup; k++)
        allp[nall++] = upp[k];
    h.patterns = allp;
    h.n_patterns = nall;
    h.update_state = (char *)update_state(m->upd);
    env.body_case = PORTCULLIS__ENVELOPE__BODY_HEALTH;
    env.health = &h;
    s_send(m, &env);
}

/* A download thread finished: an installed component is loaded by the scan service now (a
 * hot swap beside the engine in force); the next Health carries the version. */
static void s_update_result(struct manager *m)
{
    Portcullis__ReloadSignatures rs = PORTCULLIS__RELOAD_SIGNATURES__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;
    char reason[128];

    if (!update_on_result(m->upd, reason, sizeof reason))
        return;
    rs.reason = reason;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_RELOAD_SIGNATURES;
    env.reload_signatures = &rs;
    if (scan_proc_send(&m->scan, &env) != 0)
        log_info("scan service not running: it loads the new patterns when it starts");
    m->next_health_ms = now_ms(); /* the parent sees the new version without waiting */
}

/* --- loop ---------------------------------------------------------------------------------- */

static void s_parent_input(struct manager *m)
{
    for (int budget = 0; budget < 100 && m->sock != NULL; budget++) {
        zmq_msg_t msg;
        envelope_t *env;

        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, m->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        env = wire_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg));
        if (env == NULL) {
            log_warn("undecodable message from parent (%zu bytes); dropped", zmq_msg_size(&msg));
            zmq_msg_close(&msg);
            continue;
        }
        zmq_msg_close(&msg);
        m->last_rx_ms = now_ms();
        if (m->state == LINK_ENROL) {
            if (env->body_case == PORTCULLIS__ENVELOPE__BODY_ENROLL_REPLY)
                s_enrol_reply(m, env->enroll_reply);
            wire_free(&env);
            continue;
        }
        if (m->state == LINK_LINKING) {
            m->state = LINK_UP;
            m->backoff_ms = LINK_RECONNECT_MIN_MS;
            m->next_health_ms = now_ms();
            report_ship_reset(m->ship);
            report_ship_reset(m->mship);
            log_info("link up with parent %s", conf_get(m->conf, "parent_cluster"));
        }
        switch (env->body_case) {
        case PORTCULLIS__ENVELOPE__BODY_CONFIG:
            s_config(m, env);
            break;
        case PORTCULLIS__ENVELOPE__BODY_HEARTBEAT:
            break;
        case PORTCULLIS__ENVELOPE__BODY_COMMAND:
            command_handle(m->cmd, env->command);
            break;
        case PORTCULLIS__ENVELOPE__BODY_REPORT_ACK:
            if (env->report_ack->spool_epoch != NULL &&
                strcmp(env->report_ack->spool_epoch, report_ship_epoch(m->mship)) == 0)
                report_ship_ack(m->mship, env->report_ack);
            else
                report_ship_ack(m->ship, env->report_ack);
            break;
        default:
            log_warn("parent sent an unexpected %s; ignored", wire_body_name(env));
            break;
        }
        wire_free(&env);
    }
}

static void s_timers(struct manager *m)
{
    uint64_t now = now_ms();

    switch (m->state) {
    case LINK_ENROL:
        if (now >= m->state_until_ms)
            s_send_enrol(m);
        break;
    case LINK_BACKOFF:
        if (now >= m->state_until_ms)
            s_enter_enrol(m);
        break;
    case LINK_LINKING:
    case LINK_UP:
        if (now - m->last_rx_ms > (uint64_t)LINK_HEARTBEAT_MS * LINK_LIVENESS) {
            s_link_lost(m, m->state == LINK_UP ? "parent silent" : "no answer to hello");
            break;
        }
        if (m->state == LINK_LINKING && now >= m->state_until_ms) {
            s_send_hello(m);
        } else if (m->state == LINK_UP) {
            report_ship_tick(m->ship);
            report_ship_tick(m->mship);
            if (now >= m->next_health_ms) {
                s_send_health(m);
                m->next_health_ms = now + 1000u * (uint64_t)settings_int(m->settings,
                                                                          SETTING_CLUSTER_HEALTH_INTERVAL_S);
            }
            if (now - m->last_tx_ms >= LINK_HEARTBEAT_MS) {
                Portcullis__Heartbeat hb = PORTCULLIS__HEARTBEAT__INIT;
                envelope_t env = PORTCULLIS__ENVELOPE__INIT;
                hb.sent_ms = wall_ms();
                env.body_case = PORTCULLIS__ENVELOPE__BODY_HEARTBEAT;
                env.heartbeat = &hb;
                s_send(m, &env);
            }
        }
        break;
    }
    s_rate_sample(m);
    update_tick(m->upd);
    command_tick(m->cmd);
    scan_proc_start(&m->scan);
    supervise_tick(m->sup, m->settings);
    mta_apply_tick(m->mta, m->settings);
    quota_tick(m->quota, m->settings);
}

/* The scan service may have exited (SIGCHLD, or the launcher's word). */
static void s_scan_exited(struct manager *m)
{
    if (supervise_reap(m->sup) && m->pending_ack != 0) {
        /* It died before answering; the next start reads the stored version. */
        s_ack(m, m->pending_ack, true, NULL);
        m->pending_ack = 0;
    }
}

static bool s_signals(struct manager *m)
{
    unsigned char sig;
    bool stop = false;

    while (read(s_sigpipe[0], &sig, 1) == 1) {
        if (sig == SIGCHLD)
            s_scan_exited(m);
        else if (sig == SIGTERM || sig == SIGINT)
            stop = true;
    }
    return stop;
}

/* R8.1: started as root, the manager hands its directories to the two users, forks the
 * launcher (which becomes the scan service's user), and becomes its own user for good. The
 * scan service writes the spool and the stores; the manager reads and removes there (group
 * portcullis, 0770 directories, 0640 files). */
static void s_least_privilege(struct manager *m, const char *state_dir)
{
    struct privuser user, scan;
    char err[1024];
    const char *sig = conf_get(m->conf, "signature_dir");

    if (!privdrop_needed()) {
        log_info("running as uid %ld: no root privileges to drop", (long)getuid());
        return;
    }
    if (privdrop_lookup(conf_get(m->conf, "user"), &user, err, sizeof err) != 0 ||
        privdrop_lookup(conf_get(m->conf, "scan_user"), &scan, err, sizeof err) != 0)
        fatal("%s", err);
    if (privdrop_own_dir(m->spool_dir, scan.uid, user.gid, 0770, err, sizeof err) != 0 ||
        privdrop_own_dir(m->quarantine_dir, scan.uid, user.gid, 0770, err, sizeof err) != 0 ||
        privdrop_own_dir(m->archive_dir, scan.uid, user.gid, 0770, err, sizeof err) != 0 ||
        privdrop_own_dir(sig, user.uid, user.gid, 0750, err, sizeof err) != 0 ||
        privdrop_own_dir(m->light_dir, user.uid, user.gid, 0750, err, sizeof err) != 0 ||
        privdrop_own_dir(state_dir, user.uid, user.gid, 0750, err, sizeof err) != 0)
        fatal("%s", err);
    (void)chmod(m->config_path, 0640); /* the scan service reads it (made 0600 by older ones) */
    if (launcher_fork(&m->launcher, &scan, user.gid, err, sizeof err) != 0)
        fatal("%s", err);
    if (privdrop_to(&user, (gid_t)-1, err, sizeof err) != 0)
        fatal("%s", err);
    umask(007);
    {   /* MTA actions go through the setuid helper beside this program (R8.1) */
        char self[MTA_LOCAL_CMD_MAX - 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        char *slash;
        if (n > 0) {
            self[n] = '\0';
            if ((slash = strrchr(self, '/')) != NULL)
                *slash = '\0';
            snprintf(m->mta_local.helper, sizeof m->mta_local.helper, "%s/portcullis-mta", self);
        }
    }
    log_info("running as %s (uid %ld); the scan service runs as %s (uid %ld) through the "
             "launcher pid=%ld", user.name, (long)user.uid, scan.name, (long)scan.uid,
             (long)m->launcher.pid);
}

static int s_setup(struct manager *m, const char *path)
{
    char err[1024];
    enum log_level level;
    const char *state_dir;

    m->conf = conf_load(path, s_conf_keys, ARRAY_LEN(s_conf_keys), err, sizeof err);
    if (m->conf == NULL)
        fatal("%s", err);
    if (log_level_parse(conf_get(m->conf, "log_level"), &level) != 0)
        fatal("%s: log_level must be error, warning, info or debug", path);
    log_set_level(level);
    m->name = conf_get(m->conf, "name");
    m->parent_public = conf_get(m->conf, "parent_public_key");
    if (!keys_z85_valid(m->parent_public))
        fatal("%s: parent_public_key is not a Z85 CURVE key (copy it from `portcullis child "
              "enroll-token %s` on the parent)", path, m->name);
    state_dir = conf_get(m->conf, "state_dir");
    if (fs_mkdir_p(state_dir, 0700, err, sizeof err) != 0)
        fatal("%s", err);
    config_cache_path(state_dir, m->config_path, sizeof m->config_path);
    snprintf(m->spool_dir, sizeof m->spool_dir, "%s/spool", state_dir);
    snprintf(m->quarantine_dir, sizeof m->quarantine_dir, "%s", conf_get(m->conf, "quarantine_dir"));
    if (m->quarantine_dir[0] == '\0')
        snprintf(m->quarantine_dir, sizeof m->quarantine_dir, "%s/quarantine", state_dir);
    snprintf(m->archive_dir, sizeof m->archive_dir, "%s", conf_get(m->conf, "archive_dir"));
    if (m->archive_dir[0] == '\0')
        snprintf(m->archive_dir, sizeof m->archive_dir, "%s/archive", state_dir);
    snprintf(m->light_dir, sizeof m->light_dir, "%s", conf_get(m->conf, "light_signature_dir"));
    if (m->light_dir[0] == '\0')
        snprintf(m->light_dir, sizeof m->light_dir, "%s/light", state_dir);
    s_least_privilege(m, state_dir);
    /* as the manager's user: its keys are its own (0600), root never needs to read them */
    if (keys_load_or_create(state_dir, "child", &m->keys, err, sizeof err) != 0)
        fatal("%s", err);
    m->ship = report_ship_new(m->spool_dir, s_ship_send, m, err, sizeof err);
    if (m->ship == NULL)
        fatal("report spool: %s", err);
    snprintf(m->mspool_dir, sizeof m->mspool_dir, "%s/mspool", state_dir);
    if ((m->mrep = mreport_open(m->mspool_dir, err, sizeof err)) == NULL ||
        (m->mship = report_ship_new(m->mspool_dir, s_ship_send, m, err, sizeof err)) == NULL)
        fatal("manager report spool: %s", err);
    m->settings = config_cache_load(m->config_path, err, sizeof err);
    if (m->settings == NULL) {
        if (err[0] != '\0')
            log_err("cached configuration unusable, starting on defaults: %s", err);
        else
            log_info("no cached configuration yet: starting on defaults until the parent sends one");
        m->settings = settings_new_defaults();
    } else {
        log_info("starting on cached configuration version=%" PRIu64, settings_version(m->settings));
    }
    strlcpy_p(m->hostname, conf_get(m->conf, "hostname"), sizeof m->hostname);
    if (m->hostname[0] == '\0' && gethostname(m->hostname, sizeof m->hostname) != 0)
        strlcpy_p(m->hostname, "localhost", sizeof m->hostname);

    scan_proc_init(&m->scan);
    if (m->launcher.pid != 0)
        m->scan.launcher = &m->launcher;
    m->scan.listen = conf_get(m->conf, "smtp_listen");
    m->scan.downstream = conf_get(m->conf, "downstream");
    m->scan.config_path = m->config_path;
    m->scan.hostname = m->hostname;
    m->scan.log_level = conf_get(m->conf, "log_level");
    m->scan.spool_dir = m->spool_dir;
    m->scan.signature_dir = conf_get(m->conf, "signature_dir");
    m->scan.light_signature_dir = m->light_dir;
    {
        struct update_dirs ud = { .state_dir = state_dir, .light_dir = m->light_dir,
                                  .clamav_dir = conf_get(m->conf, "signature_dir") };
        if ((m->upd = update_new(&ud, m->mrep, err, sizeof err)) == NULL)
            fatal("%s", err);
        update_config_file(m->upd, m->config_path); /* resume what the cache asks for */
    }
    m->scan.quarantine_dir = m->quarantine_dir;
    m->scan.archive_dir = m->archive_dir;
    m->scan.dns_server = conf_get(m->conf, "dns_server");
    {
        char helper[sizeof m->mta_local.helper];
        strlcpy_p(helper, m->mta_local.helper, sizeof helper);
        mta_local_from_conf(m->conf, &m->mta_local);
        strlcpy_p(m->mta_local.helper, helper, sizeof m->mta_local.helper);
    }
    m->sup = supervise_new(&m->scan, m->mrep, &m->mta_local);
    m->mta = mta_apply_new(state_dir, m->mrep, &m->mta_local);
    if ((m->quota = quota_new(m->quarantine_dir, m->archive_dir, state_dir, m->mrep, err,
                              sizeof err)) == NULL)
        fatal("quota: %s", err);
    quota_load_areas(m->quota, m->config_path);
    {
        struct command_conf cc = { .quarantine_dir = m->quarantine_dir,
                                   .archive_dir = m->archive_dir,
                                   .downstream = m->scan.downstream, .helo = m->hostname };
        if ((m->cmd = command_new(&cc, m->mrep, s_ship_send, m, err, sizeof err)) == NULL)
            fatal("%s", err);
        /* flush, reload, apply_mta, purge (R7.4): in the modules that do them */
        supervise_commands(m->sup, m->cmd, &m->settings);
        mta_apply_commands(m->mta, m->cmd, &m->settings);
        quota_commands(m->quota, m->cmd, &m->settings);
    }
    return 0;
}

int manager_main(const char *conf_path)
{
    struct manager m = { 0 };
    struct sigaction sa;
    bool stop = false;

    log_init("portcullis-child", LOG_LEVEL_INFO);
    if (sodium_init() < 0)
        fatal("libsodium failed to initialise");
    s_setup(&m, conf_path);
    m.started_ms = now_ms();
    m.backoff_ms = LINK_RECONNECT_MIN_MS;
    m.last_enrol_status = -1;

    if (pipe2(s_sigpipe, O_NONBLOCK | O_CLOEXEC) != 0)
        fatal("pipe: %s", strerror(errno));
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    m.ctx = zmq_ctx_new();
    scan_proc_start(&m.scan);
    s_enter_enrol(&m);
    log_info("manager ready name=%s parent=%s key=%.8s…", m.name,
             conf_get(m.conf, "parent_cluster"), m.keys.public_z85);

    while (!stop) {
        zmq_pollitem_t items[5] = {
            { NULL, s_sigpipe[0], ZMQ_POLLIN, 0 },
            { NULL, m.scan.fd, ZMQ_POLLIN, 0 },
            { m.sock, 0, ZMQ_POLLIN, 0 },
        };
        int n = 1;
        if (m.scan.fd >= 0)
            n = 2;
        if (m.sock != NULL) {
            if (n == 1)
                items[1] = items[2];
            n++;
        }
        int upd_at = -1, launcher_at = -1; /* a download thread's result; an exit */
        if (update_fd(m.upd) >= 0) {
            items[n] = (zmq_pollitem_t){ NULL, update_fd(m.upd), ZMQ_POLLIN, 0 };
            upd_at = n++;
        }
        if (m.scan.launcher != NULL) { /* exits of the scan service come from the launcher */
            items[n] = (zmq_pollitem_t){ NULL, m.launcher.fd, ZMQ_POLLIN, 0 };
            launcher_at = n++;
        }
        if (zmq_poll(items, n, 200) < 0 && errno != EINTR) {
            log_err("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        for (int i = 1; i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            if (i == upd_at) {
                s_update_result(&m);
            } else if (i == launcher_at) {
                s_scan_exited(&m);
            } else if (items[i].socket == NULL) {
                envelope_t *env;
                while ((env = scan_proc_read(&m.scan)) != NULL) {
                    if (!s_scan_message(&m, env))
                        wire_free(&env);
                }
            } else {
                s_parent_input(&m);
            }
        }
        if (items[0].revents & ZMQ_POLLIN)
            stop = s_signals(&m);
        s_timers(&m);
    }

    log_info("manager stopping");
    update_free(&m.upd); /* cancels a download in progress */
    supervise_destroy(&m.sup); /* stops the scan service and records it */
    mta_apply_destroy(&m.mta);
    quota_destroy(&m.quota); /* before the report spool: records what it removed */
    command_destroy(&m.cmd); /* after the modules that may still answer a command */
    link_close(&m.sock);
    report_ship_destroy(&m.ship);
    report_ship_destroy(&m.mship);
    mreport_close(&m.mrep);
    zmq_ctx_term(m.ctx);
    settings_free(&m.settings);
    sodium_memzero(&m.keys, sizeof m.keys);
    conf_free(&m.conf);
    return 0;
}
