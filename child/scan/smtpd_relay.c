/* smtpd_relay: the downstream side of an upstream session. One smtp_client per session, opened
 * at the first MAIL and kept for the next transactions; each step mirrors the downstream's
 * answer to the upstream, and every failure becomes a 4xx so the upstream keeps the message. */
#include <ctype.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "scan/smtpd_int.h"
#include "util.h"

#define RELAY_LINE_MAX (SMTP_PATH_MAX + 128) /* bytes of a MAIL/RCPT/XFORWARD line we send */

static void s_open_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg);
static void s_xforward_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg);
static void s_mail_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg);

bool smtpd_relay_ready(const struct smtpd_session *s)
{
    return s->ds != NULL && smtp_client_ready(s->ds);
}

/* "451 4.4.1 …" for a downstream that did not answer usefully (no reply, 5xx where we must
 * not bounce, or a greeting/EHLO failure); a plain 4xx of the downstream is passed as is. */
static void s_tempfail_text(const struct smtpd_session *s, const struct smtp_reply *r,
                            char *buf, size_t n)
{
    if (r->code / 100 == 4) {
        smtpd_format_reply(r, buf, n);
        return;
    }
    if (r->code == 0)
        snprintf(buf, n, "451 4.4.1 Error: downstream %s: %.200s\r\n", s->srv->ds_name, r->text);
    else
        snprintf(buf, n, "451 4.4.1 Error: downstream %s said: %d %.200s\r\n", s->srv->ds_name,
                 r->code, r->text);
    for (char *p = buf; *p != '\0'; p++)
        if (*p == '\n' && (p == buf || p[-1] != '\r'))
            *p = ' ';
}

/* Log one downstream failure, once, where we know the step. */
static void s_log_failure(const struct smtpd_session *s, const char *step,
                          const struct smtp_reply *r)
{
    if (r->code == 0)
        log_warn("id=%s downstream=%s step=%s error=\"%.200s\"", s->id, s->srv->ds_name, step,
                 r->text);
    else
        log_warn("id=%s downstream=%s step=%s reply=\"%d %.200s\"", s->id, s->srv->ds_name, step,
                 r->code, r->text);
}

static void s_drop_downstream(struct smtpd_session *s)
{
    smtp_client_free(&s->ds);
    s->ds_txn = false;
}

/* The MAIL step failed before or at the downstream's MAIL reply. */
static void s_mail_failed(struct smtpd_session *s, const struct smtp_reply *r, const char *step)
{
    char reply[SMTPD_MIRROR_MAX];

    s_tempfail_text(s, r, reply, sizeof reply);
    s_log_failure(s, step, r);
    s_drop_downstream(s);
    smtpd_proto_mail_done(&s->proto, 451);
    smtpd_session_write(s, reply);
    smtpd_session_resume(s);
}

static void s_send_mail(struct smtpd_session *s)
{
    char line[RELAY_LINE_MAX];

    smtpd_proto_mail_line(&s->proto, smtp_client_extensions(s->ds), line, sizeof line);
    if (smtp_client_command(s->ds, line, s_mail_cb, s) != 0) {
        struct smtp_reply r = { .code = 0, .text = "client not ready" };
        s_mail_failed(s, &r, "MAIL");
    }
}

static void s_send_xforward(struct smtpd_session *s)
{
    char line[SMTP_XF_COUNT * (SMTPD_XFORWARD_MAX + 16) + 16];

    if ((smtp_client_extensions(s->ds) & SMTP_EXT_XFORWARD) &&
        smtpd_proto_xforward_line(&s->proto, smtp_client_xforward_attrs(s->ds), line,
                                  sizeof line) &&
        smtp_client_command(s->ds, line, s_xforward_cb, s) == 0)
        return;
    s_send_mail(s);
}

static void s_open_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;

    (void)c;
    if (r->code / 100 != 2) {
        s_mail_failed(s, r, "connect");
        return;
    }
    s_send_xforward(s);
}

