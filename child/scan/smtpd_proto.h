/* smtpd_proto: the SMTP server's command state machine, without I/O. The session feeds it one
 * command line at a time and gets back an action and the reply text; for MAIL and RCPT, which
 * need the downstream's answer, it reports that answer back. Parsing, sequencing, limits and
 * the XFORWARD attributes live here so that unit tests can drive them line by line. */
#ifndef PORTCULLIS_SMTPD_PROTO_H
#define PORTCULLIS_SMTPD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp_client.h"

#define SMTP_LINE_MAX 4096      /* bytes of a command line, CRLF excluded; more: 500 + close */
#define SMTP_PATH_MAX 512       /* bytes of an address inside <> (RFC 5321 says 256) */
#define SMTPD_HOSTNAME_MAX 255  /* bytes of our hostname and of the client's HELO name */
#define SMTPD_XFORWARD_MAX 255  /* bytes of one XFORWARD attribute value (Postfix's limit) */
#define SMTPD_REPLY_MAX 1024    /* bytes of one reply we build (multi-line included) */
#define SMTPD_ERRORS_MAX 20     /* protocol errors per session before we hang up */

/* Limits of one transaction, taken from the settings when the transaction starts. */
struct smtpd_limits {
    int64_t max_message_size; /* smtp.max_message_size */
    int64_t max_line_length;  /* smtp.max_line_length */
    int64_t max_recipients;   /* smtp.max_recipients */
};

enum smtpd_state {
    SMTPD_STATE_GREETED, /* before HELO/EHLO */
    SMTPD_STATE_READY,   /* HELO done, no transaction */
    SMTPD_STATE_MAIL,    /* MAIL accepted: RCPT, DATA or RSET */
    SMTPD_STATE_DATA,    /* reading message content */
};

enum smtpd_action {
    SMTPD_ACT_REPLY, /* send the reply */
    SMTPD_ACT_CLOSE, /* send the reply, then close the connection */
    SMTPD_ACT_MAIL,  /* relay MAIL downstream, then smtpd_proto_mail_done() */
    SMTPD_ACT_RCPT,  /* relay RCPT downstream, then smtpd_proto_rcpt_done() */
    SMTPD_ACT_DATA,  /* send the 354 reply and read the message (smtpd_proto_data_done) */
    SMTPD_ACT_QUIT,  /* send the 221 reply and close */
};

struct smtpd_result {
    enum smtpd_action action;
    bool reset;                  /* the transaction was dropped: reset the downstream's too */
    char reply[SMTPD_REPLY_MAX]; /* lines end in CRLF; empty for MAIL and RCPT */
};

struct smtpd_proto {
    enum smtpd_state state;
    char hostname[SMTPD_HOSTNAME_MAX + 1];
    char helo[SMTPD_HOSTNAME_MAX + 1]; /* the client's HELO/EHLO argument */
    bool esmtp;
    struct smtpd_limits next;         /* for the next transaction */
    struct smtpd_limits lim;          /* of the current transaction */
    int errors;
    bool xforward_allowed;            /* the client is in smtp.xforward_hosts (R8.5) */
    /* the transaction */
    char sender[SMTP_PATH_MAX + 1];   /* without <>; "" for the null sender */
    int64_t size;                     /* MAIL SIZE= value, -1 if not given */
    char body[16];                    /* MAIL BODY= value ("7BIT", "8BITMIME") or "" */
    char rcpt[SMTP_PATH_MAX + 1];     /* the RCPT being relayed */
    int64_t nrcpt;                    /* recipients accepted downstream */
    /* XFORWARD attributes for the next transaction, as received (xtext) */
    char xforward[SMTP_XF_COUNT][SMTPD_XFORWARD_MAX + 1];
};

void smtpd_proto_init(struct smtpd_proto *p, const char *hostname,
                      const struct smtpd_limits *lim);
/* Whether this client may send XFORWARD (and sees it in the EHLO reply); default no. */
void smtpd_proto_allow_xforward(struct smtpd_proto *p, bool allowed);
/* New limits, in force from the next EHLO/MAIL on; a transaction keeps its own. */
void smtpd_proto_set_limits(struct smtpd_proto *p, const struct smtpd_limits *lim);
/* "220 …" greeting into out->reply. */
void smtpd_proto_greeting(const struct smtpd_proto *p, struct smtpd_result *out);

/* One command line (CRLF stripped, len bytes, need not be NUL-terminated). */
enum smtpd_action smtpd_proto_feed(struct smtpd_proto *p, const char *line, size_t len,
                                   struct smtpd_result *out);
/* The downstream's reply code for the MAIL / RCPT being relayed (0: no reply at all). */
void smtpd_proto_mail_done(struct smtpd_proto *p, int code);
void smtpd_proto_rcpt_done(struct smtpd_proto *p, int code);
/* The message was read and answered (any outcome): back to READY, XFORWARD cleared. */
void smtpd_proto_data_done(struct smtpd_proto *p);

/* MAIL/RCPT lines for the downstream (without CRLF); ext = the downstream's extensions. */
void smtpd_proto_mail_line(const struct smtpd_proto *p, unsigned ext, char *buf, size_t n);
void smtpd_proto_rcpt_line(const struct smtpd_proto *p, char *buf, size_t n);
/* XFORWARD line with the attributes the downstream supports (attrs bits); false if none. */
bool smtpd_proto_xforward_line(const struct smtpd_proto *p, unsigned attrs, char *buf,
                               size_t n);
bool smtpd_proto_in_transaction(const struct smtpd_proto *p);

#endif
