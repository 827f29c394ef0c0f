/* ingest: see ingest.h. Tracking records, nearly all of a batch, go into message_log by COPY
 * (text format, every value escaped here: COPY takes data, never SQL) — twice the rows per
 * second of the multi-row INSERT (docs/BENCHMARKS.md). A batch some of whose records are
 * there already (sent again after a lost acknowledgement) cannot be COPYed, so it and the
 * other tables take one multi-row INSERT each: the rows travel as one jsonb parameter
 * expanded by jsonb_to_recordset, with ON CONFLICT DO NOTHING. Text from the child is cut to
 * INGEST_TEXT_MAX and made valid UTF-8 here, so that no record can make a batch fail for
 * ever. */
#include "cluster/ingest.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "log.h"
#include "util.h"

#define INGEST_DAYS_CACHED 64          /* partition days known to exist */
#define INGEST_EPOCH_MAX 64            /* characters of a spool epoch */
#define INGEST_MS_MIN 946684800000ull  /* 2000-01-01: received times outside [MIN, MAX) are */
#define INGEST_MS_MAX 7258118400000ull /* 2200-01-01   clamped, the same way on every resend */
/* R8.8: tracking rows are stored by received time only within this window around the
 * parent's clock; outside it, in the current day with the claimed time kept beside. */
#define INGEST_WINDOW_PAST_MS (30ull * 86400 * 1000)
#define INGEST_WINDOW_FUTURE_MS (3600ull * 1000)
#define INGEST_COPY_CHUNK (1024 * 1024) /* bytes handed to PQputCopyData at once */
#define INGEST_SLOW_MS 100             /* a batch slower than this is logged at info */

struct ingest {
    int64_t days[INGEST_DAYS_CACHED];
    size_t ndays, next;
};

ingest_t *ingest_new(void) { return xcalloc(1, sizeof(ingest_t)); }

void ingest_free(ingest_t **ip)
{
    if (ip == NULL)
        return;
    free(*ip);
    *ip = NULL;
}

/* --- values from the child ----------------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t s_utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        len = 2, cp = p[0] & 0x1F;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        len = 3, cp = p[0] & 0x0F;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

/* A growing byte buffer for the COPY data. */
struct buf {
    char *p;
    size_t len, cap;
};

static void s_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    while (b->len + more > b->cap)
        b->cap = b->cap != 0 ? b->cap * 2 : 64 * 1024;
    b->p = xrealloc(b->p, b->cap);
}

static void s_put(struct buf *b, const char *s, size_t n)
{
    s_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

enum esc {
    ESC_NONE,  /* as it is (JSON: jansson escapes) */
    ESC_COPY,  /* a COPY text-format field: \ \t \n \r escaped */
    ESC_ARRAY, /* inside a quoted array element: \ and " escaped */
};

/* Appends s made valid UTF-8 (invalid bytes become U+FFFD), at most max bytes of text cut at
 * a character boundary, escaped as esc says. */
static void s_put_clean(struct buf *b, const char *s, size_t max, enum esc esc)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t n = strlen((const char *)p), used = 0;

    s_reserve(b, (n < max ? n : max) * 2 + 8);
    for (size_t i = 0; i < n;) {
        size_t l = s_utf8_len(p + i, n - i);
        size_t w = l != 0 ? l : 3;
        if (used + w > max)
            break;
        s_reserve(b, 6);
        if (l == 0) {
            memcpy(b->p + b->len, "\xEF\xBF\xBD", 3);
            b->len += 3;
        } else if (l == 1 && esc == ESC_COPY &&
                   (p[i] == '\\' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
            b->p[b->len++] = '\\';
            b->p[b->len++] = p[i] == '\\' ? '\\' : p[i] == '\t' ? 't' : p[i] == '\n' ? 'n' : 'r';
        } else if (l == 1 && esc == ESC_ARRAY && (p[i] == '\\' || p[i] == '"')) {
            b->p[b->len++] = '\\';
            b->p[b->len++] = (char)p[i];
        } else {
            memcpy(b->p + b->len, p + i, l);
            b->len += l;
        }
        used += w;
        i += l != 0 ? l : 1;
    }
}

/* A JSON string of s, cleaned as s_put_clean does. */
static json_t *s_text(const char *s)
{
    struct buf b = { 0 };
    json_t *j;

    s_put_clean(&b, s, INGEST_TEXT_MAX, ESC_NONE);
    j = json_stringn(b.p != NULL ? b.p : "", b.len);
    free(b.p);
    return j;
}

static json_t *s_texts(char **v, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n && i < INGEST_LIST_MAX; i++)
        json_array_append_new(a, s_text(v[i]));
    return a;
}

