/* smtpd_proto: see smtpd_proto.h. Replies follow Postfix's wording where one exists, so that
 * the upstream MTA's logs read the same as with a Postfix content filter. */
#include "scan/smtpd_proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static void s_reply(struct smtpd_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void s_reply(struct smtpd_result *out, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(out->reply, sizeof out->reply - 2, fmt, ap);
    va_end(ap);
    n = strlen(out->reply);
    memcpy(out->reply + n, "\r\n", 3);
}

/* A protocol error: the reply, counted; too many of them end the session. */
static enum smtpd_action s_error(struct smtpd_proto *p, struct smtpd_result *out,
                                 const char *reply)
{
    if (++p->errors >= SMTPD_ERRORS_MAX) {
        s_reply(out, "421 4.7.0 %s Error: too many errors", p->hostname);
        return out->action = SMTPD_ACT_CLOSE;
    }
    s_reply(out, "%s", reply);
    return out->action = SMTPD_ACT_REPLY;
}

static void s_txn_clear(struct smtpd_proto *p)
{
    p->sender[0] = '\0';
    p->size = -1;
    p->body[0] = '\0';
    p->rcpt[0] = '\0';
    p->nrcpt = 0;
}

static void s_xforward_clear(struct smtpd_proto *p) { memset(p->xforward, 0, sizeof p->xforward); }

/* Drops the transaction (RSET, EHLO): tells the session to reset the downstream too. */
static void s_txn_reset(struct smtpd_proto *p, struct smtpd_result *out)
{
    if (p->state == SMTPD_STATE_MAIL)
        out->reset = true;
    if (p->state != SMTPD_STATE_GREETED)
        p->state = SMTPD_STATE_READY;
    s_txn_clear(p);
    s_xforward_clear(p);
}

void smtpd_proto_init(struct smtpd_proto *p, const char *hostname,
                      const struct smtpd_limits *lim)
{
    memset(p, 0, sizeof *p);
    p->state = SMTPD_STATE_GREETED;
    strlcpy_p(p->hostname, hostname, sizeof p->hostname);
    p->next = *lim;
    p->lim = *lim;
    s_txn_clear(p);
}

void smtpd_proto_allow_xforward(struct smtpd_proto *p, bool allowed)
{
    p->xforward_allowed = allowed;
}

void smtpd_proto_set_limits(struct smtpd_proto *p, const struct smtpd_limits *lim)
{
    p->next = *lim;
}

void smtpd_proto_greeting(const struct smtpd_proto *p, struct smtpd_result *out)
{
    memset(out, 0, sizeof *out);
    s_reply(out, "220 %s ESMTP Portcullis", p->hostname);
}

/* Skips "<kw>:" (case-insensitive) and blanks; NULL if the line does not start so. */
static const char *s_after_keyword(const char *args, const char *kw)
{
    size_t n = strlen(kw);

    if (strncasecmp(args, kw, n) != 0)
        return NULL;
    args += n;
    while (*args == ' ')
        args++;
    return args;
}

/* Parses "<addr>" at *sp into addr; leaves *sp after the ">". 0 ok, -1 bad syntax. */
static int s_parse_path(const char **sp, char *addr, size_t addrlen)
{
    const char *s = *sp;
    size_t n = 0;
    bool quoted = false;

    if (*s++ != '<')
        return -1;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (!quoted && c == '>')
            break;
        if (!quoted && c == ' ')
            return -1;
        if (c == '"')
            quoted = !quoted;
        else if (quoted && c == '\\' && s[1] != '\0') {
            if (n + 1 >= addrlen)
                return -1;
            addr[n++] = *s++;
        }
        if (n + 1 >= addrlen)
            return -1;
        addr[n++] = *s;
    }
    if (*s != '>')
        return -1;
    addr[n] = '\0';
    *sp = s + 1;
    return 0;
}

