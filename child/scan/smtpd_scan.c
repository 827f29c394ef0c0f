/* smtpd_scan: the seam between a session and the scan pool. Hands a received message over,
 * acts on the decision when it comes back (index stored files, then relay, or answer 250 for a
 * quarantined or deleted message), and writes the tracking record of every outcome (R7.3).
 * Runs in the event-loop thread only. */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "scan/report.h"
#include "scan/scanpool.h"
#include "scan/smartscan.h"
#include "scan/wrs_client.h"
#include "scan/smtpd_int.h"
#include "util.h"

#define TRACK_VERDICTS_MAX 24 /* av, policy and one per exception bit */
#define TRACK_REPLY_MAX 512   /* bytes of the reply kept in a record */

static const char *const s_action_names[] = {
    [SMTPD_RELAYED] = "delivered",     [SMTPD_TEMPFAIL] = "tempfailed",
    [SMTPD_REJECTED] = "rejected",     [SMTPD_QUARANTINED] = "quarantined",
    [SMTPD_DELETED] = "deleted",
};

static const char *s_fate_name(enum policy_fate f)
{
    switch (f) {
    case POLICY_DELETE: return "delete";
    case POLICY_QUARANTINE: return "quarantine";
    default: return "deliver";
    }
}

static const char *s_av_status_name(enum av_status st)
{
    switch (st) {
    case AV_CLEAN: return "clean";
    case AV_VIRUS: return "virus";
    case AV_EXCEPTION: return "exception";
    default: return "skipped";
    }
}

struct verdicts {
    Portcullis__Verdict v[TRACK_VERDICTS_MAX];
    Portcullis__Verdict *p[TRACK_VERDICTS_MAX];
    size_t n;
};

static void s_verdict_add(struct verdicts *vs, const char *engine, const char *result,
                          const char *detail)
{
    Portcullis__Verdict *v;

    if (vs->n >= TRACK_VERDICTS_MAX)
        return;
    v = &vs->v[vs->n];
    portcullis__verdict__init(v);
    v->engine = (char *)engine;
    v->result = (char *)result;
    v->detail = (char *)(detail != NULL ? detail : "");
    vs->p[vs->n++] = v;
}

/* Verdicts of a finished scan (the strings stay owned by the job). */
static void s_verdicts_build(const struct scan_job *j, struct verdicts *vs)
{
    vs->n = 0;
    s_verdict_add(vs, "av", s_av_status_name(j->av.status), j->av.name);
    if (j->light_scanned)
        s_verdict_add(vs, "light", s_av_status_name(j->light.status), j->light.name);
    if (j->smart)
        s_verdict_add(vs, "smart", !j->looked_up ? "error" :
                                   j->smart_virus[0] != '\0' ? "virus" : "clean", j->smart_virus);
    for (unsigned bit = 1; bit != 0 && bit <= POLICY_EXC_LAST; bit <<= 1) {
        if (!(j->exceptions & bit))
            continue;
        s_verdict_add(vs, (bit & POLICY_EXC_AV_ALL) ? "av" : "mime", "exception",
                      policy_exception_name(bit));
    }
    if (j->ers_on)
        s_verdict_add(vs, "ers", ers_outcome_name(j->ers.outcome), j->ers.detail);
    if (j->wrs_on && j->wrs_skipped[0] != '\0')
        s_verdict_add(vs, "wrs", "skipped", j->wrs_skipped);
    if (j->wrs_on && (j->wrs.level > 0 || j->wrs_skipped[0] == '\0'))
        s_verdict_add(vs, "wrs", j->wrs.level > 0 ? "rated" : "clean", j->wrs_detail);
    if (j->decided && j->dec.spam_scored)
        s_verdict_add(vs, "spam", "score", j->spam_detail);
    if (j->decided)
        s_verdict_add(vs, "policy", s_fate_name(j->dec.fate), j->dec.rule);
}

/* XFORWARD value or "" when absent or [UNAVAILABLE]/[TEMPUNAVAIL]. */
static const char *s_xf(const struct smtpd_session *s, unsigned i)
{
    const char *v = s->proto.xforward[i];
    return v[0] == '[' ? "" : v;
}