static void s_xforward_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;

    (void)c;
    if (r->code / 100 != 2) {
        s_mail_failed(s, r, "XFORWARD");
        return;
    }
    s_send_mail(s);
}

static void s_mail_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;
    char reply[SMTPD_MIRROR_MAX];

    (void)c;
    if (r->code == 0) {
        s_mail_failed(s, r, "MAIL");
        return;
    }
    smtpd_format_reply(r, reply, sizeof reply); /* 4xx and 5xx of MAIL pass through */
    if (r->code / 100 == 2)
        s->ds_txn = true;
    smtpd_proto_mail_done(&s->proto, r->code);
    smtpd_session_write(s, reply);
    smtpd_session_resume(s);
}

void smtpd_relay_mail(struct smtpd_session *s)
{
    struct smtpd *srv = s->srv;
    int timeout = smtpd_session_timeout(s, SETTING_SMTP_DOWNSTREAM_TIMEOUT_S);

    s->phase = SMTPD_P_WAIT;
    if (s->ds != NULL && !smtpd_relay_ready(s))
        s_drop_downstream(s); /* closed by the server since the last transaction */
    if (s->ds == NULL)
        s->ds = smtp_client_new(srv->base, (struct sockaddr *)&srv->ds_addr, srv->ds_addrlen,
                                srv->hostname, timeout);
    smtp_client_set_timeout(s->ds, timeout);
    s->ds_txn = false;
    if (smtp_client_ready(s->ds))
        s_send_xforward(s);
    else
        smtp_client_open(s->ds, s_open_cb, s); /* fresh client: cannot refuse */
}

static void s_rcpt_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;
    char reply[SMTPD_MIRROR_MAX];

    (void)c;
    if (r->code == 0) {
        s_log_failure(s, "RCPT", r);
        s_tempfail_text(s, r, reply, sizeof reply);
        s_drop_downstream(s);
    } else {
        smtpd_format_reply(r, reply, sizeof reply); /* per-recipient answers are honoured */
        if (r->code / 100 == 2)
            smtpd_scan_add_rcpt(s, s->proto.rcpt);
    }
    smtpd_proto_rcpt_done(&s->proto, r->code);
    smtpd_session_write(s, reply);
    smtpd_session_resume(s);
}

void smtpd_relay_rcpt(struct smtpd_session *s)
{
    char line[RELAY_LINE_MAX];

    if (!smtpd_relay_ready(s)) {
        smtpd_proto_rcpt_done(&s->proto, 451);
        smtpd_session_write(s, "451 4.4.1 Error: downstream connection lost, try again later\r\n");
        return;
    }
    smtpd_proto_rcpt_line(&s->proto, line, sizeof line);
    s->phase = SMTPD_P_WAIT;
    smtp_client_command(s->ds, line, s_rcpt_cb, s);
}

