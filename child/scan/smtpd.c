/* smtpd: the upstream side of the scan service's SMTP server: listener, connection limit,
 * sessions, the command/DATA input loop with its limits and timeouts, the per-message log line
 * and the counters. The downstream side of a session is in smtpd_relay.c. */
#include "scan/smtpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "log.h"
#include "scan/smtpd_int.h"
#include "util.h"

static void s_session_free(struct smtpd_session *s);
static void s_session_process(struct smtpd_session *s);

static void s_limits(const struct smtpd *srv, struct smtpd_limits *lim)
{
    lim->max_message_size = settings_int(srv->settings, SETTING_SMTP_MAX_MESSAGE_SIZE);
    lim->max_line_length = settings_int(srv->settings, SETTING_SMTP_MAX_LINE_LENGTH);
    lim->max_recipients = settings_int(srv->settings, SETTING_SMTP_MAX_RECIPIENTS);
}

static enum smtp_bare_mode s_bare_mode(const struct smtpd *srv)
{
    return strcmp(settings_str(srv->settings, SETTING_SMTP_BARE_NEWLINE), "normalize") == 0
               ? SMTP_BARE_NORMALIZE
               : SMTP_BARE_REJECT;
}

int smtpd_session_timeout(const struct smtpd_session *s, enum setting_id id)
{
    return (int)settings_int(s->srv->settings, id);
}

static void s_check_done(struct smtpd *srv)
{
    if (srv->shutting_down && srv->sessions == NULL && srv->done != NULL) {
        void (*done)(void *) = srv->done;
        srv->done = NULL;
        done(srv->done_arg);
    }
}

void smtpd_session_write(struct smtpd_session *s, const char *reply)
{
    bufferevent_write(s->bev, reply, strlen(reply));
}

void smtpd_format_reply(const struct smtp_reply *r, char *buf, size_t n)
{
    int code = r->code == 421 ? 451 : r->code;
    const char *t = r->text;
    size_t len = 0;

    /* n >= SMTPD_MIRROR_MAX holds any reply smtp_client keeps (text and line caps). */
    for (;;) {
        size_t tn = strcspn(t, "\n");
        bool more = t[tn] == '\n';
        int w = snprintf(buf + len, n - len, "%03d%c%.*s\r\n", code, more ? '-' : ' ', (int)tn, t);

        if (w < 0 || (size_t)w >= n - len) {
            buf[len] = '\0';
            break;
        }
        for (size_t i = len + 4; i < len + (size_t)w - 2; i++)
            if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
                buf[i] = '?';
        len += (size_t)w;
        if (!more)
            break;
        t += tn + 1;
    }
}

