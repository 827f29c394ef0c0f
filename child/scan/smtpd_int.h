/* smtpd_int: private to smtpd.c (upstream side: listener, sessions, command loop) and
 * smtpd_relay.c (downstream side: one smtp_client per session). */
#ifndef PORTCULLIS_SMTPD_INT_H
#define PORTCULLIS_SMTPD_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "netmatch.h"
#include "scan/smtp_data.h"
#include "scan/smtpd.h"
#include "scan/smtpd_proto.h"
#include "smtp_client.h"

#define SMTPD_ID_BYTES 8            /* random bytes of a message id: 16 hex characters */
#define SMTPD_CLIENT_MAX 64         /* bytes of "addr" text of the upstream peer */
#define SMTPD_INPUT_MAX (256 * 1024)  /* bytes buffered from the upstream before we stop reading */
#define SMTPD_OUTPUT_MAX (256 * 1024) /* bytes of unsent replies before we stop processing */
#define SMTPD_ACCEPT_BACKOFF_MIN_MS 100  /* accept() failing: pause listening … */
#define SMTPD_ACCEPT_BACKOFF_MAX_MS 5000 /* … doubling up to this */
#define SMTPD_MIRROR_MAX (SMTP_REPLY_TEXT_MAX + 1024) /* bytes of a downstream reply made ours */

enum smtpd_phase {
    SMTPD_P_COMMAND, /* reading commands */
    SMTPD_P_DATA,    /* reading message content */
    SMTPD_P_WAIT,    /* waiting for the downstream: input is not processed */
    SMTPD_P_CLOSING, /* last reply being written, then the session ends */
};

enum smtpd_outcome { SMTPD_RELAYED, SMTPD_TEMPFAIL, SMTPD_REJECTED, SMTPD_QUARANTINED,
                     SMTPD_DELETED };

struct scan_job;
struct scanpool;

struct smtpd {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *accept_resume;    /* listening again after accept() failed (R8.8) */
    unsigned accept_backoff_ms;
    struct sockaddr_storage ds_addr;
    socklen_t ds_addrlen;
    char ds_name[256];
    char hostname[SMTPD_HOSTNAME_MAX + 1];
    const settings_t *settings;
    struct smtpd_session *sessions; /* doubly linked */
    const settings_t *xf_from;      /* the settings xf_hosts was parsed from */
    struct netmatch xf_hosts;       /* smtp.xforward_hosts */
    struct smtpd_stats stats;
    bool shutting_down;
    struct scanpool *pool;          /* NULL: relay without scanning (unit tests) */
    struct ers *ers;                /* NULL: no email reputation (unit tests) */
    unsigned paused;                /* sessions whose input waits for room in the pool */
    struct smartscan *smart;        /* smart-protection look-ups; NULL: none (unit tests) */
    struct wrs_client *wrs;         /* web-reputation rating service; NULL: none */
    int spill_dir;                  /* where large messages go (R8.5); -1: nowhere, kept in memory */
    uint64_t mem_bytes;             /* message bytes all sessions hold in memory */
    void (*done)(void *arg);
    void *done_arg;
};

struct smtpd_session {
    struct smtpd *srv;
    struct smtpd_session *prev, *next;
    struct bufferevent *bev;
    struct event *deadline; /* smtp.session_timeout_s after the accept (R8.5) */
    char client[SMTPD_CLIENT_MAX];
    struct smtpd_proto proto;
    struct smtpd_result res;
    enum smtpd_phase phase;
    bool inflight;
    bool busy;              /* inside the input loop: resume must not re-enter it */
    smtp_client_t *ds;
    bool ds_txn;            /* the downstream has accepted MAIL for this transaction */
    /* the message */
    char id[2 * SMTPD_ID_BYTES + 1];
    uint64_t t0;            /* now_ms() at MAIL */
    struct smtp_data dec;
    struct evbuffer *body;  /* unstuffed, CRLF line ends; a spilled one maps its file */
    uint64_t mem_counted;   /* bytes of body counted in srv->mem_bytes */
    int spill_fd;           /* the unnamed file the message goes to (R8.5), -1: in memory */
    uint64_t spill_len;     /* bytes written to it */
    bool spill_failed;      /* a write failed: the message gets 451 at its end */
    char pending[SMTPD_MIRROR_MAX]; /* reply to send once the downstream is reset */
    enum smtpd_action pending_action;
    /* the scan and the tracking record (smtpd_scan.c) */
    char **rcpts;           /* recipients the downstream accepted */
    size_t nrcpts;
    uint64_t t_data, t_received, t_scanned, t_relay; /* now_ms() at DATA, end of data, … */
    uint64_t received_ms;   /* wall clock at the end of DATA */
    struct scan_job *job;   /* in the pool (job->owner == this session), then its result */
    bool scanning;          /* job is in the pool: its results are not ours to read yet */
    bool paused;            /* waiting for room in the scan pool */
    struct ers_query *ers;  /* email reputation look-up of this transaction (smtpd_ers.c) */
};