/* The downstream's 250 for the message, with our id for the upstream's log. */
static void s_queued_text(const struct smtpd_session *s, const struct smtp_reply *r, char *buf,
                          size_t n)
{
    const char *t = r->text;
    size_t tn;
    static const char queued[] = "Ok: queued as ";

    /* skip the downstream's enhanced status code, e.g. "2.0.0 " */
    if (isdigit((unsigned char)t[0]) && t[1] == '.') {
        size_t sp = strcspn(t, " \n");
        if (t[sp] == ' ')
            t += sp + 1;
    }
    tn = strcspn(t, "\n");
    if (tn > 200)
        tn = 200;
    if (strncmp(t, queued, sizeof queued - 1) == 0)
        snprintf(buf, n, "250 2.0.0 Ok: queued as %.*s id=%s\r\n", (int)(tn - (sizeof queued - 1)),
                 t + sizeof queued - 1, s->id);
    else
        snprintf(buf, n, "250 2.0.0 Ok: id=%s downstream: %.*s\r\n", s->id, (int)tn, t);
    for (char *p = buf + 4; p[2] != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static void s_body_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;
    char reply[SMTPD_MIRROR_MAX];

    (void)c;
    s->ds_txn = false; /* a final reply, or no connection: the downstream transaction is over */
    if (r->code / 100 == 2) {
        s_queued_text(s, r, reply, sizeof reply);
        smtpd_session_finish(s, SMTPD_RELAYED, reply);
    } else if (r->code / 100 == 5) {
        smtpd_format_reply(r, reply, sizeof reply);
        smtpd_session_finish(s, SMTPD_REJECTED, reply);
    } else {
        if (r->code == 0) {
            s_log_failure(s, "end-of-data", r);
            s_drop_downstream(s);
        }
        s_tempfail_text(s, r, reply, sizeof reply);
        smtpd_session_finish(s, SMTPD_TEMPFAIL, reply);
    }
}

static void s_data_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;
    char reply[SMTPD_MIRROR_MAX];

    if (r->code == 354 && smtp_client_body(c, s->body, s_body_cb, s) == 0)
        return;
    s_log_failure(s, "DATA", r);
    if (r->code == 0)
        s_drop_downstream(s);
    s_tempfail_text(s, r, reply, sizeof reply);
    smtpd_session_finish(s, SMTPD_TEMPFAIL, reply); /* RSETs the downstream if it is still there */
}

void smtpd_relay_message(struct smtpd_session *s)
{
    s->phase = SMTPD_P_WAIT;
    if (!smtpd_relay_ready(s) || smtp_client_command(s->ds, "DATA", s_data_cb, s) != 0) {
        s_drop_downstream(s);
        smtpd_session_finish(s, SMTPD_TEMPFAIL,
                             "451 4.4.1 Error: downstream connection lost, try again later\r\n");
    }
}

static void s_after_reset(struct smtpd_session *s)
{
    if (s->pending_action == SMTPD_ACT_CLOSE) {
        smtpd_session_close(s, s->pending);
        return;
    }
    smtpd_session_write(s, s->pending);
    smtpd_session_resume(s);
}

static void s_rset_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;

    (void)c;
    s->ds_txn = false;
    if (r->code / 100 != 2)
        s_drop_downstream(s); /* start clean at the next MAIL */
    s_after_reset(s);
}

void smtpd_relay_reset_then_reply(struct smtpd_session *s, const char *reply,
                                  enum smtpd_action action)
{
    strlcpy_p(s->pending, reply, sizeof s->pending);
    s->pending_action = action;
    if (action != SMTPD_ACT_CLOSE && s->ds_txn && smtpd_relay_ready(s) &&
        smtp_client_command(s->ds, "RSET", s_rset_cb, s) == 0) {
        s->phase = SMTPD_P_WAIT;
        return;
    }
    if (action == SMTPD_ACT_CLOSE || !smtpd_relay_ready(s))
        s_drop_downstream(s);
    s->ds_txn = false;
    if (action == SMTPD_ACT_CLOSE) {
        smtpd_session_close(s, s->pending);
        return;
    }
    smtpd_session_write(s, s->pending);
    if (s->phase == SMTPD_P_WAIT)
        smtpd_session_resume(s); /* called from a downstream callback */
}

static void s_quit_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg)
{
    struct smtpd_session *s = arg;

    (void)c;
    (void)r;
    s_drop_downstream(s);
    smtpd_session_close(s, s->pending);
}

void smtpd_relay_quit(struct smtpd_session *s)
{
    strlcpy_p(s->pending, s->res.reply, sizeof s->pending);
    if (smtpd_relay_ready(s) && smtp_client_command(s->ds, "QUIT", s_quit_cb, s) == 0) {
        s->phase = SMTPD_P_WAIT;
        return;
    }
    s_drop_downstream(s);
    smtpd_session_close(s, s->pending);
}