void smtpd_session_close(struct smtpd_session *s, const char *reply)
{
    if (reply != NULL)
        smtpd_session_write(s, reply);
    s->phase = SMTPD_P_CLOSING;
    bufferevent_disable(s->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        s_session_free(s); /* nothing to flush; only reached from event callbacks */
}

static const char *s_outcome_name(enum smtpd_outcome o)
{
    switch (o) {
    case SMTPD_RELAYED: return "relayed";
    case SMTPD_TEMPFAIL: return "tempfail";
    case SMTPD_QUARANTINED: return "quarantined";
    case SMTPD_DELETED: return "deleted";
    default: return "rejected";
    }
}

void smtpd_session_finish(struct smtpd_session *s, enum smtpd_outcome o, const char *reply)
{
    struct smtpd_stats *st = &s->srv->stats;
    const char *xaddr = s->proto.xforward[1]; /* ADDR */
    char quoted[256];
    size_t n = 0;

    for (const char *p = reply; *p != '\0' && *p != '\r' && n + 1 < sizeof quoted; p++)
        quoted[n++] = *p == '"' ? '\'' : *p;
    quoted[n] = '\0';
    log_info("id=%s from=<%s> nrcpt=%lld size=%llu client=%s result=%s reply=\"%s\" ms=%llu",
             s->id, s->proto.sender, (long long)s->proto.nrcpt,
             (unsigned long long)s->dec.size, xaddr[0] != '\0' ? xaddr : s->client,
             s_outcome_name(o), quoted, (unsigned long long)(now_ms() - s->t0));
    if (o == SMTPD_RELAYED) {
        st->messages_relayed++;
        st->bytes_relayed += s->dec.size;
    } else if (o == SMTPD_TEMPFAIL) {
        st->messages_tempfailed++;
    } else if (o == SMTPD_QUARANTINED) {
        st->messages_quarantined++;
    } else if (o == SMTPD_DELETED) {
        st->messages_deleted++;
    } else {
        st->messages_rejected++;
    }
    smtpd_scan_track(s, o, reply);
    smtpd_scan_clear(s);
    smtpd_proto_data_done(&s->proto);
    if (s->body != NULL)
        evbuffer_free(s->body);
    s->body = NULL;
    smtpd_spill_release(s);
    smtpd_relay_reset_then_reply(s, reply, SMTPD_ACT_REPLY);
}

void smtpd_session_resume(struct smtpd_session *s)
{
    if (s->phase == SMTPD_P_WAIT)
        s->phase = SMTPD_P_COMMAND;
    if (!s->busy) /* else the running loop carries on by itself */
        s_session_process(s);
}

/* The message is complete: the scan pool takes it, then smtpd_scan acts on the decision. */
static void s_session_message_received(struct smtpd_session *s)
{
    char reply[128];

    s->phase = SMTPD_P_WAIT;
    s->t_received = now_ms();
    s->received_ms = wall_ms();
    if (s->dec.line_too_long) {
        snprintf(reply, sizeof reply, "552 5.3.4 Error: message line longer than %lld bytes\r\n",
                 (long long)s->proto.lim.max_line_length);
        smtpd_session_finish(s, SMTPD_REJECTED, reply);
        return;
    }
    if (s->dec.too_big) {
        smtpd_session_finish(s, SMTPD_REJECTED, "552 5.3.4 Message size exceeds fixed limit\r\n");
        return;
    }
    if (smtp_data_over_limit(&s->dec)) { /* bare LF/CR in reject mode (R8.5) */
        log_warn("id=%s client=%s message with a bare <CR> or <LF> refused (smtp.bare_newline = "
                 "reject)", s->id, s->client);
        smtpd_session_finish(s, SMTPD_REJECTED,
                             "550 5.5.2 Error: bare <CR> or <LF> received in message data\r\n");
        return;
    }
    if (smtpd_spill_finish(s) != 0) { /* logged: the upstream keeps it and tries again */
        smtpd_session_finish(s, SMTPD_TEMPFAIL,
                             "451 4.3.0 Error: cannot hold the message for scanning, try again later\r\n");
        return;
    }
    smtpd_scan_message(s);
}

static void s_session_start_data(struct smtpd_session *s)
{
    if (!smtpd_relay_ready(s)) {
        /* Downstream lost since MAIL: no 354, the upstream keeps the message. */
        smtpd_session_finish(s, SMTPD_TEMPFAIL,
                             "451 4.4.1 Error: downstream connection lost, try again later\r\n");
        return;
    }
    smtpd_session_write(s, s->res.reply);
    smtp_data_init(&s->dec, (uint64_t)s->proto.lim.max_message_size,
                   (uint64_t)s->proto.lim.max_line_length, s_bare_mode(s->srv));
    s->body = evbuffer_new();
    s->phase = SMTPD_P_DATA;
}

static void s_session_command(struct smtpd_session *s, const char *line, size_t len)
{
    struct smtpd_limits lim;
    char reply[SMTPD_REPLY_MAX];

    if (s->srv->shutting_down && !smtpd_proto_in_transaction(&s->proto)) {
        snprintf(reply, sizeof reply, "421 4.3.2 %s Service shutting down\r\n", s->srv->hostname);
        smtpd_relay_reset_then_reply(s, reply, SMTPD_ACT_CLOSE);
        return;
    }
    s_limits(s->srv, &lim);
    smtpd_proto_set_limits(&s->proto, &lim);
    switch (smtpd_proto_feed(&s->proto, line, len, &s->res)) {
    case SMTPD_ACT_REPLY:
        if (s->res.reset)
            smtpd_relay_reset_then_reply(s, s->res.reply, SMTPD_ACT_REPLY);
        else
            smtpd_session_write(s, s->res.reply);
        break;
    case SMTPD_ACT_CLOSE:
        smtpd_relay_reset_then_reply(s, s->res.reply, SMTPD_ACT_CLOSE);
        break;
    case SMTPD_ACT_QUIT:
        smtpd_relay_quit(s);
        break;
    case SMTPD_ACT_MAIL:
        smtpd_scan_clear(s);
        random_hex(s->id, SMTPD_ID_BYTES);
        s->t0 = now_ms();
        smtp_data_init(&s->dec, 0, 0, SMTP_BARE_REJECT); /* size 0 until DATA */
        smtpd_ers_start(s);            /* answers come while the message does */
        smtpd_relay_mail(s);
        break;
    case SMTPD_ACT_RCPT:
        smtpd_relay_rcpt(s);
        break;
    case SMTPD_ACT_DATA:
        s_session_start_data(s);
        break;
    }
}

/* Reads message content; true when the message is complete. */
static bool s_session_data(struct smtpd_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);

    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        size_t used = 0;
        enum smtp_data_status st;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        st = smtp_data_feed(&s->dec, v.iov_base, v.iov_len, &used, s->body);
        evbuffer_drain(in, used);
        smtpd_spill_account(s); /* R8.5: all sessions' message bytes in memory are bounded */
        if (st == SMTP_DATA_END)
            return true;
    }
    return false;
}