static json_t *s_verdicts(Portcullis__Verdict **v, size_t n)
{
    json_t *a = json_array();

    for (size_t i = 0; i < n && i < INGEST_LIST_MAX; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "engine", s_text(v[i]->engine));
        json_object_set_new(o, "result", s_text(v[i]->result));
        json_object_set_new(o, "detail", s_text(v[i]->detail));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *s_int(uint64_t v, uint64_t max) { return json_integer((json_int_t)(v > max ? max : v)); }

static uint64_t s_clamp_ms(uint64_t ms)
{
    return ms < INGEST_MS_MIN ? INGEST_MS_MIN : ms >= INGEST_MS_MAX ? INGEST_MS_MAX - 1 : ms;
}

static bool s_epoch_ok(const char *e)
{
    size_t n = e != NULL ? strlen(e) : 0;

    if (n == 0 || n > INGEST_EPOCH_MAX)
        return false;
    return strspn(e, "0123456789abcdef") == n;
}

/* --- rows ----------------------------------------------------------------------------------- */

/* Where a tracking record is stored (R8.8): by its received time within the window around
 * the parent's clock, else at ingest time with the claimed time kept beside. */
struct trk {
    uint64_t seq;
    const Portcullis__TrackingRecord *t;
    uint64_t ms;         /* received_at */
    uint64_t claimed_ms; /* 0: received_at is the record's own */
};

static struct trk s_trk(uint64_t seq, const Portcullis__TrackingRecord *t, uint64_t now)
{
    struct trk k = { .seq = seq, .t = t, .ms = s_clamp_ms(t->received_ms) };

    if (k.ms + INGEST_WINDOW_PAST_MS < now || k.ms > now + INGEST_WINDOW_FUTURE_MS) {
        k.claimed_ms = k.ms;
        k.ms = now;
    }
    return k;
}

static json_t *s_tracking_row(const struct trk *k)
{
    const Portcullis__TrackingRecord *t = k->t;
    json_t *o = json_object();

    json_object_set_new(o, "seq", s_int(k->seq, INT64_MAX));
    if (k->claimed_ms != 0)
        json_object_set_new(o, "claimed_ms", s_int(k->claimed_ms, INT64_MAX));
    json_object_set_new(o, "received_ms", s_int(k->ms, INT64_MAX));
    json_object_set_new(o, "msg_id", s_text(t->msg_id));
    json_object_set_new(o, "message_id", s_text(t->message_id));
    json_object_set_new(o, "queue_id", s_text(t->queue_id));
    json_object_set_new(o, "sender", s_text(t->sender));
    json_object_set_new(o, "recipients", s_texts(t->recipients, t->n_recipients));
    json_object_set_new(o, "client_addr", s_text(t->client_addr));
    json_object_set_new(o, "client_name", s_text(t->client_name));
    json_object_set_new(o, "size", s_int(t->size, INT64_MAX));
    json_object_set_new(o, "verdicts", s_verdicts(t->verdicts, t->n_verdicts));
    json_object_set_new(o, "rule", s_text(t->rule));
    json_object_set_new(o, "action", s_text(t->action));
    json_object_set_new(o, "subject", s_text(t->subject));
    json_object_set_new(o, "reply", s_text(t->reply));
    json_object_set_new(o, "quarantine_area", s_text(t->quarantine_area));
    json_object_set_new(o, "archived_to", s_texts(t->archived_to, t->n_archived_to));
    json_object_set_new(o, "ms_receive", s_int(t->ms_receive, INT32_MAX));
    json_object_set_new(o, "ms_scan", s_int(t->ms_scan, INT32_MAX));
    json_object_set_new(o, "ms_deliver", s_int(t->ms_deliver, INT32_MAX));
    return o;
}

/* --- COPY rows ------------------------------------------------------------------------------ */

static void s_copy_text(struct buf *b, const char *s)
{
    s_put_clean(b, s, INGEST_TEXT_MAX, ESC_COPY);
    s_put(b, "\t", 1);
}

static void s_copy_int(struct buf *b, uint64_t v, uint64_t max)
{
    char n[24];

    s_put(b, n, (size_t)snprintf(n, sizeof n, "%" PRIu64 "\t", v > max ? max : v));
}

/* A text[] literal: every element quoted and escaped, then the whole escaped for COPY. */
static void s_copy_texts(struct buf *b, char **v, size_t n)
{
    struct buf a = { 0 };

    s_put(&a, "{", 1);
    for (size_t i = 0; i < n && i < INGEST_LIST_MAX; i++) {
        s_put(&a, i == 0 ? "\"" : ",\"", i == 0 ? 1 : 2);
        s_put_clean(&a, v[i], INGEST_TEXT_MAX, ESC_ARRAY);
        s_put(&a, "\"", 1);
    }
    s_put(&a, "}", 2); /* with its NUL: a string for s_put_clean */
    s_put_clean(b, a.p, SIZE_MAX, ESC_COPY);
    s_put(b, "\t", 1);
    free(a.p);
}

static void s_copy_verdicts(struct buf *b, Portcullis__Verdict **v, size_t n)
{
    json_t *j = s_verdicts(v, n);
    char *txt = json_dumps(j, JSON_COMPACT);

    s_put_clean(b, txt, SIZE_MAX, ESC_COPY);
    s_put(b, "\t", 1);
    free(txt);
    json_decref(j);
}

static void s_copy_time(struct buf *b, uint64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char ts[48];
    size_t n;

    gmtime_r(&t, &tm);
    n = strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(ts + n, sizeof ts - n, ".%03u+00\t", (unsigned)(ms % 1000));
    s_put(b, ts, n);
}

/* One line of s_sql_copy's columns; child and epoch are escaped by the caller once. */
static void s_copy_row(struct buf *b, const struct trk *k, const char *prefix, size_t plen)
{
    const Portcullis__TrackingRecord *t = k->t;

    s_copy_time(b, k->ms);
    s_put(b, prefix, plen); /* child_id, child, spool_epoch */
    s_copy_int(b, k->seq, INT64_MAX);
    s_copy_text(b, t->msg_id);
    s_copy_text(b, t->message_id);
    s_copy_text(b, t->queue_id);
    s_copy_text(b, t->sender);
    s_copy_texts(b, t->recipients, t->n_recipients);
    s_copy_text(b, t->client_addr);
    s_copy_text(b, t->client_name);
    s_copy_int(b, t->size, INT64_MAX);
    s_copy_verdicts(b, t->verdicts, t->n_verdicts);
    s_copy_text(b, t->rule);
    s_copy_text(b, t->action);
    s_copy_text(b, t->subject);
    s_copy_text(b, t->reply);
    s_copy_text(b, t->quarantine_area);
    s_copy_texts(b, t->archived_to, t->n_archived_to);
    s_copy_int(b, t->ms_receive, INT32_MAX);
    s_copy_int(b, t->ms_scan, INT32_MAX);
    s_copy_int(b, t->ms_deliver, INT32_MAX);
    b->p[b->len - 1] = '\n'; /* the last field ends the line */
}

static json_t *s_stored_row(uint64_t seq, const Portcullis__StoredMessage *m)
{
    json_t *o = json_object();

    json_object_set_new(o, "seq", s_int(seq, INT64_MAX));
    json_object_set_new(o, "received_ms", s_int(s_clamp_ms(m->received_ms), INT64_MAX));
    json_object_set_new(o, "area", s_text(m->area));
    json_object_set_new(o, "kind", s_text(m->kind));
    json_object_set_new(o, "file_id", s_text(m->file_id));
    json_object_set_new(o, "bucket", s_text(m->bucket));
    json_object_set_new(o, "size", s_int(m->size, INT64_MAX));
    json_object_set_new(o, "sender", s_text(m->sender));
    json_object_set_new(o, "recipients", s_texts(m->recipients, m->n_recipients));
    json_object_set_new(o, "subject", s_text(m->subject));
    json_object_set_new(o, "verdicts", s_verdicts(m->verdicts, m->n_verdicts));
    json_object_set_new(o, "rule", s_text(m->rule));
    json_object_set_new(o, "msg_id", s_text(m->msg_id));
    return o;
}

static json_t *s_event_row(uint64_t seq, const Portcullis__SystemEvent *e)
{
    static const char *const severities[] = { "info", "warning", "error" };
    const char *sev = "info";
    json_t *o = json_object();

    for (size_t i = 0; i < ARRAY_LEN(severities); i++)
        if (e->severity != NULL && strcmp(e->severity, severities[i]) == 0)
            sev = severities[i];
    json_object_set_new(o, "seq", s_int(seq, INT64_MAX));
    json_object_set_new(o, "at_ms", s_int(s_clamp_ms(e->at_ms), INT64_MAX));
    json_object_set_new(o, "category", e->category != NULL && *e->category ? s_text(e->category)
                                                                            : json_string("system"));
    json_object_set_new(o, "severity", json_string(sev));
    json_object_set_new(o, "message", s_text(e->message));
    if (e->notify) /* subject null: no mail */
        json_object_set_new(o, "subject", e->subject != NULL && *e->subject
                                              ? s_text(e->subject)
                                              : json_string("Portcullis system event"));
    return o;
}

static json_t *s_removed_row(uint64_t seq, const Portcullis__StoredRemoved *x)
{
    json_t *o = json_object();

    json_object_set_new(o, "seq", s_int(seq, INT64_MAX));
    json_object_set_new(o, "at_ms", s_int(s_clamp_ms(x->at_ms), INT64_MAX));
    json_object_set_new(o, "kind", s_text(x->kind));
    json_object_set_new(o, "file_id", s_text(x->file_id));
    json_object_set_new(o, "reason", s_text(x->reason != NULL && *x->reason ? x->reason
                                                                          : "removed"));
    return o;
}

/* --- SQL -------------------------------------------------------------------------------------- */

static const char s_sql_tracking[] =
    "INSERT INTO message_log (received_at, child_id, child, spool_epoch, seq, msg_id, message_id,"
    " queue_id, sender, recipients, client_addr, client_name, size, verdicts, rule, action,"
    " subject, reply, quarantine_area, archived_to, ms_receive, ms_scan, ms_deliver,"
    " claimed_received_at) "
    "SELECT 'epoch'::timestamptz + r.received_ms * interval '1 millisecond', $1::bigint, $2, $3,"
    " r.seq, r.msg_id, r.message_id, r.queue_id, r.sender,"
    " ARRAY(SELECT jsonb_array_elements_text(r.recipients)), r.client_addr, r.client_name,"
    " r.size, r.verdicts, r.rule, r.action, r.subject, r.reply, r.quarantine_area,"
    " ARRAY(SELECT jsonb_array_elements_text(r.archived_to)), r.ms_receive, r.ms_scan,"
    " r.ms_deliver, 'epoch'::timestamptz + r.claimed_ms * interval '1 millisecond' "
    "FROM jsonb_to_recordset($4::jsonb) AS r(seq bigint, received_ms bigint, msg_id text,"
    " message_id text, queue_id text, sender text, recipients jsonb, client_addr text,"
    " client_name text, size bigint, verdicts jsonb, rule text, action text, subject text,"
    " reply text, quarantine_area text, archived_to jsonb, ms_receive integer,"
    " ms_scan integer, ms_deliver integer, claimed_ms bigint) "
    /* a clamped row's received_at is the ingest time: a batch sent again finds it by seq */
    "WHERE r.claimed_ms IS NULL OR NOT EXISTS (SELECT 1 FROM message_log m"
    " WHERE m.child_id = $1::bigint AND m.spool_epoch = $3 AND m.seq = r.seq) "
    "ON CONFLICT DO NOTHING";

/* The COPY's columns, in s_copy_row's order. */
static const char s_sql_copy[] =
    "COPY message_log (received_at, child_id, child, spool_epoch, seq, msg_id, message_id,"
    " queue_id, sender, recipients, client_addr, client_name, size, verdicts, rule, action,"
    " subject, reply, quarantine_area, archived_to, ms_receive, ms_scan, ms_deliver) FROM STDIN";

/* Is any record of this seq and time range stored already (a batch sent again)? */
static const char s_sql_seen[] =
    "SELECT 1 FROM message_log WHERE child_id = $1::bigint AND spool_epoch = $2"
    " AND seq BETWEEN $3::bigint AND $4::bigint"
    " AND received_at BETWEEN 'epoch'::timestamptz + $5::bigint * interval '1 millisecond'"
    " AND 'epoch'::timestamptz + $6::bigint * interval '1 millisecond' LIMIT 1";

static const char s_sql_stored[] =
    "INSERT INTO stored_messages (child_id, child, spool_epoch, seq, area, kind, file_id, bucket,"
    " size, received_at, sender, recipients, subject, verdicts, rule, msg_id) "
    "SELECT $1::bigint, $2, $3, r.seq, r.area, r.kind, r.file_id, r.bucket, r.size,"
    " 'epoch'::timestamptz + r.received_ms * interval '1 millisecond', r.sender,"
    " ARRAY(SELECT jsonb_array_elements_text(r.recipients)), r.subject, r.verdicts, r.rule,"
    " r.msg_id "
    "FROM jsonb_to_recordset($4::jsonb) AS r(seq bigint, received_ms bigint, area text,"
    " kind text, file_id text, bucket text, size bigint, sender text, recipients jsonb,"
    " subject text, verdicts jsonb, rule text, msg_id text) "
    "ON CONFLICT DO NOTHING";

/* A stored file is gone (R5.5, R5.8): the removal is kept (it may come before its row: two
 * spools) and the index row marked; the first removal of a file wins. */
static const char s_sql_removed[] =
    "WITH r AS (SELECT DISTINCT ON (x.file_id) x.kind, x.file_id, x.reason,"
    "  'epoch'::timestamptz + x.at_ms * interval '1 millisecond' AS at"
    " FROM jsonb_to_recordset($2::jsonb) AS x(seq bigint, at_ms bigint, kind text,"
    "  file_id text, reason text) ORDER BY x.file_id, x.seq), "
    "t AS (INSERT INTO stored_removals (child_id, kind, file_id, removed_at, reason)"
    " SELECT $1::bigint, r.kind, r.file_id, r.at, r.reason FROM r ON CONFLICT DO NOTHING) "
    "UPDATE stored_messages s SET state = 'removed', removed_at = r.at, removed_reason = r.reason"
    " FROM r WHERE s.child_id = $1::bigint AND s.file_id = r.file_id AND s.removed_at IS NULL";

/* Rows of this batch whose removal came first. */
static const char s_sql_stored_removed[] =
    "UPDATE stored_messages s SET state = 'removed', removed_at = t.removed_at,"
    " removed_reason = t.reason FROM stored_removals t"
    " WHERE s.child_id = $1::bigint AND t.child_id = $1::bigint AND s.file_id = t.file_id"
    " AND s.removed_at IS NULL AND s.file_id IN"
    " (SELECT r.file_id FROM jsonb_to_recordset($2::jsonb) AS r(file_id text))";

/* An event the child flagged notify also queues a mail to the administrator — only when the
 * event row is new (a batch sent again inserts nothing, so mails nothing twice). */
static const char s_sql_events[] =
    "WITH ev AS (INSERT INTO events (at, category, severity, child_id, message, spool_epoch, seq) "
    " SELECT 'epoch'::timestamptz + r.at_ms * interval '1 millisecond', r.category, r.severity,"
    "  $1::bigint, r.message, $2, r.seq "
    " FROM jsonb_to_recordset($3::jsonb) AS r(seq bigint, at_ms bigint, category text,"
    "  severity text, message text) "
    " ON CONFLICT DO NOTHING RETURNING id, seq, message), "
    "n AS (INSERT INTO notifications (event_id, child_id, subject, body) "
    " SELECT ev.id, $1::bigint, left(r.subject, 200), left(ev.message, 65536) "
    " FROM ev JOIN jsonb_to_recordset($3::jsonb) AS r(seq bigint, subject text) USING (seq) "
    " WHERE r.subject IS NOT NULL RETURNING id) "
    "SELECT pg_notify('portcullis_notify', '') WHERE EXISTS (SELECT 1 FROM n)";

/* Makes sure the day partitions of the batch's tracking rows exist (outside the batch's
 * transaction: a partition is made once a day and stays). */
static int s_partitions(ingest_t *in, PGconn *db, const struct trk *k, size_t n, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int64_t day = (int64_t)(k[i].ms / 86400000);
        bool known = false;
        for (size_t d = 0; d < in->ndays && !known; d++)
            known = in->days[d] == day;
        if (known)
            continue;
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        char date[16];
        const char *p[] = { date };
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
        if (db_exec(db, "SELECT message_log_partition($1::date)", 1, p, err, errlen) != 0)
            return -1;
        in->days[in->next] = day;
        in->next = (in->next + 1) % INGEST_DAYS_CACHED;
        if (in->ndays < INGEST_DAYS_CACHED)
            in->ndays++;
    }
    return 0;
}