void smtpd_scan_track(struct smtpd_session *s, enum smtpd_outcome o, const char *reply)
{
    Portcullis__TrackingRecord t = PORTCULLIS__TRACKING_RECORD__INIT;
    const struct scan_job *j = s->scanning ? NULL : s->job;
    char *archived[POLICY_ARCHIVES_MAX];
    struct verdicts vs = { .n = 0 };
    char rep[TRACK_REPLY_MAX];
    uint64_t now = now_ms();
    size_t n = 0;

    for (const char *p = reply; *p != '\0' && *p != '\r' && *p != '\n' && n + 1 < sizeof rep; p++)
        rep[n++] = *p;
    rep[n] = '\0';
    t.msg_id = s->id;
    t.queue_id = (char *)s_xf(s, 5);   /* IDENT: the upstream's queue id (Postfix) */
    t.sender = s->proto.sender;
    t.recipients = s->rcpts;
    t.n_recipients = s->nrcpts;
    t.client_addr = (char *)(s_xf(s, 1)[0] != '\0' ? s_xf(s, 1) : s->client);
    t.client_name = (char *)s_xf(s, 0);
    t.size = s->dec.size;
    t.action = (char *)s_action_names[o];
    t.reply = rep;
    t.received_ms = s->received_ms;
    if (s->t_received != 0) {
        t.ms_receive = (uint32_t)(s->t_received - s->t0);
        t.ms_deliver = (uint32_t)(now - (s->t_scanned != 0 ? s->t_scanned : s->t_received));
    }
    if (j != NULL) {
        s_verdicts_build(j, &vs);
        t.verdicts = vs.p;
        t.n_verdicts = vs.n;
        t.ms_scan = (uint32_t)j->ms_scan;
        if (j->mime != NULL) {
            t.subject = j->mime->subject != NULL ? j->mime->subject : "";
            t.message_id = j->mime->message_id != NULL ? j->mime->message_id : "";
        }
        if (j->decided) {
            t.rule = (char *)j->dec.rule;
            if (j->dec.fate == POLICY_QUARANTINE && o == SMTPD_QUARANTINED)
                t.quarantine_area = (char *)j->dec.quarantine_area;
        }
        for (size_t i = 0; i < j->nfiles; i++)
            if (strcmp(j->files[i].kind, "archive") == 0 && t.n_archived_to < POLICY_ARCHIVES_MAX)
                archived[t.n_archived_to++] = (char *)j->files[i].area;
        t.archived_to = archived;
    }
    if (report_tracking(&t) != 0)
        log_warn("id=%s tracking record not spooled", s->id);
}

void smtpd_scan_add_rcpt(struct smtpd_session *s, const char *rcpt)
{
    s->rcpts = xrealloc(s->rcpts, (s->nrcpts + 1) * sizeof *s->rcpts);
    s->rcpts[s->nrcpts++] = xstrdup(rcpt);
}