/* Next command line into line (NUL-terminated); 1 got one, 0 need more, -1 too long, -2 a
 * bare LF or CR in reject mode (R8.5: Postfix's smtpd_forbid_bare_newline). */
static int s_session_line(struct smtpd_session *s, char *line, size_t *len)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t eol = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_LF);
    bool crlf;

    if (p.pos < 0)
        return evbuffer_get_length(in) > SMTP_LINE_MAX + 1 ? -1 : 0; /* +1: CR waiting for LF */
    if ((size_t)p.pos > SMTP_LINE_MAX + 1)
        return -1;
    evbuffer_remove(in, line, (size_t)p.pos);
    evbuffer_drain(in, eol);
    *len = (size_t)p.pos;
    crlf = *len > 0 && line[*len - 1] == '\r';
    if (crlf)
        (*len)--;
    else if (*len > SMTP_LINE_MAX)
        return -1;
    line[*len] = '\0';
    if ((!crlf || memchr(line, '\r', *len) != NULL) && s_bare_mode(s->srv) == SMTP_BARE_REJECT)
        return -2;
    return 1;
}

static void s_session_arm(struct smtpd_session *s)
{
    struct timeval rd = { 0, 0 }, wr = { 0, 0 };

    wr.tv_sec = smtpd_session_timeout(s, SETTING_SMTP_COMMAND_TIMEOUT_S);
    rd.tv_sec = s->phase == SMTPD_P_DATA ? smtpd_session_timeout(s, SETTING_SMTP_DATA_TIMEOUT_S)
                                         : wr.tv_sec;
    bufferevent_set_timeouts(s->bev, &rd, &wr);
}

static void s_session_process(struct smtpd_session *s)
{
    char line[SMTP_LINE_MAX + 1];
    size_t len;
    int r;

    s->busy = true;
    while (s->phase == SMTPD_P_COMMAND || s->phase == SMTPD_P_DATA) {
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SMTPD_OUTPUT_MAX)
            break; /* the peer does not read its replies: wait for the write callback */
        if (smtpd_scan_should_pause(s))
            break; /* the scan pool is full: smtpd_unpause_sessions resumes us */
        if (s->phase == SMTPD_P_DATA) {
            if (!s_session_data(s))
                break;
            s_session_message_received(s);
            continue;
        }
        r = s_session_line(s, line, &len);
        if (r == 0)
            break;
        if (r == -2) {
            log_warn("client=%s bare <CR> or <LF> in a command: disconnected "
                     "(smtp.bare_newline = reject)", s->client);
            smtpd_relay_reset_then_reply(s, "521 5.5.2 Error: bare <CR> or <LF> received\r\n",
                                         SMTPD_ACT_CLOSE);
            break;
        }
        if (r < 0) {
            smtpd_relay_reset_then_reply(s, "500 5.5.2 Line too long\r\n", SMTPD_ACT_CLOSE);
            break;
        }
        s_session_command(s, line, len);
    }
    s->busy = false;
    if (s->phase == SMTPD_P_COMMAND && s->srv->shutting_down &&
        !smtpd_proto_in_transaction(&s->proto) &&
        evbuffer_get_length(bufferevent_get_input(s->bev)) == 0) {
        char reply[SMTPD_REPLY_MAX];
        snprintf(reply, sizeof reply, "421 4.3.2 %s Service shutting down\r\n", s->srv->hostname);
        smtpd_relay_reset_then_reply(s, reply, SMTPD_ACT_CLOSE);
    }
    if (s->inflight != smtpd_proto_in_transaction(&s->proto)) {
        s->inflight = !s->inflight;
        if (s->inflight)
            s->srv->stats.inflight++;
        else
            s->srv->stats.inflight--;
    }
    if ((s->phase == SMTPD_P_COMMAND || s->phase == SMTPD_P_DATA) && !s->paused) {
        s_session_arm(s);
        bufferevent_enable(s->bev, EV_READ);
    } else {
        bufferevent_disable(s->bev, EV_READ);
    }
}