/* true when a record of the COPY rows (none clamped) is stored already, or on error (then
 * the INSERT path, which tolerates that, is taken). */
static bool s_seen(PGconn *db, const char *idtxt, const char *epoch, const struct trk *k,
                   size_t n)
{
    uint64_t s0 = UINT64_MAX, s1 = 0, t0 = UINT64_MAX, t1 = 0;
    char a[4][24], err[256];
    PGresult *res;
    bool seen;

    for (size_t i = 0; i < n; i++) {
        if (k[i].claimed_ms != 0)
            continue;
        s0 = k[i].seq < s0 ? k[i].seq : s0;
        s1 = k[i].seq > s1 ? k[i].seq : s1;
        t0 = k[i].ms < t0 ? k[i].ms : t0;
        t1 = k[i].ms > t1 ? k[i].ms : t1;
    }
    snprintf(a[0], sizeof a[0], "%" PRIu64, s0);
    snprintf(a[1], sizeof a[1], "%" PRIu64, s1);
    snprintf(a[2], sizeof a[2], "%" PRIu64, t0);
    snprintf(a[3], sizeof a[3], "%" PRIu64, t1);
    const char *p[] = { idtxt, epoch, a[0], a[1], a[2], a[3] };
    if ((res = db_query(db, s_sql_seen, 6, p, err, sizeof err)) == NULL)
        return true;
    seen = PQntuples(res) > 0;
    PQclear(res);
    return seen;
}

