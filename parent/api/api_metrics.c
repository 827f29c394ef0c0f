/* api_metrics: GET /metrics in the Prometheus text exposition format 0.0.4 (issue 6 point 3;
 * R7.5, R5.12). Everything comes from admin_status — the children's last Health as the parent
 * stored it — so a scrape reads the database once and never waits on a child. Per-child series
 * carry child="name"; fleet totals are separate portcullis_fleet_* families, so that sum() over
 * a per-child family never counts a total twice. */
#include "api/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "scan_latency.h"
#include "util.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A note every counter family carries: they are the scan service's since it started. */
#define RESET_NOTE " Counted by the child's scan service since it started: resets to 0 when " \
                   "it restarts (Prometheus rate() handles that)."

static const char *const s_outcomes[] = { "relayed", "quarantined", "deleted", "tempfailed",
                                          "rejected" };

/* Counters of ScanStats beside the outcomes: health.stats key, family, help. */
static const struct {
    const char *key, *name, *help;
} s_counters[] = {
    { "viruses_found", "viruses_found_total", "Messages in which a virus was found." },
    { "scan_exceptions", "scan_exceptions_total",
      "Messages with at least one scan exception (oversize, encrypted archive, engine error)." },
    { "connections", "connections_total", "SMTP connections accepted." },
    { "bytes_relayed", "relayed_bytes_total", "Bytes of mail relayed onward." },
};

static const char *const s_states[] = { "up", "down", "pending" };

