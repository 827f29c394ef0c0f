/* smtp_client: an asynchronous SMTP client on a libevent loop, one command at a time. It owns
 * one connection: connect, greeting, EHLO (HELO fallback) with the server's extensions, then
 * commands and message bodies (dot-stuffed here). Used by the scan service to relay to the
 * downstream MTA and meant for the manager's re-injection of released messages. */
#ifndef PORTCULLIS_SMTP_CLIENT_H
#define PORTCULLIS_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct evbuffer;

#define SMTP_CLIENT_LINE_MAX 4096   /* bytes of one reply line; longer: protocol error */
#define SMTP_CLIENT_REPLY_LINES 100 /* lines of one multi-line reply; more: protocol error */
#define SMTP_REPLY_TEXT_MAX 2048    /* bytes of reply text kept; the rest is cut */

/* Extensions the server announced in its EHLO reply. */
enum smtp_ext {
    SMTP_EXT_PIPELINING = 1u << 0,
    SMTP_EXT_SIZE = 1u << 1,
    SMTP_EXT_8BITMIME = 1u << 2,
    SMTP_EXT_XFORWARD = 1u << 3,
    SMTP_EXT_ENHANCEDSTATUSCODES = 1u << 4,
};

/* XFORWARD attributes (Postfix XFORWARD_README), as bits. */
enum smtp_xforward_attr {
    SMTP_XF_NAME = 1u << 0,
    SMTP_XF_ADDR = 1u << 1,
    SMTP_XF_PROTO = 1u << 2,
    SMTP_XF_HELO = 1u << 3,
    SMTP_XF_SOURCE = 1u << 4,
    SMTP_XF_IDENT = 1u << 5,
};
#define SMTP_XF_COUNT 6
/* Attribute name of bit i (0 <= i < SMTP_XF_COUNT), e.g. "NAME". */
const char *smtp_client_xforward_name(unsigned i);

struct smtp_reply {
    int code;  /* 100..599; 0: no reply (connect failed, timeout, connection lost, garbage) */
    char text[SMTP_REPLY_TEXT_MAX]; /* lines after the code, joined by '\n'; or the error */
};

typedef struct smtp_client smtp_client_t;

/* Called once per request, never from inside the call that made the request, and as the
 * client's last action: the callback may free the client or start the next request. */
typedef void smtp_client_cb(smtp_client_t *c, const struct smtp_reply *r, void *arg);

/* "host:port" ("[v6]:port" too) → address; resolves names with getaddrinfo (blocking: call at
 * start-up). 0 ok, -1 with err filled. */
int smtp_client_resolve(const char *hostport, struct sockaddr_storage *ss, socklen_t *sslen,
                        char *err, size_t errlen);

/* A client for the server at sa; helo is the name sent in EHLO; timeout_s bounds the connect
 * and every reply. Nothing happens until smtp_client_open(). */
smtp_client_t *smtp_client_new(struct event_base *base, const struct sockaddr *sa,
                               socklen_t salen, const char *helo, int timeout_s);
void smtp_client_free(smtp_client_t **cp);
void smtp_client_set_timeout(smtp_client_t *c, int timeout_s);

/* Connects and greets. cb gets the EHLO (or HELO) reply: 2xx = ready; otherwise the failing
 * reply (greeting, EHLO/HELO) or code 0. A client that failed can be opened again. */
int smtp_client_open(smtp_client_t *c, smtp_client_cb *cb, void *arg);
/* Sends one command (line without CRLF, at most SMTP_CLIENT_LINE_MAX bytes); cb gets its
 * reply. -1 if the client is not ready (not open or a request pending). */
int smtp_client_command(smtp_client_t *c, const char *line, smtp_client_cb *cb, void *arg);
/* After a 354: sends the message (drained from body, dot-stuffed) and the final ".";
 * cb gets the final reply. -1 if not ready. */
int smtp_client_body(smtp_client_t *c, struct evbuffer *body, smtp_client_cb *cb, void *arg);

/* Open and idle: a request can be made now. */
bool smtp_client_ready(const smtp_client_t *c);
unsigned smtp_client_extensions(const smtp_client_t *c); /* enum smtp_ext bits */
unsigned smtp_client_xforward_attrs(const smtp_client_t *c); /* enum smtp_xforward_attr bits */

/* Moves body into out with SMTP dot-stuffing (a "." that starts a line is doubled), then the
 * terminator: a CRLF first if body does not end with a line end, then ".\r\n". */
void smtp_client_dot_stuff(struct evbuffer *out, struct evbuffer *body);

#endif
