/* smtpd: the scan service's ESMTP server on libevent. Accepts upstream sessions, runs each
 * through smtpd_proto and smtp_data, and relays every transaction through its own downstream
 * connection (smtp_client): a 250 for DATA only ever mirrors the downstream's acceptance. */
#ifndef PORTCULLIS_SMTPD_H
#define PORTCULLIS_SMTPD_H

#include <stddef.h>
#include <stdint.h>

#include "scan_latency.h"
#include "settings.h"

struct event_base;
struct scanpool;

typedef struct smtpd smtpd_t;

/* Totals since start (connections, messages, bytes) and current gauges. */
struct smtpd_stats {
    uint64_t connections;
    uint64_t messages_relayed;
    uint64_t messages_tempfailed;
    uint64_t messages_rejected;
    uint64_t bytes_relayed;
    uint64_t messages_quarantined;
    uint64_t messages_deleted;
    uint64_t viruses_found;
    uint64_t scan_exceptions;  /* messages with at least one scan exception */
    struct scan_latency scan_ms; /* every scanned message's ms_scan (its tracking record's) */
    uint32_t inflight; /* transactions between an accepted MAIL and their final reply */
    uint32_t sessions;
};

/* Binds listen ("host:port", SO_REUSEADDR) and resolves downstream. settings is borrowed (see
 * smtpd_set_settings). NULL on failure with err filled (not logged: start-up decides). */
smtpd_t *smtpd_new(struct event_base *base, const char *listen, const char *downstream,
                   const char *hostname, const settings_t *settings, char *err, size_t errlen);
/* Closes every session (in-flight transactions are dropped, never acknowledged). */
void smtpd_free(smtpd_t **srvp);

/* New settings for new transactions; the server keeps no pointer to the previous ones after
 * this returns, so the caller may free them. */
void smtpd_set_settings(smtpd_t *srv, const settings_t *settings);

/* Graceful stop: no more connections; idle sessions get 421 at once, sessions in a transaction
 * finish it and get 421 at their next command. done(arg) runs once no session remains. */
void smtpd_shutdown(smtpd_t *srv, void (*done)(void *arg), void *arg);

void smtpd_get_stats(const smtpd_t *srv, struct smtpd_stats *out);

/* Scans every received message in pool before acting on it (borrowed; set before the first
 * connection). The pool must be created with smtpd_scan_done and this server as its arg. */
void smtpd_set_pool(smtpd_t *srv, struct scanpool *pool);
/* Where messages past smtp.message_memory_max go (R8.5): unnamed 0600 files in dir. Without
 * one they stay in memory. 0 ok, -1 (errno) the directory cannot be opened. */
int smtpd_set_spill_dir(smtpd_t *srv, const char *dir);
/* Looks each transaction's client up in the email-reputation zones (borrowed; outlives srv's
 * sessions). Set before the first connection. */
struct ers;
void smtpd_set_ers(smtpd_t *srv, struct ers *ers);
/* Smart-protection client used while smart scan is in force (borrowed; R2). */
struct smartscan;
void smtpd_set_smartscan(smtpd_t *srv, struct smartscan *ss);
struct wrs_client;
/* The web-reputation rating service client (borrowed; NULL: block-lists only). */
void smtpd_set_wrs(smtpd_t *srv, struct wrs_client *wc);
struct scan_job;
void smtpd_scan_done(struct scan_job *job, void *arg);

#endif
