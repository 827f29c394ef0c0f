/* smtp_client: see smtp_client.h. One bufferevent per connection; replies are parsed line by
 * line with hard caps on line length and line count; every callback is delivered from the
 * event loop (failures found inside an API call go through a zero-delay timer). */
#include "smtp_client.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#define SMTP_HELO_MAX 255 /* bytes of the name sent in EHLO/HELO */

enum s_state {
    C_CLOSED,     /* no connection */
    C_CONNECTING, /* TCP connect in progress */
    C_GREETING,   /* waiting for the 220 greeting */
    C_EHLO,       /* waiting for the EHLO reply */
    C_HELO,       /* EHLO refused; waiting for the HELO reply */
    C_IDLE,       /* ready for a request */
    C_WAIT,       /* a command or body sent; waiting for its reply */
};

struct smtp_client {
    struct event_base *base;
    struct sockaddr_storage sa;
    socklen_t salen;
    char helo[SMTP_HELO_MAX + 1];
    int timeout_s;
    struct bufferevent *bev;
    enum s_state state;
    unsigned ext, xf;
    smtp_client_cb *cb;
    void *arg;
    struct smtp_reply reply; /* being read */
    size_t text_len;
    int nlines;
    struct event *fail_ev;   /* delivers a failure found inside an API call */
    char fail_text[256];
};

static const char *const s_xf_names[SMTP_XF_COUNT] = { "NAME", "ADDR", "PROTO",
                                                       "HELO", "SOURCE", "IDENT" };

const char *smtp_client_xforward_name(unsigned i)
{
    return i < SMTP_XF_COUNT ? s_xf_names[i] : NULL;
}