static void s_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    s_session_process(arg);
}

static void s_write_cb(struct bufferevent *bev, void *arg)
{
    struct smtpd_session *s = arg;

    (void)bev;
    if (s->phase == SMTPD_P_CLOSING)
        s_session_free(s);
    else if (s->phase == SMTPD_P_COMMAND || s->phase == SMTPD_P_DATA)
        s_session_process(s); /* output drained: resume if we had paused */
}

static void s_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtpd_session *s = arg;

    (void)bev;
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
        s->phase != SMTPD_P_CLOSING) {
        char reply[SMTPD_REPLY_MAX];
        log_info("client=%s timeout in %s", s->client,
                 s->phase == SMTPD_P_DATA ? "DATA" : "command phase");
        snprintf(reply, sizeof reply, "421 4.4.2 %s Error: timeout exceeded\r\n",
                 s->srv->hostname);
        bufferevent_enable(s->bev, EV_WRITE);
        smtpd_session_close(s, reply);
        return;
    }
    if (smtpd_proto_in_transaction(&s->proto))
        log_info("id=%s client=%s connection lost in transaction (not acknowledged)", s->id,
                 s->client);
    s_session_free(s);
}

static void s_session_free(struct smtpd_session *s)
{
    struct smtpd *srv = s->srv;

    if (s->inflight)
        srv->stats.inflight--;
    if (s->paused)
        srv->paused--;
    if (s->t_received != 0) /* received, never answered: the upstream keeps it */
        smtpd_scan_track(s, SMTPD_TEMPFAIL, "connection closed before the final reply");
    smtpd_scan_clear(s);
    smtp_client_free(&s->ds);
    if (s->body != NULL)
        evbuffer_free(s->body);
    smtpd_spill_release(s);
    if (s->deadline != NULL)
        event_free(s->deadline);
    bufferevent_free(s->bev);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    srv->stats.sessions--;
    free(s);
    s_check_done(srv);
}

/* The session's overall deadline (R8.5): a peer that keeps a session alive by trickling
 * bytes within every idle timeout is still cut off. While we are the ones working (scan,
 * downstream) the session gets a moment more: the step's own timeouts bound it. */
static void s_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd_session *s = arg;
    char reply[SMTPD_REPLY_MAX];

    (void)fd;
    (void)what;
    if (s->phase == SMTPD_P_CLOSING)
        return;
    if (s->phase == SMTPD_P_WAIT) {
        struct timeval again = { 5, 0 };
        evtimer_add(s->deadline, &again);
        return;
    }
    log_warn("client=%s session deadline of %lld s exceeded%s", s->client,
             (long long)settings_int(s->srv->settings, SETTING_SMTP_SESSION_TIMEOUT_S),
             smtpd_proto_in_transaction(&s->proto) ? " in a transaction (not acknowledged)" : "");
    snprintf(reply, sizeof reply, "421 4.4.2 %s Error: session time limit exceeded\r\n",
             s->srv->hostname);
    bufferevent_enable(s->bev, EV_WRITE);
    smtpd_session_close(s, reply);
}

