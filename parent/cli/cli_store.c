/* cli_store: see cli_store.h. */
#include "cli/cli_store.h"

#include <stdio.h>
#include <time.h>

#define CLI_MB(b) ((double)(b) / 1048576.0)
#define CLI_FLAG_BYTES (1024ll << 20) /* a quota under 1 GB is flagged (R5.13) */

static void s_time(json_int_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0) {
        snprintf(out, n, "never");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cli_store_print_child(const json_t *health)
{
    const json_t *st;
    size_t i;

    json_array_foreach(json_object_get(health, "stores"), i, st) {
        json_int_t bytes = json_integer_value(json_object_get(st, "bytes"));
        json_int_t quota = json_integer_value(json_object_get(st, "quota_bytes"));
        char purge[32];

        s_time(json_integer_value(json_object_get(st, "last_purge_ms")), purge, sizeof purge);
        json_int_t files = json_integer_value(json_object_get(st, "files"));
        const char *kind = json_string_value(json_object_get(st, "kind"));

        printf("  %-10s %10.2f MB of %.2f MB (%.1f %%), %lld %s, last purge %s%s\n",
               kind != NULL ? kind : "?", CLI_MB(bytes), CLI_MB(quota),
               quota > 0 ? 100.0 * (double)bytes / (double)quota : 0.0, (long long)files,
               files == 1 ? "file" : "files", purge,
               quota > 0 && quota < CLI_FLAG_BYTES ? "  ! quota under 1 GB" : "");
    }
}

void cli_store_print_totals(const json_t *status)
{
    const json_t *tot = json_object_get(status, "store_totals"), *t;
    const json_t *ft = json_object_get(status, "totals");
    const char *kind;

    if (json_object_size(tot) == 0 && !json_is_object(ft))
        return;
    printf("\ncluster totals:\n");
    if (json_is_object(ft)) /* R7.5: the same figures as `status --json` "totals" */
        printf("  children   %lld up, %lld down, %lld pending; %lld msgs/min; relayed %lld, "
               "quarantined %lld, deleted %lld, tempfailed %lld, rejected %lld, viruses %lld\n",
               (long long)json_integer_value(json_object_get(ft, "children_up")),
               (long long)json_integer_value(json_object_get(ft, "children_down")),
               (long long)json_integer_value(json_object_get(ft, "children_pending")),
               (long long)json_integer_value(json_object_get(ft, "messages_per_minute")),
               (long long)json_integer_value(json_object_get(ft, "messages_relayed")),
               (long long)json_integer_value(json_object_get(ft, "messages_quarantined")),
               (long long)json_integer_value(json_object_get(ft, "messages_deleted")),
               (long long)json_integer_value(json_object_get(ft, "messages_tempfailed")),
               (long long)json_integer_value(json_object_get(ft, "messages_rejected")),
               (long long)json_integer_value(json_object_get(ft, "viruses_found")));
    json_object_foreach((json_t *)tot, kind, t) {
        json_int_t bytes = json_integer_value(json_object_get(t, "bytes"));
        json_int_t quota = json_integer_value(json_object_get(t, "quota_bytes"));
        json_int_t files = json_integer_value(json_object_get(t, "files"));
        json_int_t children = json_integer_value(json_object_get(t, "children"));

        printf("  %-10s %10.2f MB of %.2f MB (%.1f %%), %lld %s on %lld %s\n", kind,
               CLI_MB(bytes), CLI_MB(quota), quota > 0 ? 100.0 * (double)bytes / (double)quota : 0.0,
               (long long)files, files == 1 ? "file" : "files", (long long)children,
               children == 1 ? "child" : "children");
    }
}