void smtpd_scan_clear(struct smtpd_session *s)
{
    if (s->job != NULL) {
        if (s->scanning)
            s->job->owner = NULL; /* freed when the pool gives it back */
        else
            scan_job_free(&s->job);
    }
    s->job = NULL;
    s->scanning = false;
    ers_query_free(&s->ers);
    for (size_t i = 0; i < s->nrcpts; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    s->rcpts = NULL;
    s->nrcpts = 0;
    s->t_received = s->t_scanned = s->t_relay = 0;
}

bool smtpd_scan_should_pause(struct smtpd_session *s)
{
    if (s->srv->pool == NULL || !scanpool_full(s->srv->pool)) {
        if (s->paused) {
            s->paused = false;
            s->srv->paused--;
        }
        return false;
    }
    if (!s->paused) {
        s->paused = true;
        s->srv->paused++;
    }
    return true;
}

void smtpd_scan_message(struct smtpd_session *s)
{
    const settings_t *st = s->srv->settings;
    struct scan_job *j;

    if (s->srv->pool == NULL) {
        smtpd_relay_message(s);
        return;
    }
    if (!smtpd_ers_ready(s))
        return; /* called again when the look-up is over */
    j = scan_job_new();
    strlcpy_p(j->id, s->id, sizeof j->id);
    j->body = s->body;
    s->body = NULL;
    j->len = evbuffer_get_length(j->body);
    j->data = j->len > 0 ? (const char *)evbuffer_pullup(j->body, -1) : "";
    j->sender = xstrdup(s->proto.sender);
    j->rcpts = xcalloc(s->nrcpts + 1, sizeof *j->rcpts);
    for (size_t i = 0; i < s->nrcpts; i++)
        j->rcpts[i] = xstrdup(s->rcpts[i]);
    j->nrcpts = s->nrcpts;
    j->mlim.max_depth = (unsigned)settings_int(st, SETTING_MIME_MAX_DEPTH);
    j->mlim.max_parts = (unsigned)settings_int(st, SETTING_MIME_MAX_PARTS);
    j->mlim.max_decoded_size = (uint64_t)settings_int(st, SETTING_MIME_MAX_DECODED_SIZE);
    j->mlim.max_headers = (unsigned)settings_int(st, SETTING_MIME_MAX_HEADERS);
    j->mlim.max_header_length = (uint64_t)settings_int(st, SETTING_MIME_MAX_HEADER_LENGTH);
    /* Smart scan in force: look-ups instead of the full local pattern set (R2.1). */
    j->smart = s->srv->smart != NULL && smartscan_in_force(s->srv->smart);
    j->av_enabled = settings_bool(st, SETTING_AV_ENABLED) && !j->smart;
    j->spam_on = settings_bool(st, SETTING_SPAM_ENABLED);
    j->received_ms = s->received_ms;
    j->wrs_on = settings_bool(st, SETTING_WRS_ENABLED);
    j->wrs_remote = j->wrs_on && s->srv->wrs != NULL && wrs_client_on(s->srv->wrs);
    smtpd_ers_fill(s, j);
    j->owner = s;
    s->job = j;
    s->scanning = true;
    scanpool_submit(s->srv->pool, j);
}

/* Stored files into the index, made durable; on failure the files go (the message comes
 * again) and the caller answers 4xx. */
static int s_index_files(struct scan_job *j)
{
    struct verdicts vs;
    size_t i;

    if (j->nfiles == 0)
        return 0;
    s_verdicts_build(j, &vs);
    for (i = 0; i < j->nfiles; i++) {
        Portcullis__StoredMessage m = PORTCULLIS__STORED_MESSAGE__INIT;
        const struct store_file *f = &j->files[i];

        m.area = (char *)f->area;
        m.kind = (char *)f->kind;
        m.file_id = (char *)f->file_id;
        m.bucket = (char *)f->bucket;
        m.size = f->size;
        m.received_ms = j->received_ms;
        m.sender = j->sender;
        m.recipients = j->rcpts;
        m.n_recipients = j->nrcpts;
        m.subject = j->mime != NULL && j->mime->subject != NULL ? j->mime->subject : "";
        m.verdicts = vs.p;
        m.n_verdicts = vs.n;
        m.rule = j->dec.rule;
        m.msg_id = j->id;
        if (report_stored(&m) != 0)
            break;
    }
    if (i == j->nfiles && report_sync() == 0)
        return 0;
    log_err("id=%s stored files not indexed: removing them, the message will come again", j->id);
    for (i = 0; i < j->nfiles; i++)
        store_remove(&j->files[i]);
    j->nfiles = 0;
    return -1;
}

static void s_log_scan(const struct smtpd_session *s, const struct scan_job *j)
{
    char exc[256] = "";
    size_t n = 0;

    for (unsigned bit = 1; bit != 0 && bit <= POLICY_EXC_LAST; bit <<= 1)
        if (j->exceptions & bit)
            n += (size_t)snprintf(exc + n, n < sizeof exc ? sizeof exc - n : 0, "%s%s",
                                  n > 0 ? "," : "", policy_exception_name(bit));
    log_info("id=%s scan av=%s%s%s%s%s%s%s%s%s exceptions=%s rule=%s action=%s archives=%zu "
             "ms=%llu",
             s->id, s_av_status_name(j->av.status), j->av.name[0] != '\0' ? ":" : "", j->av.name,
             !j->light_scanned ? "" : j->light.status == AV_VIRUS ? " light=virus:" : " light=clean",
             j->light_scanned && j->light.status == AV_VIRUS ? j->light.name : "",
             !j->smart ? "" : j->smart_virus[0] != '\0' ? " smart=virus:" : " smart=clean",
             j->smart_virus, j->dec.spam_scored ? " spam=" : "",
             j->dec.spam_scored ? j->spam_detail : "",
             exc[0] != '\0' ? exc : "none", j->dec.rule[0] != '\0' ? j->dec.rule : "-",
             s_fate_name(j->dec.fate), j->dec.narchives, (unsigned long long)j->ms_scan);
}

/* A rule name fit for a reply line. */
static void s_reply_safe(const char *in, char *out, size_t n)
{
    size_t i = 0;

    for (; *in != '\0' && i + 1 < n && i < 200; in++)
        out[i++] = (unsigned char)*in < 0x20 || *in == 0x7f ? '?' : *in;
    out[i] = '\0';
}

static void s_act(struct smtpd_session *s, struct scan_job *j)
{
    struct smtpd_stats *st = &s->srv->stats;
    char reply[SMTPD_REPLY_MAX], rule[256];

    if (j->av.status == AV_VIRUS || j->smart_virus[0] != '\0' ||
        (j->light_scanned && j->light.status == AV_VIRUS))
        st->viruses_found++;
    if (j->exceptions != 0)
        st->scan_exceptions++;
    scan_latency_add(&st->scan_ms, j->ms_scan);
    if (j->store_failed || !j->decided) {
        log_err("id=%s %s: 4xx, the upstream keeps the message", s->id,
                j->error[0] != '\0' ? j->error : "no decision");
        smtpd_session_finish(s, SMTPD_TEMPFAIL,
                             "451 4.3.0 Error: message could not be stored, try again later\r\n");
        return;
    }
    s_log_scan(s, j);
    if (s_index_files(j) != 0) {
        smtpd_session_finish(s, SMTPD_TEMPFAIL,
                             "451 4.3.0 Error: message could not be indexed, try again later\r\n");
        return;
    }
    for (size_t i = 0; i < j->dec.nnotify; i++)
        report_event("policy", "warning", "id=%s rule=%s %s", s->id, j->dec.rule, j->dec.notify[i]);
    s_reply_safe(j->dec.rule, rule, sizeof rule);
    switch (j->dec.fate) {
    case POLICY_QUARANTINE:
        snprintf(reply, sizeof reply, "250 2.0.0 Ok: quarantined as %s id=%s\r\n",
                 j->files[0].file_id, s->id);
        smtpd_session_finish(s, SMTPD_QUARANTINED, reply);
        return;
    case POLICY_DELETE:
        log_info("id=%s deleted by policy rule=%s", s->id, j->dec.rule);
        report_event("policy", "info", "id=%s deleted by policy rule=%s", s->id, j->dec.rule);
        snprintf(reply, sizeof reply, "250 2.0.0 Ok: deleted by policy rule %s id=%s\r\n", rule,
                 s->id);
        smtpd_session_finish(s, SMTPD_DELETED, reply);
        return;
    default:
        break;
    }
    if (j->out != NULL) {
        s->body = j->out;
        j->out = NULL;
    } else {
        s->body = j->body;
        j->body = NULL;
    }
    j->data = NULL;
    s->t_relay = now_ms();
    smtpd_relay_message(s);
}

struct lookup {
    struct smtpd *srv;
    struct scan_job *job;
};

static void s_lookups_next(struct smtpd *srv, struct scan_job *j);

/* A job whose look-up ended while its session went away or the service stops: nothing stored
 * yet, nothing said. true when the job was freed. */
static bool s_lookup_orphan(struct scan_job **jp, bool cancelled)
{
    if (!cancelled && (*jp)->owner != NULL)
        return false;
    scan_job_free(jp);
    return true;
}

/* The look-up answer, in the loop. Policy, the delivered copy and the quarantine/archive
 * files go back to a scan thread rather than run here: writing the files fsyncs, and the loop
 * never waits on a disk either. */
static void s_looked_up(const struct smartscan_result *r, void *arg)
{
    struct lookup *l = arg;
    struct smtpd *srv = l->srv;
    struct scan_job *j = l->job;
    struct smtpd_session *s;

    free(l);
    if (s_lookup_orphan(&j, r->status == SMARTSCAN_CANCELLED))
        return;
    s = j->owner;
    if (r->status == SMARTSCAN_FAILED) { /* R2.5: aborted, 4xx, the upstream keeps it */
        log_err("id=%s scan aborted: smart-protection server connection error (%s)", j->id,
                r->error);
        s->scanning = false;
        s->t_scanned = now_ms();
        smtpd_session_finish(s, SMTPD_TEMPFAIL, "451 4.4.3 Error: smart-protection server "
                                                "connection error, try again later\r\n");
        if (srv->paused > 0 && !scanpool_full(srv->pool))
            smtpd_unpause_sessions(srv);
        return;
    }
    j->looked_up = true;
    if (r->status == SMARTSCAN_MALICIOUS)
        strlcpy_p(j->smart_virus, r->name, sizeof j->smart_virus);
    s_lookups_next(srv, j);
}

/* The rating service's answer (R3.2): a failure skips its ratings, never the message. */
static void s_rated(const struct wrs_client_result *r, void *arg)
{
    struct lookup *l = arg;
    struct smtpd *srv = l->srv;
    struct scan_job *j = l->job;

    free(l);
    if (s_lookup_orphan(&j, r->status == WRS_CLIENT_CANCELLED))
        return;
    j->wrs_asked = true;
    if (r->status == WRS_CLIENT_OK) {
        j->wrs_service = r->best;
    } else {
        snprintf(j->wrs_skipped, sizeof j->wrs_skipped, "rating service: %.200s", r->error);
        log_warn("id=%s web reputation skipped: %s", j->id, j->wrs_skipped);
    }
    s_lookups_next(srv, j);
}

/* After the first pass: the smart look-up, then the rating service, then a thread decides. */
static void s_lookups_next(struct smtpd *srv, struct scan_job *j)
{
    struct lookup *l;

    if (j->smart && !j->looked_up && srv->smart != NULL) {
        l = xcalloc(1, sizeof *l);
        l->srv = srv;
        l->job = j;
        smartscan_lookup(srv->smart, (const unsigned char(*)[32])j->digests, j->ndigests,
                         s_looked_up, l);
    } else if (j->wrs_remote && !j->wrs_asked && srv->wrs != NULL) {
        l = xcalloc(1, sizeof *l);
        l->srv = srv;
        l->job = j;
        wrs_client_rate(srv->wrs, j->mime->urls, j->mime->nurls, s_rated, l);
    } else {
        scanpool_submit(srv->pool, j);
    }
}

void smtpd_scan_done(struct scan_job *j, void *arg)
{
    struct smtpd *srv = arg;
    struct smtpd_session *s = j->owner;

    if (s != NULL && j->parsed && !j->decided && j->error[0] == '\0' &&
        ((j->smart && !j->looked_up) || (j->wrs_remote && !j->wrs_asked))) {
        s_lookups_next(srv, j);
    } else if (s == NULL) { /* the session went away: nothing was acknowledged */
        for (size_t i = 0; i < j->nfiles; i++)
            store_remove(&j->files[i]);
        scan_job_free(&j);
    } else {
        s->scanning = false;
        s->t_scanned = now_ms();
        s_act(s, j);
    }
    if (srv->paused > 0 && !scanpool_full(srv->pool))
        smtpd_unpause_sessions(srv);
}