/* A label value as the format wants it: backslash, double quote and newline escaped. */
static void s_label(FILE *f, const char *v)
{
    if (v != NULL && strpbrk(v, "\\\"\n") == NULL) { /* child names: nothing to escape */
        fputs(v, f);
        return;
    }
    for (; v != NULL && *v != '\0'; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '"')
            fputs("\\\"", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void s_family(FILE *f, const char *name, const char *type, const char *help,
                     const char *note)
{
    fprintf(f, "# HELP %s %s%s\n# TYPE %s %s\n", name, help, note != NULL ? note : "", name,
            type);
}

/* name{child="…"[,extra]} value */
static void s_child_sample(FILE *f, const char *name, const char *child, const char *extra,
                           json_int_t v)
{
    fprintf(f, "%s{child=\"", name);
    s_label(f, child);
    fprintf(f, "\"%s} %lld\n", extra != NULL ? extra : "", (long long)v);
}

static const char *s_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

static json_int_t s_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const json_t *s_health(const json_t *ch)
{
    const json_t *h = json_object_get(ch, "health");
    return json_is_object(h) ? h : NULL;
}

/* The cluster version the child has not yet applied: a child that never applied one lags by
 * the whole cluster version. */
static json_int_t s_lag(const json_t *st, const json_t *ch)
{
    json_int_t cur = s_int(st, "config_version");
    const json_t *v = json_object_get(ch, "config_version");
    json_int_t lag = json_is_integer(v) ? cur - json_integer_value(v) : cur;

    return lag > 0 ? lag : 0;
}

static void s_child_state(FILE *f, const json_t *st, const json_t *children)
{
    const json_t *ch, *h;
    size_t i;

    s_family(f, "portcullis_child_up", "gauge",
             "1 while the child is in contact with the parent, 0 when down or pending approval.",
             NULL);
    json_array_foreach(children, i, ch)
        s_child_sample(f, "portcullis_child_up", s_str(ch, "name"), NULL,
                       strcmp(s_str(ch, "state"), "up") == 0);
    s_family(f, "portcullis_child_info", "gauge",
             "Always 1; the labels describe the child: state, enrolment, scan method, software "
             "and pattern versions, services' states (from its last health report).", NULL);
    json_array_foreach(children, i, ch) {
        h = s_health(ch);
        fputs("portcullis_child_info{child=\"", f);
        s_label(f, s_str(ch, "name"));
        static const char *const ck[] = { "state", "enrolment", "software_version" };
        for (size_t k = 0; k < ARRAY_LEN(ck); k++) {
            fprintf(f, "\",%s=\"", ck[k]);
            s_label(f, s_str(ch, ck[k]));
        }
        static const char *const hk[] = { "scan_service", "scan_method", "smart_scan_state",
                                          "ers_state", "mta_state", "update_state" };
        for (size_t k = 0; k < ARRAY_LEN(hk); k++) {
            fprintf(f, "\",%s=\"", hk[k]);
            s_label(f, s_str(h, hk[k]));
        }
        fputs("\",signature_version=\"", f);
        s_label(f, s_str(json_object_get(h, "stats"), "signature_version"));
        fputs("\"} 1\n", f);
    }
    s_family(f, "portcullis_child_last_seen_age_seconds", "gauge",
             "Seconds since the parent last heard from the child.", NULL);
    json_array_foreach(children, i, ch) {
        const json_t *age = json_object_get(ch, "last_heartbeat_age_s");
        if (!json_is_number(age))
            continue;
        fputs("portcullis_child_last_seen_age_seconds{child=\"", f);
        s_label(f, s_str(ch, "name"));
        fprintf(f, "\"} %.3f\n", json_number_value(age));
    }
    s_family(f, "portcullis_child_config_version", "gauge",
             "The configuration version the child has applied.", NULL);
    json_array_foreach(children, i, ch)
        if (json_is_integer(json_object_get(ch, "config_version")))
            s_child_sample(f, "portcullis_child_config_version", s_str(ch, "name"), NULL,
                           s_int(ch, "config_version"));
    s_family(f, "portcullis_child_config_version_lag", "gauge",
             "Cluster configuration version minus the child's applied version (0 = current).",
             NULL);
    json_array_foreach(children, i, ch)
        if (strcmp(s_str(ch, "state"), "pending") != 0)
            s_child_sample(f, "portcullis_child_config_version_lag", s_str(ch, "name"), NULL,
                           s_lag(st, ch));
}

/* Per-child families read from one health field (in stats: of the scan service's ScanStats,
 * whose counters carry the reset note). */
static void s_health_family(FILE *f, const json_t *children, const char *name, const char *type,
                            const char *help, const char *key, bool in_stats)
{
    const json_t *ch, *h;
    size_t i;

    s_family(f, name, type, help, in_stats && strcmp(type, "counter") == 0 ? RESET_NOTE : NULL);
    json_array_foreach(children, i, ch) {
        if ((h = s_health(ch)) == NULL)
            continue;
        if (in_stats)
            h = json_object_get(h, "stats");
        if (!json_is_object(h))
            continue;
        s_child_sample(f, name, s_str(ch, "name"), NULL, s_int(h, key));
    }
}

static void s_messages(FILE *f, const json_t *children)
{
    const json_t *ch, *stats;
    char key[64], extra[64];
    size_t i;

    s_family(f, "portcullis_messages_total", "counter",
             "Messages by outcome: relayed (delivered onward), quarantined, deleted, "
             "tempfailed (4xx, the upstream keeps it), rejected (5xx).", RESET_NOTE);
    json_array_foreach(children, i, ch) {
        stats = json_object_get(s_health(ch), "stats");
        if (!json_is_object(stats))
            continue;
        for (size_t k = 0; k < ARRAY_LEN(s_outcomes); k++) {
            snprintf(key, sizeof key, "messages_%s", s_outcomes[k]);
            snprintf(extra, sizeof extra, ",outcome=\"%s\"", s_outcomes[k]);
            s_child_sample(f, "portcullis_messages_total", s_str(ch, "name"), extra,
                           s_int(stats, key));
        }
    }
    for (size_t k = 0; k < ARRAY_LEN(s_counters); k++) {
        char name[96];
        snprintf(name, sizeof name, "portcullis_%s", s_counters[k].name);
        s_health_family(f, children, name, "counter", s_counters[k].help, s_counters[k].key,
                        true);
    }
}

/* One child's histogram as cumulative buckets; false when its Health carries none. */
/* One histogram over SCAN_LATENCY_BOUNDS_MS, made cumulative. */
struct hist {
    json_int_t cum[SCAN_LATENCY_NBUCKETS]; /* [SCAN_LATENCY_NBOUNDS] is +Inf */
    json_int_t sum_ms;
};

static bool s_hist_read(const json_t *ch, struct hist *hs)
{
    const json_t *sm = json_object_get(json_object_get(s_health(ch), "stats"), "scan_ms");
    const json_t *b = json_object_get(sm, "buckets");
    json_int_t acc = 0;

    if (!json_is_array(b) || json_array_size(b) != SCAN_LATENCY_NBUCKETS)
        return false;
    for (size_t i = 0; i < SCAN_LATENCY_NBUCKETS; i++) {
        acc += json_integer_value(json_array_get(b, i));
        hs->cum[i] = acc;
    }
    hs->sum_ms = s_int(sm, "sum_ms");
    return true;
}

/* The buckets' upper bounds in seconds, as the le labels print them (made once). */
static char s_le[SCAN_LATENCY_NBOUNDS][24];
static pthread_once_t s_le_once = PTHREAD_ONCE_INIT;

static void s_le_init(void)
{
    for (size_t i = 0; i < SCAN_LATENCY_NBOUNDS; i++)
        snprintf(s_le[i], sizeof s_le[i], "%g", (double)SCAN_LATENCY_BOUNDS_MS[i] / 1000.0);
}

static void s_hist_print(FILE *f, const char *name, const char *child, const struct hist *hs)
{
    const size_t inf = SCAN_LATENCY_NBOUNDS;

    for (size_t i = 0; i <= inf; i++) {
        fprintf(f, "%s_bucket{", name);
        if (child != NULL) {
            fputs("child=\"", f);
            s_label(f, child);
            fputs("\",", f);
        }
        if (i < inf)
            fprintf(f, "le=\"%s\"} %lld\n", s_le[i], (long long)hs->cum[i]);
        else
            fprintf(f, "le=\"+Inf\"} %lld\n", (long long)hs->cum[i]);
    }
    /* _count is the +Inf bucket by definition: both come from the same per-bucket counts */
    if (child != NULL) {
        fprintf(f, "%s_sum{child=\"", name);
        s_label(f, child);
        fprintf(f, "\"} %.3f\n%s_count{child=\"", (double)hs->sum_ms / 1000.0, name);
        s_label(f, child);
        fprintf(f, "\"} %lld\n", (long long)hs->cum[inf]);
    } else {
        fprintf(f, "%s_sum %.3f\n%s_count %lld\n", name, (double)hs->sum_ms / 1000.0, name,
                (long long)hs->cum[inf]);
    }
}

static void s_latency(FILE *f, const json_t *children)
{
    struct hist hs, fleet = { .sum_ms = 0 };
    const json_t *ch;
    size_t i;

    s_family(f, "portcullis_scan_latency_seconds", "histogram",
             "Time from the end of a message's data to its verdict (the tracking record's scan "
             "time).", RESET_NOTE);
    json_array_foreach(children, i, ch) {
        if (!s_hist_read(ch, &hs))
            continue;
        s_hist_print(f, "portcullis_scan_latency_seconds", s_str(ch, "name"), &hs);
        for (size_t k = 0; k < SCAN_LATENCY_NBUCKETS; k++)
            fleet.cum[k] += hs.cum[k];
        fleet.sum_ms += hs.sum_ms;
    }
    s_family(f, "portcullis_fleet_scan_latency_seconds", "histogram",
             "The scan latency histogram summed over every child.", RESET_NOTE);
    s_hist_print(f, "portcullis_fleet_scan_latency_seconds", NULL, &fleet);
}

static void s_stores(FILE *f, const json_t *st, const json_t *children)
{
    static const struct {
        const char *field, *name, *help;
    } fam[] = {
        { "bytes", "store_bytes", "Bytes of stored mail (R5.12)." },
        { "quota_bytes", "store_quota_bytes", "The store's disk quota in bytes (R5.7)." },
        { "files", "store_files", "Messages in the store." },
    };
    const json_t *ch, *u, *t;
    const char *kind;
    char name[64];
    size_t i, k;

    for (size_t m = 0; m < ARRAY_LEN(fam); m++) {
        snprintf(name, sizeof name, "portcullis_%s", fam[m].name);
        s_family(f, name, "gauge", fam[m].help, " By child and kind (quarantine, archive).");
        json_array_foreach(children, i, ch) {
            json_array_foreach(json_object_get(s_health(ch), "stores"), k, u) {
                fprintf(f, "%s{child=\"", name);
                s_label(f, s_str(ch, "name"));
                fputs("\",kind=\"", f);
                s_label(f, s_str(u, "kind"));
                fprintf(f, "\"} %lld\n", (long long)s_int(u, fam[m].field));
            }
        }
        snprintf(name, sizeof name, "portcullis_fleet_%s", fam[m].name);
        s_family(f, name, "gauge", fam[m].help, " Summed over the children, by kind.");
        json_object_foreach((json_t *)json_object_get(st, "store_totals"), kind, t) {
            fprintf(f, "%s{kind=\"", name);
            s_label(f, kind);
            fprintf(f, "\"} %lld\n", (long long)s_int(t, fam[m].field));
        }
    }
}

static void s_fleet(FILE *f, const json_t *st)
{
    const json_t *tot = json_object_get(st, "totals");
    char key[64];

    s_family(f, "portcullis_config_version", "gauge",
             "The cluster's current configuration version.", NULL);
    fprintf(f, "portcullis_config_version %lld\n", (long long)s_int(st, "config_version"));
    s_family(f, "portcullis_fleet_children", "gauge", "Children by state.", NULL);
    for (size_t k = 0; k < ARRAY_LEN(s_states); k++) {
        snprintf(key, sizeof key, "children_%s", s_states[k]);
        fprintf(f, "portcullis_fleet_children{state=\"%s\"} %lld\n", s_states[k],
                (long long)s_int(tot, key));
    }
    s_family(f, "portcullis_fleet_messages_per_minute", "gauge",
             "Messages in the last minute, summed over the children.", NULL);
    fprintf(f, "portcullis_fleet_messages_per_minute %lld\n",
            (long long)s_int(tot, "messages_per_minute"));
    s_family(f, "portcullis_fleet_messages_total", "counter",
             "Messages by outcome, summed over the children.", RESET_NOTE);
    for (size_t k = 0; k < ARRAY_LEN(s_outcomes); k++) {
        snprintf(key, sizeof key, "messages_%s", s_outcomes[k]);
        fprintf(f, "portcullis_fleet_messages_total{outcome=\"%s\"} %lld\n", s_outcomes[k],
                (long long)s_int(tot, key));
    }
    for (size_t k = 0; k < ARRAY_LEN(s_counters); k++) {
        fprintf(f, "# HELP portcullis_fleet_%s %s Summed over the children.%s\n"
                   "# TYPE portcullis_fleet_%s counter\nportcullis_fleet_%s %lld\n",
                s_counters[k].name, s_counters[k].help, RESET_NOTE, s_counters[k].name,
                s_counters[k].name, (long long)s_int(tot, s_counters[k].key));
    }
    s_family(f, "portcullis_fleet_spool_records", "gauge",
             "Reports spooled on the children, not yet acknowledged by the parent (R7.3).", NULL);
    fprintf(f, "portcullis_fleet_spool_records %lld\n", (long long)s_int(tot, "spool_records"));
    s_family(f, "portcullis_fleet_spool_bytes", "gauge", "Bytes of those spooled reports.",
             NULL);
    fprintf(f, "portcullis_fleet_spool_bytes %lld\n", (long long)s_int(tot, "spool_bytes"));
}

static void s_metrics(struct api_req *rq, struct api_resp *rs)
{
    char err[API_ERROR_MAX];
    json_t *st = admin_status(rq->db, NULL, err, sizeof err); /* all, whole Health */
    const json_t *children;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (st == NULL) {
        api_fail_admin(rs, err);
        return;
    }
    if ((f = open_memstream(&buf, &len)) == NULL) {
        json_decref(st);
        api_fail(rs, 500, "out of memory");
        return;
    }
    __fsetlocking(f, FSETLOCKING_BYCALLER);
    pthread_once(&s_le_once, s_le_init); /* this thread's alone: no lock per character */
    children = json_object_get(st, "children");
    s_fleet(f, st);
    s_child_state(f, st, children);
    s_health_family(f, children, "portcullis_child_messages_per_minute", "gauge",
                    "Messages the child handled in the last minute.", "messages_per_minute",
                    false);
    s_health_family(f, children, "portcullis_child_uptime_seconds", "gauge",
                    "Seconds since the child's manager started.", "uptime_s", false);
    s_health_family(f, children, "portcullis_child_scan_restarts_total", "counter",
                    "Restarts of the child's scan service by its manager. Counted since the "
                    "manager started: resets to 0 when it restarts.", "scan_restarts", false);
    s_health_family(f, children, "portcullis_spool_records", "gauge",
                    "Reports spooled on the child, not yet acknowledged by the parent (R7.3).",
                    "spool_records", false);
    s_health_family(f, children, "portcullis_spool_bytes", "gauge",
                    "Bytes of the child's spooled reports.", "spool_bytes", false);
    s_health_family(f, children, "portcullis_inflight_messages", "gauge",
                    "Transactions between an accepted MAIL and their final reply.", "inflight",
                    true);
    s_messages(f, children);
    s_latency(f, children);
    s_stores(f, st, children);
    if (fclose(f) != 0) {
        free(buf);
        json_decref(st);
        api_fail(rs, 500, "out of memory");
        return;
    }
    json_decref(st);
    rs->status = 200;
    rs->data = (uint8_t *)buf;
    rs->len = len;
    rs->content_type = METRICS_CONTENT_TYPE;
}

static const struct api_route s_routes[] = {
    { "GET", "/metrics", API_ROLE_VIEWER, NULL, s_metrics,
      "Prometheus metrics (text format 0.0.4): fleet totals and per-child series" },
};
const struct api_route_table api_table_metrics = { s_routes, ARRAY_LEN(s_routes) };