static bool s_xforward_allowed(struct smtpd *srv, const char *peer)
{
    if (srv->xf_from != srv->settings) {
        char err[256];
        if (netmatch_parse(settings_str(srv->settings, SETTING_SMTP_XFORWARD_HOSTS),
                           &srv->xf_hosts, err, sizeof err) != 0) {
            log_err("smtp.xforward_hosts: %s; no client may send XFORWARD", err);
            memset(&srv->xf_hosts, 0, sizeof srv->xf_hosts);
        }
        srv->xf_from = srv->settings;
    }
    return netmatch_has(&srv->xf_hosts, peer);
}

/* Sessions open from one address (R8.8): a walk of the list, which smtp.max_connections
 * bounds; accepts are not the hot path. */
static int64_t s_sessions_from(const struct smtpd *srv, const char *peer)
{
    int64_t n = 0;

    for (const struct smtpd_session *s = srv->sessions; s != NULL; s = s->next)
        if (strcmp(s->client, peer) == 0)
            n++;
    return n;
}

static void s_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                        int salen, void *arg)
{
    struct smtpd *srv = arg;
    struct smtpd_session *s;
    struct smtpd_limits lim;
    char peer[SMTPD_CLIENT_MAX];

    (void)l;
    (void)salen;
    srv->accept_backoff_ms = 0;
    netmatch_addr_text(sa, peer, sizeof peer);
    srv->stats.connections++;
    if (srv->stats.sessions >= settings_int(srv->settings, SETTING_SMTP_MAX_CONNECTIONS) ||
        s_sessions_from(srv, peer) >= settings_int(srv->settings, SETTING_SMTP_MAX_CONNECTIONS_PER_ADDRESS)) {
        char reply[SMTPD_REPLY_MAX];
        bool total = srv->stats.sessions >= settings_int(srv->settings, SETTING_SMTP_MAX_CONNECTIONS);
        int n = snprintf(reply, sizeof reply, "421 4.7.0 %s Error: too many connections%s\r\n",
                         srv->hostname, total ? "" : " from your address");
        log_warn("client=%s refused: too many connections (%u%s)", peer, srv->stats.sessions,
                 total ? "" : ", smtp.max_connections_per_address from this address");
        /* A fresh socket's send buffer is empty: this short write does not block. */
        if (write(fd, reply, (size_t)n) < 0)
            log_debug("client=%s 421 not sent: %s", peer, strerror(errno));
        close(fd);
        return;
    }
    {
        int on = 1; /* replies are small writes the peer waits for: no Nagle delay */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->spill_fd = -1;
    strlcpy_p(s->client, peer, sizeof s->client);
    s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        log_err("client=%s cannot create bufferevent", peer);
        close(fd);
        free(s);
        return;
    }
    s->next = srv->sessions;
    if (srv->sessions != NULL)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->stats.sessions++;
    s_limits(srv, &lim);
    smtpd_proto_init(&s->proto, srv->hostname, &lim);
    smtpd_proto_allow_xforward(&s->proto, s_xforward_allowed(srv, peer));
    {
        struct timeval tv = {
            (time_t)settings_int(srv->settings, SETTING_SMTP_SESSION_TIMEOUT_S), 0 };
        s->deadline = evtimer_new(srv->base, s_deadline_cb, s);
        evtimer_add(s->deadline, &tv);
    }
    bufferevent_setcb(s->bev, s_read_cb, s_write_cb, s_event_cb, s);
    bufferevent_setwatermark(s->bev, EV_READ, 0, SMTPD_INPUT_MAX);
    smtpd_proto_greeting(&s->proto, &s->res);
    smtpd_session_write(s, s->res.reply);
    s->phase = SMTPD_P_COMMAND;
    bufferevent_enable(s->bev, EV_WRITE);
    s_session_process(s);
}

static void s_accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtpd *srv = arg;

    (void)fd;
    (void)what;
    if (srv->listener != NULL)
        evconnlistener_enable(srv->listener);
}

/* EMFILE and the like (R8.8): the listening socket stays readable, so retrying at once would
 * spin and flood the log. Listening pauses with backoff (100 ms doubling to 5 s, reset by the
 * next accept) and one line is logged per pause. */