/* Next blank-separated parameter from *sp into buf; false at the end. */
static bool s_next_param(const char **sp, char *buf, size_t n)
{
    const char *s = *sp;
    size_t len;

    while (*s == ' ')
        s++;
    if (*s == '\0')
        return false;
    len = strcspn(s, " ");
    if (len >= n)
        len = n - 1; /* cut: it will not match anything we know and is refused */
    memcpy(buf, s, len);
    buf[len] = '\0';
    *sp = s + strcspn(s, " ");
    return true;
}

static enum smtpd_action s_cmd_helo(struct smtpd_proto *p, const char *args, bool ehlo,
                                    struct smtpd_result *out)
{
    if (*args == '\0' || strlen(args) > SMTPD_HOSTNAME_MAX || strchr(args, ' ') != NULL)
        return s_error(p, out, ehlo ? "501 5.5.4 Syntax: EHLO hostname"
                                    : "501 5.5.4 Syntax: HELO hostname");
    s_txn_reset(p, out);
    p->state = SMTPD_STATE_READY;
    p->esmtp = ehlo;
    strlcpy_p(p->helo, args, sizeof p->helo);
    if (!ehlo) {
        s_reply(out, "250 %s", p->hostname);
        return out->action = SMTPD_ACT_REPLY;
    }
    s_reply(out,
            "250-%s\r\n250-PIPELINING\r\n250-SIZE %" PRId64 "\r\n250-8BITMIME\r\n"
            "%s250 ENHANCEDSTATUSCODES",
            p->hostname, p->next.max_message_size,
            p->xforward_allowed ? "250-XFORWARD NAME ADDR PROTO HELO SOURCE IDENT\r\n" : "");
    return out->action = SMTPD_ACT_REPLY;
}

static enum smtpd_action s_cmd_mail(struct smtpd_proto *p, const char *args,
                                    struct smtpd_result *out)
{
    const char *s;
    char param[64];

    if (p->state == SMTPD_STATE_GREETED)
        return s_error(p, out, "503 5.5.1 Error: send HELO/EHLO first");
    if (p->state != SMTPD_STATE_READY)
        return s_error(p, out, "503 5.5.1 Error: nested MAIL command");
    if ((s = s_after_keyword(args, "FROM:")) == NULL || *s != '<')
        return s_error(p, out, "501 5.5.4 Syntax: MAIL FROM:<address>");
    s_txn_clear(p);
    p->lim = p->next; /* the transaction's limits, whatever reloads come meanwhile */
    if (s_parse_path(&s, p->sender, sizeof p->sender) != 0)
        return s_error(p, out, "501 5.1.7 Bad sender address syntax");
    if (*s != '\0' && *s != ' ')
        return s_error(p, out, "501 5.1.7 Bad sender address syntax");
    while (s_next_param(&s, param, sizeof param)) {
        if (strncasecmp(param, "SIZE=", 5) == 0) {
            int64_t v;
            if (parse_int64(param + 5, &v) != 0 || v < 0 || !isdigit((unsigned char)param[5]))
                return s_error(p, out, "501 5.5.4 Bad message size syntax");
            if (v > p->lim.max_message_size) {
                s_reply(out, "552 5.3.4 Message size exceeds fixed limit");
                return out->action = SMTPD_ACT_REPLY;
            }
            p->size = v;
        } else if (strcasecmp(param, "BODY=7BIT") == 0) {
            strlcpy_p(p->body, "7BIT", sizeof p->body);
        } else if (strcasecmp(param, "BODY=8BITMIME") == 0) {
            strlcpy_p(p->body, "8BITMIME", sizeof p->body);
        } else if (strncasecmp(param, "BODY=", 5) == 0) {
            return s_error(p, out, "501 5.5.4 Bad BODY keyword syntax");
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "555 5.5.4 Unsupported option: %s", param);
            return s_error(p, out, msg);
        }
    }
    out->reply[0] = '\0';
    return out->action = SMTPD_ACT_MAIL;
}

