/* wire: protobuf Envelope helpers: size-checked unpack, pack to a buffer, send and receive on
 * ZeroMQ sockets and framed stream fds, and settings <-> ConfigSnapshot conversion. */
#ifndef PORTCULLIS_WIRE_H
#define PORTCULLIS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "portcullis.pb-c.h"
#include "settings.h"

typedef Portcullis__Envelope envelope_t;

#define WIRE_MSG_MAX (4u * 1024 * 1024) /* bytes: ZMQ_MAXMSGSIZE and unpack limit */
#define WIRE_ENROL_MAX 1024             /* bytes: an EnrollRequest or EnrollReply envelope */
#define WIRE_SETTINGS_MAX 4096          /* settings in one snapshot */
#define WIRE_PATTERNS_MAX 64            /* pattern versions in Hello/Health */
#define WIRE_RULES_MAX 1000             /* policy rules in one snapshot (POLICY_RULES_MAX) */
#define WIRE_AREAS_MAX 1000             /* areas in one snapshot */
#define WIRE_TEXT_MAX 4096              /* any string field */
#define WIRE_WRS_MAX 10000              /* web-reputation entries in one snapshot: with
                                         * WIRE_WRS_BYTES_MAX it keeps a snapshot under
                                         * WIRE_MSG_MAX beside the rules */
#define WIRE_SPAM_RULES_MAX 1000        /* anti-spam rules in one snapshot */
#define WIRE_UPDATES_MAX 8              /* component updates in one snapshot */
#define WIRE_STORES_MAX 4               /* store usage entries in Health */
#define WIRE_LATENCY_BUCKETS_MAX 64     /* scan latency buckets in ScanStats (14 today) */
#define WIRE_WRS_PATTERN_MAX 255        /* bytes of one web-reputation URL or domain */
#define WIRE_WRS_CATEGORY_MAX 63        /* bytes of one web-reputation category */
#define WIRE_COMMAND_RCPT_MAX 10000     /* recipients of a release Command (R5.4) */
#define WIRE_DETAIL_MAX (64u * 1024)    /* bytes of a CommandReply's detail JSON */

/* True when buf is exactly one Envelope field 1 (enroll_request) of at most WIRE_ENROL_MAX
 * bytes: the enrolment socket's check before anything is unpacked (R8.3). */
bool wire_is_enroll_request(const void *buf, size_t len);
/* NULL if too large, undecodable, or any count/length over its limit (logged at debug). */
envelope_t *wire_unpack(const void *buf, size_t len);
/* The body field number (PORTCULLIS__ENVELOPE__BODY_…) of a packed Envelope that is exactly
 * one such field, read from its first bytes without unpacking; 0 otherwise. Lets the cluster
 * loop hand a large ReportBatch to its ingest thread undecoded (R10.1). */
int wire_peek_body(const void *buf, size_t len);
void wire_free(envelope_t **envp);
/* Packs into a new buffer (caller frees). */
uint8_t *wire_pack(const envelope_t *env, size_t *len);

/* ZeroMQ: sends [routing id frame if rid != NULL] + packed envelope. 0 ok, -1 (errno). */
int wire_send_zmq(void *sock, const void *rid, size_t ridlen, const envelope_t *env);
/* Stream fd: writes a length-prefixed frame, waiting at most timeout_ms for the peer. */
int wire_send_fd(int fd, const envelope_t *env, int timeout_ms);

/* ConfigSnapshot → new settings_t (validated whole). NULL with err filled on any bad entry. */
settings_t *wire_settings_from_snapshot(const Portcullis__ConfigSnapshot *snap, char *err,
                                        size_t errlen);
/* Human name of the envelope's body, for logs. */
const char *wire_body_name(const envelope_t *env);

#endif
