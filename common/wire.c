/* wire: see wire.h. */
#include "wire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "frame.h"
#include "log.h"
#include "util.h"

static int s_text_ok(const char *s) { return s == NULL || strlen(s) <= WIRE_TEXT_MAX; }

/* Counts and lengths are checked after unpack: protobuf-c bounds nothing by itself. */
static int s_check(const envelope_t *e)
{
    switch (e->body_case) {
    case PORTCULLIS__ENVELOPE__BODY_CONFIG:
        /* Rules and areas are bounded here too, so an oversize snapshot is refused with an
         * answer (ConfigApplied ok=false from the compile) rather than dropped silently. */
        if (e->config->n_settings > WIRE_SETTINGS_MAX || e->config->n_rules > WIRE_RULES_MAX ||
            e->config->n_areas > WIRE_AREAS_MAX || e->config->n_wrs > WIRE_WRS_MAX ||
            e->config->n_spam_rules > WIRE_SPAM_RULES_MAX || e->config->n_updates > WIRE_UPDATES_MAX)
            return -1;
        for (size_t i = 0; i < e->config->n_settings; i++) {
            const Portcullis__Setting *s = e->config->settings[i];
            if (!s_text_ok(s->section) || !s_text_ok(s->name) || !s_text_ok(s->value))
                return -1;
        }
        return 0;
    case PORTCULLIS__ENVELOPE__BODY_HELLO:
        if (e->hello->n_patterns > WIRE_PATTERNS_MAX || !s_text_ok(e->hello->name) ||
            !s_text_ok(e->hello->software_version))
            return -1;
        return 0;
    case PORTCULLIS__ENVELOPE__BODY_HEALTH:
        return e->health->n_patterns > WIRE_PATTERNS_MAX || e->health->n_stores > WIRE_STORES_MAX ||
                       (e->health->stats != NULL &&
                        e->health->stats->n_scan_ms_buckets > WIRE_LATENCY_BUCKETS_MAX)
                   ? -1 : 0;
    case PORTCULLIS__ENVELOPE__BODY_SCAN_STATS:
        return e->scan_stats->n_scan_ms_buckets > WIRE_LATENCY_BUCKETS_MAX ? -1 : 0;
    case PORTCULLIS__ENVELOPE__BODY_ENROLL_REQUEST:
        return s_text_ok(e->enroll_request->name) && s_text_ok(e->enroll_request->token) ? 0 : -1;
    case PORTCULLIS__ENVELOPE__BODY_COMMAND: {
        const Portcullis__Command *c = e->command;
        if (c->n_recipients > WIRE_COMMAND_RCPT_MAX || !s_text_ok(c->kind) ||
            !s_text_ok(c->file_id) || !s_text_ok(c->store) || !s_text_ok(c->area) ||
            !s_text_ok(c->bucket) || !s_text_ok(c->sender) || !s_text_ok(c->cursor))
            return -1;
        for (size_t i = 0; i < c->n_recipients; i++)
            if (!s_text_ok(c->recipients[i]))
                return -1;
        return 0;
    }
    case PORTCULLIS__ENVELOPE__BODY_COMMAND_REPLY:
        return s_text_ok(e->command_reply->error) &&
                       (e->command_reply->detail == NULL ||
                        strlen(e->command_reply->detail) <= WIRE_DETAIL_MAX)
                   ? 0 : -1;
    case PORTCULLIS__ENVELOPE__BODY__NOT_SET:
        return -1;
    default:
        return 0;
    }
}

bool wire_is_enroll_request(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    uint64_t body = 0;
    size_t i = 1;

    if (len < 2 || len > WIRE_ENROL_MAX || b[0] != 0x0a) /* field 1, length-delimited */
        return false;
    for (unsigned shift = 0; i < len && shift < 14; shift += 7) { /* ≤ 2 bytes: < 16384 */
        body |= (uint64_t)(b[i] & 0x7f) << shift;
        if ((b[i++] & 0x80) == 0)
            return body == len - i;
    }
    return false;
}

int wire_peek_body(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    uint64_t body = 0;
    size_t i = 1;

    /* one length-delimited field (wire type 2) numbered 1..15: a one-byte tag */
    if (len < 2 || len > WIRE_MSG_MAX || (b[0] & 0x07) != 2 || (b[0] >> 3) == 0 || (b[0] & 0x80))
        return 0;
    for (unsigned shift = 0; i < len && shift < 35; shift += 7) {
        body |= (uint64_t)(b[i] & 0x7f) << shift;
        if ((b[i++] & 0x80) == 0)
            return body == len - i ? b[0] >> 3 : 0;
    }
    return 0;
}

envelope_t *wire_unpack(const void *buf, size_t len)
{
    envelope_t *e;

    if (len > WIRE_MSG_MAX)
        return NULL;
    e = portcullis__envelope__unpack(NULL, len, buf);
    if (e == NULL)
        return NULL;
    if (s_check(e) != 0) {
        portcullis__envelope__free_unpacked(e, NULL);
        return NULL;
    }
    return e;
}

void wire_free(envelope_t **envp)
{
    if (envp == NULL || *envp == NULL)
        return;
    portcullis__envelope__free_unpacked(*envp, NULL);
    *envp = NULL;
}

uint8_t *wire_pack(const envelope_t *env, size_t *len)
{
    size_t n = portcullis__envelope__get_packed_size(env);
    uint8_t *buf = xmalloc(n);

    portcullis__envelope__pack(env, buf);
    *len = n;
    return buf;
}

int wire_send_zmq(void *sock, const void *rid, size_t ridlen, const envelope_t *env)
{
    size_t len;
    uint8_t *buf = wire_pack(env, &len);
    int r = 0;

    if (rid != NULL && zmq_send(sock, rid, ridlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        r = -1;
    else if (zmq_send(sock, buf, len, ZMQ_DONTWAIT) < 0)
        r = -1;
    free(buf);
    return r;
}

int wire_send_fd(int fd, const envelope_t *env, int timeout_ms)
{
    size_t len, off = 0;
    uint8_t *payload = wire_pack(env, &len);
    uint8_t *buf = xmalloc(len + FRAME_HEADER_LEN);
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int r = 0;

    frame_header(buf, (uint32_t)len);
    memcpy(buf + FRAME_HEADER_LEN, payload, len);
    free(payload);
    len += FRAME_HEADER_LEN;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            uint64_t now = now_ms();
            if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0) {
                errno = ETIMEDOUT;
                r = -1;
                break;
            }
            continue;
        }
        r = -1;
        break;
    }
    free(buf);
    return r;
}

settings_t *wire_settings_from_snapshot(const Portcullis__ConfigSnapshot *snap, char *err,
                                        size_t errlen)
{
    settings_t *s = settings_new_defaults();

    for (size_t i = 0; i < snap->n_settings; i++) {
        const Portcullis__Setting *kv = snap->settings[i];
        if (settings_set(s, kv->section, kv->name, kv->value, err, errlen) != 0) {
            settings_free(&s);
            return NULL;
        }
    }
    settings_set_version(s, snap->version);
    return s;
}

const char *wire_body_name(const envelope_t *env)
{
    const ProtobufCFieldDescriptor *f;

    f = protobuf_c_message_descriptor_get_field(&portcullis__envelope__descriptor,
                                                (unsigned)env->body_case);
    return f != NULL ? f->name : "none";
}