/* smtpd_spill.c (R8.5): the body is counted against smtp.message_memory_max as it grows;
 * past it, it goes to an unnamed 0600 file in the spool directory and, at the end of data,
 * the body maps that file (the scan, the store and the relay read it as before). */
void smtpd_spill_account(struct smtpd_session *s);
/* At the end of data: 0, or -1 when the spilled message could not be kept (451). */
int smtpd_spill_finish(struct smtpd_session *s);
/* The body is being freed: its bytes no longer count, its file is closed. */
void smtpd_spill_release(struct smtpd_session *s);

/* smtpd.c, for smtpd_relay.c */
void smtpd_session_write(struct smtpd_session *s, const char *reply);
/* A downstream reply as ours (CRLF lines, multi-line kept; 421 made 451: we are not closing). */
void smtpd_format_reply(const struct smtp_reply *r, char *buf, size_t n);
/* The downstream step is over: process buffered input again. */
void smtpd_session_resume(struct smtpd_session *s);
/* Final reply for the message: logs the outcome line, counts, writes reply, ends it. */
void smtpd_session_finish(struct smtpd_session *s, enum smtpd_outcome o, const char *reply);
void smtpd_session_close(struct smtpd_session *s, const char *reply);
int smtpd_session_timeout(const struct smtpd_session *s, enum setting_id id);

/* smtpd_scan.c: hands a received message to the pool, acts on the decision, writes the
 * tracking record of every outcome. */
void smtpd_scan_message(struct smtpd_session *s);
void smtpd_scan_track(struct smtpd_session *s, enum smtpd_outcome o, const char *reply);
void smtpd_scan_add_rcpt(struct smtpd_session *s, const char *rcpt);
/* Forgets the transaction's scan state (job, recipients); a job still in the pool is
 * disowned and freed when it comes back. */
void smtpd_scan_clear(struct smtpd_session *s);
/* True (and the session marked paused) when the pool has no room for more messages. */
bool smtpd_scan_should_pause(struct smtpd_session *s);
/* smtpd.c: the pool has room again: sessions that paused their input resume. */
void smtpd_unpause_sessions(struct smtpd *srv);

/* smtpd_ers.c: the email-reputation look-up of a transaction's client, started at MAIL;
 * smtpd_ers_ready is false (and smtpd_scan_message is called again once the answers are in or
 * the time is up) while it is in flight; smtpd_ers_fill gives its result to the scan job. */
void smtpd_ers_start(struct smtpd_session *s);
bool smtpd_ers_ready(struct smtpd_session *s);
void smtpd_ers_fill(struct smtpd_session *s, struct scan_job *j);

/* smtpd_relay.c */
void smtpd_relay_mail(struct smtpd_session *s);
void smtpd_relay_rcpt(struct smtpd_session *s);
void smtpd_relay_message(struct smtpd_session *s);
void smtpd_relay_quit(struct smtpd_session *s);
/* Resets the downstream transaction (if any), then writes reply (and closes if action is
 * SMTPD_ACT_CLOSE). */
void smtpd_relay_reset_then_reply(struct smtpd_session *s, const char *reply,
                                  enum smtpd_action action);
bool smtpd_relay_ready(const struct smtpd_session *s);

#endif