static enum smtpd_action s_cmd_rcpt(struct smtpd_proto *p, const char *args,
                                    struct smtpd_result *out)
{
    const char *s;
    char param[64];

    if (p->state != SMTPD_STATE_MAIL)
        return s_error(p, out, "503 5.5.1 Error: need MAIL command");
    if ((s = s_after_keyword(args, "TO:")) == NULL || *s != '<')
        return s_error(p, out, "501 5.5.4 Syntax: RCPT TO:<address>");
    if (s_parse_path(&s, p->rcpt, sizeof p->rcpt) != 0 || p->rcpt[0] == '\0' ||
        (*s != '\0' && *s != ' '))
        return s_error(p, out, "501 5.1.3 Bad recipient address syntax");
    if (s_next_param(&s, param, sizeof param)) {
        char msg[128];
        snprintf(msg, sizeof msg, "555 5.5.4 Unsupported option: %s", param);
        return s_error(p, out, msg);
    }
    if (p->nrcpt >= p->lim.max_recipients) {
        s_reply(out, "452 4.5.3 Error: too many recipients");
        return out->action = SMTPD_ACT_REPLY;
    }
    out->reply[0] = '\0';
    return out->action = SMTPD_ACT_RCPT;
}

static enum smtpd_action s_cmd_data(struct smtpd_proto *p, const char *args,
                                    struct smtpd_result *out)
{
    if (*args != '\0')
        return s_error(p, out, "501 5.5.4 Syntax: DATA");
    if (p->state != SMTPD_STATE_MAIL)
        return s_error(p, out, "503 5.5.1 Error: need RCPT command");
    if (p->nrcpt == 0)
        return s_error(p, out, "554 5.5.1 Error: no valid recipients");
    p->state = SMTPD_STATE_DATA;
    s_reply(out, "354 End data with <CR><LF>.<CR><LF>");
    return out->action = SMTPD_ACT_DATA;
}

static int s_xforward_index(const char *name, size_t n)
{
    for (unsigned i = 0; i < SMTP_XF_COUNT; i++) {
        const char *x = smtp_client_xforward_name(i);
        if (strlen(x) == n && strncasecmp(name, x, n) == 0)
            return (int)i;
    }
    return -1;
}

/* xtext (RFC 3461): printable ASCII but "=", and "+" only as "+XX" with upper-case hex. */
static bool s_xtext_ok(const char *v)
{
    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < 0x21 || c > 0x7e || c == '=')
            return false;
        if (c == '+') {
            for (int k = 1; k <= 2; k++)
                if (!((v[k] >= '0' && v[k] <= '9') || (v[k] >= 'A' && v[k] <= 'F')))
                    return false;
            v += 2;
        }
    }
    return true;
}

static bool s_hostname_ok(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > SMTPD_HOSTNAME_MAX)
        return false;
    for (; *v != '\0'; v++)
        if (!isalnum((unsigned char)*v) && *v != '-' && *v != '.' && *v != '_')
            return false;
    return true;
}

/* Each attribute by Postfix's XFORWARD grammar (XFORWARD_README): a bad value is refused,
 * so that nothing downstream (tracking, reputation, the Received line) takes it. */
static bool s_xforward_value_ok(unsigned i, const char *v)
{
    unsigned char a[16];

    if (!s_xtext_ok(v))
        return false;
    if (strcmp(v, "[UNAVAILABLE]") == 0 || strcmp(v, "[TEMPUNAVAIL]") == 0)
        return true;
    switch (1u << i) {
    case SMTP_XF_NAME:
        return s_hostname_ok(v);
    case SMTP_XF_ADDR:
        if (strncasecmp(v, "IPv6:", 5) == 0)
            return inet_pton(AF_INET6, v + 5, a) == 1;
        return inet_pton(AF_INET, v, a) == 1 || inet_pton(AF_INET6, v, a) == 1;
    case SMTP_XF_PROTO:
        for (const char *c = v; *c != '\0'; c++)
            if (!isalnum((unsigned char)*c))
                return false;
        return strlen(v) <= 16;
    case SMTP_XF_SOURCE:
        return strcmp(v, "LOCAL") == 0 || strcmp(v, "REMOTE") == 0;
    default: /* HELO, IDENT: any xtext */
        return true;
    }
}

