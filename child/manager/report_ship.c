/* report_ship: see report_ship.h. The acknowledged position lives in memory only: after a
 * manager restart the oldest segment is sent again from its start and the parent, which
 * ignores records it already has (unique child, epoch, seq), acknowledges them at once. */
#include "manager/report_ship.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "spool.h"
#include "util.h"

struct report_ship {
    spool_reader_t *rd;
    report_ship_send_fn send;
    void *arg;
    uint64_t acked;          /* every seq <= this is committed on the parent */
    uint64_t inflight_to;    /* highest seq of the batch in flight; 0: none in flight */
    uint64_t sent_ms;
};

report_ship_t *report_ship_new(const char *spool_dir, report_ship_send_fn send, void *arg,
                               char *err, size_t errlen)
{
    report_ship_t *s = xcalloc(1, sizeof *s);

    s->rd = spool_reader_open(spool_dir, err, errlen);
    if (s->rd == NULL) {
        free(s);
        return NULL;
    }
    s->send = send;
    s->arg = arg;
    return s;
}

void report_ship_destroy(report_ship_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    spool_reader_close(&(*sp)->rd);
    free(*sp);
    *sp = NULL;
}

void report_ship_reset(report_ship_t *s)
{
    if (s != NULL)
        s->inflight_to = 0;
}

void report_ship_tick(report_ship_t *s)
{
    Portcullis__ReportBatch b = PORTCULLIS__REPORT_BATCH__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;
    Portcullis__Report **reps;
    size_t n;
    uint64_t now = now_ms();

    if (s == NULL || (s->inflight_to != 0 && now - s->sent_ms < REPORT_SHIP_RESEND_MS))
        return;
    if (s->inflight_to != 0)
        log_warn("reports up to seq=%" PRIu64 " not acknowledged in %d ms; sending again",
                 s->inflight_to, REPORT_SHIP_RESEND_MS);
    s->inflight_to = 0;
    if (spool_reader_read(s->rd, s->acked, REPORT_SHIP_BATCH_RECORDS, REPORT_SHIP_BATCH_BYTES,
                          &reps, &n) != 0 || n == 0)
        return;
    b.spool_epoch = (char *)spool_reader_epoch(s->rd);
    b.n_reports = n;
    b.reports = reps;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_REPORT_BATCH;
    env.report_batch = &b;
    if (s->send(s->arg, &env) == 0) {
        s->inflight_to = reps[n - 1]->seq;
        s->sent_ms = now;
        log_debug("reports sent seq=%" PRIu64 "..%" PRIu64 " records=%zu", reps[0]->seq,
                  reps[n - 1]->seq, n);
    }
    spool_reports_free(reps, n);
}

void report_ship_ack(report_ship_t *s, const Portcullis__ReportAck *a)
{
    if (s == NULL)
        return;
    if (a->spool_epoch == NULL || strcmp(a->spool_epoch, spool_reader_epoch(s->rd)) != 0) {
        log_warn("report ack for another spool epoch=%s; ignored",
                 a->spool_epoch != NULL ? a->spool_epoch : "");
        return;
    }
    if (a->up_to_seq > s->acked) {
        s->acked = a->up_to_seq;
        spool_reader_trim(s->rd, s->acked);
    }
    if (s->inflight_to != 0 && s->acked >= s->inflight_to)
        s->inflight_to = 0;
    if (s->inflight_to == 0)
        report_ship_tick(s); /* an ack means the link is up: keep the spool draining */
}

const char *report_ship_epoch(const report_ship_t *s)
{
    return s != NULL ? spool_reader_epoch(s->rd) : "";
}

uint64_t report_ship_next_seq(const report_ship_t *s) { return s != NULL ? s->acked + 1 : 0; }

void report_ship_depth(report_ship_t *s, uint64_t *records, uint64_t *bytes)
{
    *records = 0;
    *bytes = 0;
    if (s != NULL)
        spool_reader_depth(s->rd, records, bytes);
}