/* COPYs the rows not clamped. 0 done, 1 refused because a record is there already (unique
 * violation: the transaction is then aborted), -1 other error with err filled. */
static int s_copy(PGconn *db, const char *idtxt, const char *child, const char *epoch,
                  const struct trk *k, size_t n, char *err, size_t errlen)
{
    struct buf b = { 0 }, prefix = { 0 };
    PGresult *res;
    int rc = 0;

    s_put(&prefix, idtxt, strlen(idtxt));
    s_put(&prefix, "\t", 1);
    s_copy_text(&prefix, child);
    s_copy_text(&prefix, epoch);
    for (size_t i = 0; i < n; i++)
        if (k[i].claimed_ms == 0)
            s_copy_row(&b, &k[i], prefix.p, prefix.len);
    res = PQexec(db, s_sql_copy);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        snprintf(err, errlen, "%s", PQerrorMessage(db));
        rc = -1;
    }
    PQclear(res);
    for (size_t off = 0; rc == 0 && off < b.len; off += INGEST_COPY_CHUNK) {
        size_t part = b.len - off < INGEST_COPY_CHUNK ? b.len - off : INGEST_COPY_CHUNK;
        if (PQputCopyData(db, b.p + off, (int)part) != 1) {
            snprintf(err, errlen, "%s", PQerrorMessage(db));
            rc = -1;
        }
    }
    if (rc == 0 && PQputCopyEnd(db, NULL) != 1) {
        snprintf(err, errlen, "%s", PQerrorMessage(db));
        rc = -1;
    }
    while ((res = PQgetResult(db)) != NULL) { /* the COPY's result, then NULL */
        if (rc == 0 && PQresultStatus(res) != PGRES_COMMAND_OK) {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            rc = state != NULL && strcmp(state, "23505") == 0 ? 1 : -1;
            snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    free(b.p);
    free(prefix.p);
    return rc;
}

/* Runs sql with the parameters named and, last, the rows as one jsonb text. */
static int s_insert(PGconn *db, const char *sql, const char **p, int np, const json_t *rows,
                    char *err, size_t errlen)
{
    char *txt;
    int rc;

    if (json_array_size(rows) == 0)
        return 0;
    txt = json_dumps(rows, JSON_COMPACT);
    p[np] = txt;
    rc = db_exec(db, sql, np + 1, p, err, errlen);
    free(txt);
    return rc;
}

int ingest_batch(ingest_t *in, PGconn *db, int64_t child_id, const char *child_name,
                 const Portcullis__ReportBatch *b, uint64_t *up_to_seq, char *err,
                 size_t errlen)
{
    json_t *tracking = json_array(), *stored = json_array(), *events = json_array();
    json_t *removed = json_array();
    struct trk *trk = NULL;
    size_t ntrk = 0, ncopy = 0;
    char idtxt[32];
    uint64_t t0 = now_ms(), first = UINT64_MAX, last = 0, now = wall_ms();
    int rc = -1;

    *up_to_seq = 0;
    if (!s_epoch_ok(b->spool_epoch) || b->n_reports > INGEST_BATCH_MAX) {
        snprintf(err, errlen, "malformed report batch (epoch \"%.80s\", %zu records)",
                 b->spool_epoch != NULL ? b->spool_epoch : "", b->n_reports);
        goto out;
    }
    trk = xcalloc(b->n_reports + 1, sizeof *trk);
    for (size_t i = 0; i < b->n_reports; i++) {
        const Portcullis__Report *r = b->reports[i];
        if (r->seq == 0 || r->seq > INT64_MAX)
            continue;
        if (r->seq > last)
            last = r->seq;
        if (r->seq < first)
            first = r->seq;
        switch (r->body_case) {
        case PORTCULLIS__REPORT__BODY_TRACKING:
            trk[ntrk] = s_trk(r->seq, r->tracking, now);
            ncopy += trk[ntrk++].claimed_ms == 0;
            break;
        case PORTCULLIS__REPORT__BODY_STORED:
            if ((strcmp(r->stored->kind, "quarantine") != 0 &&
                 strcmp(r->stored->kind, "archive") != 0) || r->stored->file_id[0] == '\0') {
                log_warn("child %s seq=%" PRIu64 ": stored message with kind \"%.32s\" and file "
                         "id \"%.64s\" not indexed", child_name, r->seq, r->stored->kind,
                         r->stored->file_id);
                break;
            }
            json_array_append_new(stored, s_stored_row(r->seq, r->stored));
            break;
        case PORTCULLIS__REPORT__BODY_EVENT:
            json_array_append_new(events, s_event_row(r->seq, r->event));
            break;
        case PORTCULLIS__REPORT__BODY_REMOVED:
            if (r->removed->file_id == NULL || r->removed->file_id[0] == '\0') {
                log_warn("child %s seq=%" PRIu64 ": removal without a file id; skipped",
                         child_name, r->seq);
                break;
            }
            json_array_append_new(removed, s_removed_row(r->seq, r->removed));
            break;
        default:
            log_warn("child %s seq=%" PRIu64 ": report of unknown kind; skipped", child_name,
                     r->seq);
            break;
        }
    }
    if (last == 0) {
        rc = 0;
        goto out;
    }
    snprintf(idtxt, sizeof idtxt, "%" PRId64, child_id);
    if (s_partitions(in, db, trk, ntrk, err, errlen) != 0) {
        in->ndays = in->next = 0;
        goto out;
    }
    if (db_begin(db, err, errlen) != 0)
        goto out;
    /* Clamped rows always, and all rows of a batch sent again, take the INSERT path. */
    if (ncopy > 0 && s_seen(db, idtxt, b->spool_epoch, trk, ntrk))
        ncopy = 0;
    if (ncopy > 0) {
        int c = s_copy(db, idtxt, child_name, b->spool_epoch, trk, ntrk, err, errlen);
        if (c == 1) { /* raced with the same batch sent again */
            log_info("reports from child %s seq=%" PRIu64 "..%" PRIu64 " partly stored already; "
                     "inserted one by one", child_name, first, last);
            db_rollback(db);
            ncopy = 0;
            if (db_begin(db, err, errlen) != 0)
                goto out;
        } else if (c != 0) {
            db_rollback(db);
            in->ndays = in->next = 0;
            goto out;
        }
    }
    for (size_t i = 0; i < ntrk; i++)
        if (ncopy == 0 || trk[i].claimed_ms != 0)
            json_array_append_new(tracking, s_tracking_row(&trk[i]));
    const char *pt[] = { idtxt, child_name, b->spool_epoch, NULL };
    const char *pe[] = { idtxt, b->spool_epoch, NULL };
    const char *pr[] = { idtxt, NULL };
    if (s_insert(db, s_sql_tracking, pt, 3, tracking, err, errlen) != 0 ||
        s_insert(db, s_sql_stored, pt, 3, stored, err, errlen) != 0 ||
        s_insert(db, s_sql_events, pe, 2, events, err, errlen) != 0 ||
        s_insert(db, s_sql_stored_removed, pr, 1, stored, err, errlen) != 0 ||
        s_insert(db, s_sql_removed, pr, 1, removed, err, errlen) != 0 ||
        db_commit(db, err, errlen) != 0) {
        db_rollback(db);
        in->ndays = in->next = 0; /* a partition may have been dropped under us */
        goto out;
    }
    *up_to_seq = last;
    rc = 0;
    {
        uint64_t ms = now_ms() - t0;
        if (ms > INGEST_SLOW_MS)
            log_info("reports stored child=%s seq=%" PRIu64 "..%" PRIu64 " records=%zu ms=%" PRIu64,
                     child_name, first, last, b->n_reports, ms);
        else
            log_debug("reports stored child=%s seq=%" PRIu64 "..%" PRIu64 " records=%zu ms=%" PRIu64,
                      child_name, first, last, b->n_reports, ms);
    }
out:
    free(trk);
    json_decref(tracking);
    json_decref(stored);
    json_decref(events);
    json_decref(removed);
    return rc;
}