static enum smtpd_action s_cmd_xforward(struct smtpd_proto *p, const char *args,
                                        struct smtpd_result *out)
{
    char values[SMTP_XF_COUNT][SMTPD_XFORWARD_MAX + 1];
    const char *s = args;

    if (!p->xforward_allowed)
        return s_error(p, out, "550 5.7.0 Error: insufficient authorization");
    if (p->state == SMTPD_STATE_GREETED)
        return s_error(p, out, "503 5.5.1 Error: send HELO/EHLO first");
    if (p->state != SMTPD_STATE_READY)
        return s_error(p, out, "503 5.5.1 Error: MAIL transaction in progress");
    if (*args == '\0')
        return s_error(p, out, "501 5.5.4 Syntax: XFORWARD attribute=value...");
    memcpy(values, p->xforward, sizeof values);
    while (*s != '\0') {
        size_t len, nlen;
        const char *eq;
        int i;

        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        len = strcspn(s, " ");
        eq = memchr(s, '=', len);
        if (eq == NULL || eq == s)
            return s_error(p, out, "501 5.5.4 Syntax: XFORWARD attribute=value...");
        nlen = (size_t)(eq - s);
        if ((i = s_xforward_index(s, nlen)) < 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "501 5.5.4 Bad XFORWARD attribute name: %.*s",
                     (int)(nlen > 32 ? 32 : nlen), s);
            return s_error(p, out, msg);
        }
        if (len - nlen - 1 > SMTPD_XFORWARD_MAX)
            return s_error(p, out, "501 5.5.4 Bad XFORWARD attribute value: too long");
        memcpy(values[i], eq + 1, len - nlen - 1);
        values[i][len - nlen - 1] = '\0';
        if (!s_xforward_value_ok((unsigned)i, values[i])) {
            char msg[128];
            snprintf(msg, sizeof msg, "501 5.5.4 Bad XFORWARD attribute value: %s",
                     smtp_client_xforward_name((unsigned)i));
            return s_error(p, out, msg);
        }
        s += len;
    }
    memcpy(p->xforward, values, sizeof values); /* all or nothing */
    s_reply(out, "250 2.0.0 Ok");
    return out->action = SMTPD_ACT_REPLY;
}

enum smtpd_action smtpd_proto_feed(struct smtpd_proto *p, const char *line, size_t len,
                                   struct smtpd_result *out)
{
    char buf[SMTP_LINE_MAX + 1];
    char *args;
    size_t vlen;

    memset(out, 0, sizeof *out);
    if (len > SMTP_LINE_MAX) {
        s_reply(out, "500 5.5.2 Line too long");
        return out->action = SMTPD_ACT_CLOSE;
    }
    if (p->state == SMTPD_STATE_DATA) /* the session feeds DATA content elsewhere */
        return s_error(p, out, "503 5.5.1 Error: command during DATA");
    memcpy(buf, line, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL)
        return s_error(p, out, "500 5.5.2 Error: NUL character in command");
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    vlen = strcspn(buf, " ");
    args = buf + vlen;
    while (*args == ' ')
        args++;
    buf[vlen] = '\0';