static void s_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct smtpd *srv = arg;
    int e = errno;
    struct timeval tv;

    srv->accept_backoff_ms = srv->accept_backoff_ms == 0 ? SMTPD_ACCEPT_BACKOFF_MIN_MS
                             : srv->accept_backoff_ms * 2 > SMTPD_ACCEPT_BACKOFF_MAX_MS
                                 ? SMTPD_ACCEPT_BACKOFF_MAX_MS
                                 : srv->accept_backoff_ms * 2;
    evconnlistener_disable(l);
    tv.tv_sec = (time_t)(srv->accept_backoff_ms / 1000);
    tv.tv_usec = (suseconds_t)(srv->accept_backoff_ms % 1000) * 1000;
    evtimer_add(srv->accept_resume, &tv);
    log_warn("smtpd: accept failed: %s; listening again in %u ms (sessions: %u)", strerror(e),
             srv->accept_backoff_ms, srv->stats.sessions);
}

smtpd_t *smtpd_new(struct event_base *base, const char *listen, const char *downstream,
                   const char *hostname, const settings_t *settings, char *err, size_t errlen)
{
    struct smtpd *srv = xcalloc(1, sizeof *srv);
    struct sockaddr_storage ss;
    socklen_t sslen;
    char why[256];

    srv->base = base;
    srv->settings = settings;
    srv->spill_dir = -1;
    strlcpy_p(srv->hostname, hostname, sizeof srv->hostname);
    strlcpy_p(srv->ds_name, downstream, sizeof srv->ds_name);
    if (smtp_client_resolve(downstream, &srv->ds_addr, &srv->ds_addrlen, why, sizeof why) != 0) {
        snprintf(err, errlen, "downstream: %s", why);
        free(srv);
        return NULL;
    }
    if (smtp_client_resolve(listen, &ss, &sslen, why, sizeof why) != 0) {
        snprintf(err, errlen, "listen: %s", why);
        free(srv);
        return NULL;
    }
    srv->listener = evconnlistener_new_bind(base, s_accept_cb, srv,
                                            LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                                LEV_OPT_CLOSE_ON_EXEC,
                                            128, (struct sockaddr *)&ss, (int)sslen);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", listen, strerror(errno));
        free(srv);
        return NULL;
    }
    evconnlistener_set_error_cb(srv->listener, s_accept_error_cb);
    srv->accept_resume = evtimer_new(base, s_accept_resume_cb, srv);
    return srv;
}

void smtpd_free(smtpd_t **srvp)
{
    struct smtpd *srv;

    if (srvp == NULL || *srvp == NULL)
        return;
    srv = *srvp;
    srv->done = NULL;
    while (srv->sessions != NULL)
        s_session_free(srv->sessions);
    if (srv->listener != NULL)
        evconnlistener_free(srv->listener);
    if (srv->accept_resume != NULL)
        event_free(srv->accept_resume);
    if (srv->spill_dir >= 0)
        close(srv->spill_dir);
    free(srv);
    *srvp = NULL;
}

void smtpd_set_settings(smtpd_t *srv, const settings_t *settings) { srv->settings = settings; }

void smtpd_shutdown(smtpd_t *srv, void (*done)(void *arg), void *arg)
{
    struct smtpd_session *s, *next;

    srv->shutting_down = true;
    srv->done = done;
    srv->done_arg = arg;
    if (srv->listener != NULL)
        evconnlistener_free(srv->listener);
    srv->listener = NULL;
    for (s = srv->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->phase == SMTPD_P_COMMAND)
            s_session_process(s); /* idle sessions get their 421 now */
    }
    s_check_done(srv);
}

void smtpd_get_stats(const smtpd_t *srv, struct smtpd_stats *out) { *out = srv->stats; }

void smtpd_set_pool(smtpd_t *srv, struct scanpool *pool) { srv->pool = pool; }

int smtpd_set_spill_dir(smtpd_t *srv, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if (srv->spill_dir >= 0)
        close(srv->spill_dir);
    srv->spill_dir = fd;
    return 0;
}

void smtpd_set_smartscan(smtpd_t *srv, struct smartscan *ss) { srv->smart = ss; }

void smtpd_set_wrs(smtpd_t *srv, struct wrs_client *wc) { srv->wrs = wc; }

void smtpd_unpause_sessions(struct smtpd *srv)
{
    struct smtpd_session *s, *next;

    for (s = srv->sessions; s != NULL && srv->paused > 0; s = next) {
        next = s->next;
        if (!s->paused)
            continue;
        s->paused = false;
        srv->paused--;
        if (!s->busy)
            s_session_process(s);
    }
}