int smtp_client_resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *sslen,
                        char *err, size_t errlen)
{
    char host[256];
    const char *port, *colon;
    size_t hlen;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    int r;

    if (hostport[0] == '[') {
        const char *rb = strchr(hostport, ']');
        if (rb == NULL || rb[1] != ':')
            goto syntax;
        hlen = (size_t)(rb - hostport - 1);
        if (hlen >= sizeof host)
            goto syntax;
        memcpy(host, hostport + 1, hlen);
        port = rb + 2;
    } else {
        colon = strrchr(hostport, ':');
        if (colon == NULL)
            goto syntax;
        hlen = (size_t)(colon - hostport);
        if (hlen >= sizeof host)
            goto syntax;
        memcpy(host, hostport, hlen);
        port = colon + 1;
    }
    host[hlen] = '\0';
    if (hlen == 0 || *port == '\0')
        goto syntax;
    r = getaddrinfo(host, port, &hints, &ai);
    if (r != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", hostport, gai_strerror(r));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
syntax:
    snprintf(err, errlen, "bad address \"%s\" (want host:port)", hostport);
    return -1;
}

static void s_close(smtp_client_t *c)
{
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    c->bev = NULL;
    c->state = C_CLOSED;
}

/* Hands the reply to the pending callback; must be the caller's last use of c. */
static void s_deliver(smtp_client_t *c, const struct smtp_reply *r)
{
    smtp_client_cb *cb = c->cb;
    void *arg = c->arg;
    struct smtp_reply copy = *r;

    c->cb = NULL;
    c->arg = NULL;
    if (c->bev != NULL && c->state == C_IDLE)
        bufferevent_set_timeouts(c->bev, NULL, NULL); /* idle: wait as long as the server lets us */
    if (cb != NULL)
        cb(c, &copy, arg);
}

static void s_fail(smtp_client_t *c, const char *why)
{
    struct smtp_reply r = { .code = 0 };

    s_close(c);
    strlcpy_p(r.text, why, sizeof r.text);
    s_deliver(c, &r);
}

static void s_fail_cb(evutil_socket_t fd, short what, void *arg)
{
    smtp_client_t *c = arg;

    (void)fd;
    (void)what;
    s_fail(c, c->fail_text);
}

static void s_fail_later(smtp_client_t *c, const char *why)
{
    struct timeval zero = { 0, 0 };

    s_close(c);
    strlcpy_p(c->fail_text, why, sizeof c->fail_text);
    evtimer_add(c->fail_ev, &zero);
}

static void s_arm_timeouts(smtp_client_t *c)
{
    struct timeval tv = { .tv_sec = c->timeout_s, .tv_usec = 0 };

    bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void s_send(smtp_client_t *c, const char *line)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    evbuffer_add(out, line, strlen(line));
    evbuffer_add(out, "\r\n", 2);
}

static void s_send_hello(smtp_client_t *c, const char *verb)
{
    char line[SMTP_HELO_MAX + 8];

    snprintf(line, sizeof line, "%s %s", verb, c->helo);
    s_send(c, line);
}

/* One EHLO reply line after the first: an extension keyword and its parameters. */
static void s_parse_ext(smtp_client_t *c, const char *t)
{
    size_t kw = strcspn(t, " ");

    if (kw == 10 && strncasecmp(t, "PIPELINING", kw) == 0)
        c->ext |= SMTP_EXT_PIPELINING;
    else if (kw == 4 && strncasecmp(t, "SIZE", kw) == 0)
        c->ext |= SMTP_EXT_SIZE;
    else if (kw == 8 && strncasecmp(t, "8BITMIME", kw) == 0)
        c->ext |= SMTP_EXT_8BITMIME;
    else if (kw == 19 && strncasecmp(t, "ENHANCEDSTATUSCODES", kw) == 0)
        c->ext |= SMTP_EXT_ENHANCEDSTATUSCODES;
    else if (kw == 8 && strncasecmp(t, "XFORWARD", kw) == 0) {
        const char *p = t + kw;
        c->ext |= SMTP_EXT_XFORWARD;
        while (*p != '\0') {
            size_t n;
            p += strspn(p, " ");
            n = strcspn(p, " ");
            for (unsigned i = 0; i < SMTP_XF_COUNT; i++)
                if (n == strlen(s_xf_names[i]) && strncasecmp(p, s_xf_names[i], n) == 0)
                    c->xf |= 1u << i;
            p += n;
        }
    }
}

/* A complete reply arrived: advance the dialogue. Returns false when c may be gone. */
static bool s_reply_done(smtp_client_t *c)
{
    int code = c->reply.code;

    switch (c->state) {
    case C_GREETING:
        if (code != 220) {
            s_close(c);
            s_deliver(c, &c->reply);
            return false;
        }
        c->state = C_EHLO;
        c->ext = c->xf = 0;
        s_send_hello(c, "EHLO");
        return true;
    case C_EHLO:
        if (code / 100 == 5) { /* EHLO not understood: plain SMTP */
            c->state = C_HELO;
            c->ext = c->xf = 0;
            s_send_hello(c, "HELO");
            return true;
        }
        /* fall through */
    case C_HELO:
        if (code / 100 != 2) {
            s_close(c);
        } else {
            c->state = C_IDLE;
        }
        s_deliver(c, &c->reply);
        return false;
    case C_WAIT:
        if (code == 421)
            s_close(c); /* the server is closing the connection */
        else
            c->state = C_IDLE;
        s_deliver(c, &c->reply);
        return false;
    default: /* unsolicited (e.g. an idle timeout's 421): the connection is done */
        log_debug("smtp client: unsolicited reply %d from server, closing", code);
        s_close(c);
        return false;
    }
}

/* One reply line; returns 1 when the reply is complete, 0 for more, -1 on garbage. */
static int s_reply_line(smtp_client_t *c, const char *line, size_t n)
{
    int code;
    const char *t;
    size_t tn;

    if (n < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (n > 3 && line[3] != ' ' && line[3] != '-'))
        return -1;
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (c->nlines > 0 && code != c->reply.code)
        return -1;
    if (++c->nlines > SMTP_CLIENT_REPLY_LINES)
        return -1;
    c->reply.code = code;
    t = n > 4 ? line + 4 : "";
    tn = n > 4 ? n - 4 : 0;
    if (c->state == C_EHLO && c->nlines > 1)
        s_parse_ext(c, t);
    if (c->nlines > 1 && c->text_len + 1 < sizeof c->reply.text)
        c->reply.text[c->text_len++] = '\n';
    if (tn > sizeof c->reply.text - 1 - c->text_len)
        tn = sizeof c->reply.text - 1 - c->text_len;
    memcpy(c->reply.text + c->text_len, t, tn);
    c->text_len += tn;
    c->reply.text[c->text_len] = '\0';
    return n > 3 && line[3] == '-' ? 0 : 1;
}

static void s_reply_reset(smtp_client_t *c)
{
    c->reply.code = 0;
    c->reply.text[0] = '\0';
    c->text_len = 0;
    c->nlines = 0;
}

static void s_read_cb(struct bufferevent *bev, void *arg)
{
    smtp_client_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char line[SMTP_CLIENT_LINE_MAX + 1];

    for (;;) {
        size_t eol_len = 0;
        struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        size_t n;
        int r;

        if (p.pos < 0) {
            if (evbuffer_get_length(in) > SMTP_CLIENT_LINE_MAX + 1) /* +1: CR waiting for LF */
                s_fail(c, "protocol error: reply line too long");
            return;
        }
        n = (size_t)p.pos;
        if (n > SMTP_CLIENT_LINE_MAX) {
            s_fail(c, "protocol error: reply line too long");
            return;
        }
        evbuffer_remove(in, line, n);
        evbuffer_drain(in, eol_len);
        line[n] = '\0';
        r = s_reply_line(c, line, n);
        if (r < 0) {
            s_fail(c, "protocol error: malformed reply");
            return;
        }
        if (r == 1 && !s_reply_done(c))
            return;
        if (r == 1)
            s_reply_reset(c);
    }
}

static void s_event_cb(struct bufferevent *bev, short what, void *arg)
{
    smtp_client_t *c = arg;
    char why[160];

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->state = C_GREETING;
        s_reply_reset(c);
        return;
    }
    if (c->state == C_IDLE) { /* server went away between requests: reopen on demand */
        s_close(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(why, sizeof why, "timeout after %d s", c->timeout_s);
    else if (what & BEV_EVENT_EOF)
        snprintf(why, sizeof why, "connection closed by server");
    else if (c->state == C_CONNECTING)
        snprintf(why, sizeof why, "connect failed: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    else
        snprintf(why, sizeof why, "connection lost: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    s_fail(c, why);
}

smtp_client_t *smtp_client_new(struct event_base *base, const struct sockaddr *sa,
                               socklen_t salen, const char *helo, int timeout_s)
{
    smtp_client_t *c = xcalloc(1, sizeof *c);

    if (salen > sizeof c->sa) {
        free(c);
        return NULL;
    }
    c->base = base;
    memcpy(&c->sa, sa, salen);
    c->salen = salen;
    strlcpy_p(c->helo, helo, sizeof c->helo);
    c->timeout_s = timeout_s;
    c->state = C_CLOSED;
    c->fail_ev = evtimer_new(base, s_fail_cb, c);
    return c;
}

void smtp_client_free(smtp_client_t **cp)
{
    smtp_client_t *c;

    if (cp == NULL || *cp == NULL)
        return;
    c = *cp;
    s_close(c);
    event_free(c->fail_ev);
    free(c);
    *cp = NULL;
}

void smtp_client_set_timeout(smtp_client_t *c, int timeout_s) { c->timeout_s = timeout_s; }

/* Commands and the final "." are small writes that wait for a reply: without this, Nagle's
 * algorithm and the peer's delayed ACK add ~40 ms to a dot that follows a large body. */
static void s_nodelay(evutil_socket_t fd)
{
    int on = 1;

    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

static bool s_may_request(smtp_client_t *c, smtp_client_cb *cb, void *arg)
{
    if (c->cb != NULL || evtimer_pending(c->fail_ev, NULL))
        return false;
    c->cb = cb;
    c->arg = arg;
    return true;
}

int smtp_client_open(smtp_client_t *c, smtp_client_cb *cb, void *arg)
{
    if (c->state != C_CLOSED || !s_may_request(c, cb, arg))
        return -1;
    c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        s_fail_later(c, "cannot create socket");
        return 0;
    }
    bufferevent_setcb(c->bev, s_read_cb, NULL, s_event_cb, c);
    s_arm_timeouts(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = C_CONNECTING;
    errno = 0;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->sa, (int)c->salen) != 0) {
        char why[160];
        snprintf(why, sizeof why, "connect failed: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        s_fail_later(c, why);
        return 0;
    }
    s_nodelay(bufferevent_getfd(c->bev));
    return 0;
}

int smtp_client_command(smtp_client_t *c, const char *line, smtp_client_cb *cb, void *arg)
{
    if (c->state != C_IDLE || strlen(line) > SMTP_CLIENT_LINE_MAX || !s_may_request(c, cb, arg))
        return -1;
    s_reply_reset(c);
    c->state = C_WAIT;
    s_arm_timeouts(c);
    s_send(c, line);
    return 0;
}

int smtp_client_body(smtp_client_t *c, struct evbuffer *body, smtp_client_cb *cb, void *arg)
{
    if (c->state != C_IDLE || !s_may_request(c, cb, arg))
        return -1;
    s_reply_reset(c);
    c->state = C_WAIT;
    s_arm_timeouts(c);
    smtp_client_dot_stuff(bufferevent_get_output(c->bev), body);
    return 0;
}

bool smtp_client_ready(const smtp_client_t *c)
{
    return c->state == C_IDLE && c->cb == NULL;
}

unsigned smtp_client_extensions(const smtp_client_t *c) { return c->ext; }
unsigned smtp_client_xforward_attrs(const smtp_client_t *c) { return c->xf; }

void smtp_client_dot_stuff(struct evbuffer *out, struct evbuffer *body)
{
    struct evbuffer_ptr p;
    char last[2] = { 0, 0 };
    size_t len;

    if (evbuffer_get_length(body) == 0) {
        evbuffer_add(out, ".\r\n", 3);
        return;
    }
    evbuffer_copyout(body, last, 1);
    if (last[0] == '.')
        evbuffer_add(out, ".", 1);
    /* Every "\n." becomes "\n..": move the text up to the LF, add the extra dot. */
    while ((p = evbuffer_search(body, "\n.", 2, NULL)).pos >= 0) {
        evbuffer_remove_buffer(body, out, (size_t)p.pos + 1);
        evbuffer_add(out, ".", 1);
    }
    len = evbuffer_get_length(body); /* > 0: a moved "\n." leaves its "." behind */
    if (len >= 1) {
        struct evbuffer_ptr end;
        evbuffer_ptr_set(body, &end, len - 1, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(body, &end, last, 1);
    }
    evbuffer_add_buffer(out, body);
    if (last[0] != '\n')
        evbuffer_add(out, "\r\n", 2);
    evbuffer_add(out, ".\r\n", 3);
}