    if (strcasecmp(buf, "EHLO") == 0)
        return s_cmd_helo(p, args, true, out);
    if (strcasecmp(buf, "HELO") == 0)
        return s_cmd_helo(p, args, false, out);
    if (strcasecmp(buf, "MAIL") == 0)
        return s_cmd_mail(p, args, out);
    if (strcasecmp(buf, "RCPT") == 0)
        return s_cmd_rcpt(p, args, out);
    if (strcasecmp(buf, "DATA") == 0)
        return s_cmd_data(p, args, out);
    if (strcasecmp(buf, "XFORWARD") == 0)
        return s_cmd_xforward(p, args, out);
    if (strcasecmp(buf, "RSET") == 0) {
        if (*args != '\0')
            return s_error(p, out, "501 5.5.4 Syntax: RSET");
        s_txn_reset(p, out);
        s_reply(out, "250 2.0.0 Ok");
        return out->action = SMTPD_ACT_REPLY;
    }
    if (strcasecmp(buf, "NOOP") == 0) {
        s_reply(out, "250 2.0.0 Ok");
        return out->action = SMTPD_ACT_REPLY;
    }
    if (strcasecmp(buf, "QUIT") == 0) {
        s_txn_reset(p, out);
        s_reply(out, "221 2.0.0 Bye");
        return out->action = SMTPD_ACT_QUIT;
    }
    if (strcasecmp(buf, "VRFY") == 0) {
        if (*args == '\0')
            return s_error(p, out, "501 5.5.4 Syntax: VRFY address");
        s_reply(out, "252 2.0.0 Cannot VRFY user; try RCPT to attempt delivery");
        return out->action = SMTPD_ACT_REPLY;
    }
    if (strcasecmp(buf, "HELP") == 0) {
        s_reply(out, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP "
                     "XFORWARD");
        return out->action = SMTPD_ACT_REPLY;
    }
    return s_error(p, out, "500 5.5.2 Error: command not recognized");
}

void smtpd_proto_mail_done(struct smtpd_proto *p, int code)
{
    if (p->state == SMTPD_STATE_READY && code / 100 == 2) {
        p->state = SMTPD_STATE_MAIL;
        p->nrcpt = 0;
    } else if (p->state == SMTPD_STATE_READY) {
        s_txn_clear(p);
    }
}

void smtpd_proto_rcpt_done(struct smtpd_proto *p, int code)
{
    if (p->state == SMTPD_STATE_MAIL && code / 100 == 2)
        p->nrcpt++;
    p->rcpt[0] = '\0';
}

void smtpd_proto_data_done(struct smtpd_proto *p)
{
    if (p->state == SMTPD_STATE_DATA || p->state == SMTPD_STATE_MAIL)
        p->state = SMTPD_STATE_READY;
    s_txn_clear(p);
    s_xforward_clear(p);
}

void smtpd_proto_mail_line(const struct smtpd_proto *p, unsigned ext, char *buf, size_t n)
{
    int len = snprintf(buf, n, "MAIL FROM:<%s>", p->sender);

    if (len > 0 && (size_t)len < n && (ext & SMTP_EXT_SIZE) && p->size >= 0)
        len += snprintf(buf + len, n - (size_t)len, " SIZE=%" PRId64, p->size);
    if (len > 0 && (size_t)len < n && (ext & SMTP_EXT_8BITMIME) && p->body[0] != '\0')
        snprintf(buf + len, n - (size_t)len, " BODY=%s", p->body);
}

void smtpd_proto_rcpt_line(const struct smtpd_proto *p, char *buf, size_t n)
{
    snprintf(buf, n, "RCPT TO:<%s>", p->rcpt);
}

bool smtpd_proto_xforward_line(const struct smtpd_proto *p, unsigned attrs, char *buf,
                               size_t n)
{
    size_t len = strlcpy_p(buf, "XFORWARD", n);
    bool any = false;

    for (unsigned i = 0; i < SMTP_XF_COUNT; i++) {
        if (!(attrs & (1u << i)) || p->xforward[i][0] == '\0')
            continue;
        if (len < n)
            len += (size_t)snprintf(buf + len, n - len, " %s=%s", smtp_client_xforward_name(i),
                                    p->xforward[i]);
        any = true;
    }
    return any;
}

bool smtpd_proto_in_transaction(const struct smtpd_proto *p)
{
    return p->state == SMTPD_STATE_MAIL || p->state == SMTPD_STATE_DATA;
}
