/* cli_log: the report commands of the `portcullis` CLI (R7.3): `log query` over the message
 * tracking log and `quarantine list` / `archive list` over the stored-message index. Options
 * are parsed here (bad input: exit 2 with the reason); the checks of times, limits and
 * cursors and the searches themselves are admin_log's, shared with the REST API. */
#include "cli/cli_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_log.h"
#include "util.h"

#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE 2

struct opts {
    struct admin_log_filter f;
    char since[ADMIN_LOG_TIME_LEN], until[ADMIN_LOG_TIME_LEN];
    bool stored;       /* quarantine/archive list: --area allowed, no --verdict/--action */
    bool search;       /* quarantine/archive search (R5.4): also --verdict, --subject, --rule, --state */
};

static int s_usage_err(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "portcullis: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return CLI_EXIT_USAGE;
}

/* --since / --until through admin_log_time (shared with the API). 0 ok, CLI_EXIT_USAGE or
 * CLI_EXIT_FAILED. */
static int s_time(PGconn *db, const char *opt, const char *text, char *out)
{
    char err[512];
    int rc = admin_log_time(db, opt, text, out, err, sizeof err);

    if (rc != 0)
        fprintf(stderr, "portcullis: %s\n", err);
    return rc == 0 ? 0 : rc > 0 ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
}

static int s_parse(PGconn *db, struct opts *o, int argc, char **argv)
{
    static const char *const names[] = { "since", "until", "sender", "recipient", "verdict",
                                         "action", "child", "limit", "after", "area",
                                         "category", "subject", "rule", "state" };
    const char *val[ARRAY_LEN(names)] = { NULL };
    int rc;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq;
        size_t k, len;
        if (strncmp(a, "--", 2) != 0)
            return s_usage_err("unexpected argument '%s'%s", a, "");
        a += 2;
        eq = strchr(a, '=');
        len = eq != NULL ? (size_t)(eq - a) : strlen(a);
        for (k = 0; k < ARRAY_LEN(names); k++)
            if (strlen(names[k]) == len && strncmp(a, names[k], len) == 0)
                break;
        /* --verdict and --action are the log's, --area the stored messages' */
        if (k == ARRAY_LEN(names) ||
            (o->stored && (k == 5 || k == 10 || (k == 4 && !o->search))) ||
            (!o->stored && k == 9) || (!o->search && k >= 11))
            return s_usage_err("unknown option '%s'%s", argv[i], "");
        if (eq != NULL)
            val[k] = eq + 1;
        else if (i + 1 < argc)
            val[k] = argv[++i];
        else
            return s_usage_err("option '--%s' needs a value%s", names[k], "");
        if (*val[k] == '\0')
            return s_usage_err("option '--%s' needs a value%s", names[k], "");
    }
    if (val[0] == NULL && !o->stored)
        val[0] = ADMIN_LOG_SINCE_DEFAULT; /* the log's default window: the last day */
    if (val[0] != NULL && (rc = s_time(db, "--since", val[0], o->since)) != 0)
        return rc;
    if (val[1] != NULL && (rc = s_time(db, "--until", val[1], o->until)) != 0)
        return rc;
    o->f.since = val[0] != NULL ? o->since : NULL;
    o->f.until = val[1] != NULL ? o->until : NULL;
    o->f.sender = val[2];
    o->f.recipient = val[3];
    o->f.verdict = val[4];
    o->f.action = val[5];
    o->f.child = val[6];
    o->f.area = val[9];
    o->f.category = val[10];
    o->f.subject = val[11];
    o->f.rule = val[12];
    o->f.state = val[13];
    /* --category searches the events (R1.6), which have no envelope or verdicts */
    for (size_t m = 2; m <= 5 && val[10] != NULL; m++)
        if (val[m] != NULL)
            return s_usage_err("--%s does not apply with --category (events have no %s)",
                               names[m], "sender, recipients, verdicts or action");
    if (val[7] != NULL && admin_log_limit_parse(val[7], &o->f.limit) != 0) {
        fprintf(stderr, "portcullis: --limit: a number from 1 to %d is required\n",
                ADMIN_LOG_LIMIT_MAX);
        return CLI_EXIT_USAGE;
    }
    if (val[8] != NULL && !admin_log_cursor_valid(val[8]))
        return s_usage_err("--after: '%.64s' is not a cursor (use the \"next\" value of the "
                           "previous page)%s", val[8], "");
    o->f.after = val[8];
    return 0;
}

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL && *v ? v : "-";
}

/* "first +N" of a JSON array of strings. */
static void s_list(const json_t *a, char *out, size_t len)
{
    size_t n = json_array_size(a);

    if (n == 0)
        snprintf(out, len, "-");
    else if (n == 1)
        snprintf(out, len, "%s", json_string_value(json_array_get(a, 0)));
    else
        snprintf(out, len, "%s +%zu", json_string_value(json_array_get(a, 0)), n - 1);
}

static void s_verdicts(const json_t *a, char *out, size_t len)
{
    size_t i, o = 0;
    json_t *v;

    out[0] = '\0';
    json_array_foreach(a, i, v) {
        if (o < len)
            o += (size_t)snprintf(out + o, len - o, "%s%s:%s", i ? "," : "", s_str(v, "engine"),
                                  s_str(v, "result"));
    }
    if (o == 0)
        snprintf(out, len, "-");
}

static int s_print(json_t *res, const char *key, bool json, bool stored)
{
    size_t i;
    json_t *r;
    char rcpt[96], verd[96];

    if (json) {
        char *s = json_dumps(res, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
        json_decref(res);
        return 0;
    }
    if (stored)
        printf("%8s %-24s %-12s %-18s %-32s %-8s %9s %-28s %-28s %s\n", "ID", "RECEIVED",
               "CHILD", "AREA", "FILE ID", "STATE", "SIZE", "SENDER", "RECIPIENTS", "SUBJECT");
    else
        printf("%-24s %-12s %-12s %-28s %-28s %-20s %s\n", "RECEIVED", "CHILD", "ACTION",
               "SENDER", "RECIPIENTS", "VERDICTS", "SUBJECT");
    json_array_foreach(json_object_get(res, key), i, r) {
        s_list(json_object_get(r, "recipients"), rcpt, sizeof rcpt);
        if (stored) {
            printf("%8" JSON_INTEGER_FORMAT " %-24s %-12s %-18s %-32s %-8s %9" JSON_INTEGER_FORMAT
                   " %-28s %-28s %.60s\n", json_integer_value(json_object_get(r, "id")),
                   s_str(r, "received_at"), s_str(r, "child"), s_str(r, "area"),
                   s_str(r, "file_id"), s_str(r, "state"),
                   json_integer_value(json_object_get(r, "size")),
                   s_str(r, "sender"), rcpt, s_str(r, "subject"));
        } else {
            s_verdicts(json_object_get(r, "verdicts"), verd, sizeof verd);
            printf("%-24s %-12s %-12s %-28s %-28s %-20s %.60s\n", s_str(r, "received_at"),
                   s_str(r, "child"), s_str(r, "action"), s_str(r, "sender"), rcpt, verd,
                   s_str(r, "subject"));
        }
    }
    if (json_is_string(json_object_get(res, "next")))
        printf("more: --after %s\n", json_string_value(json_object_get(res, "next")));
    json_decref(res);
    return 0;
}

/* `log query --category C`: the events, newest first. */
static int s_print_events(json_t *res, bool json)
{
    size_t i;
    json_t *e;

    if (json)
        return s_print(res, "events", true, false);
    printf("%-24s %-12s %-10s %-8s %s\n", "AT", "CHILD", "CATEGORY", "SEVERITY", "MESSAGE");
    json_array_foreach(json_object_get(res, "events"), i, e)
        printf("%-24s %-12s %-10s %-8s %s\n", s_str(e, "at"), s_str(e, "child"),
               s_str(e, "category"), s_str(e, "severity"), s_str(e, "message"));
    if (json_is_string(json_object_get(res, "next")))
        printf("more: --after %s\n", json_string_value(json_object_get(res, "next")));
    json_decref(res);
    return 0;
}

int cli_log_query(PGconn *db, bool json, int argc, char **argv)
{
    struct opts o = { .stored = false };
    char err[1024];
    json_t *res;
    int rc = s_parse(db, &o, argc, argv);

    if (rc != 0)
        return rc;
    if (o.f.category != NULL) {
        if ((res = admin_event_query(db, &o.f, err, sizeof err)) == NULL) {
            fprintf(stderr, "portcullis: %s\n", err);
            return CLI_EXIT_FAILED;
        }
        return s_print_events(res, json);
    }
    if ((res = admin_log_query(db, &o.f, err, sizeof err)) == NULL) {
        fprintf(stderr, "portcullis: %s\n", err);
        return CLI_EXIT_FAILED;
    }
    return s_print(res, "records", json, false);
}

int cli_stored_search(PGconn *db, bool json, const char *kind, int argc, char **argv)
{
    struct opts o = { .stored = true, .search = true };
    char err[1024];
    json_t *res;
    int rc = s_parse(db, &o, argc, argv);

    if (rc != 0)
        return rc;
    o.f.kind = kind;
    if ((res = admin_stored_list(db, &o.f, err, sizeof err)) == NULL) {
        fprintf(stderr, "portcullis: %s\n", err);
        return CLI_EXIT_FAILED;
    }
    return s_print(res, "messages", json, true);
}

int cli_stored_list(PGconn *db, bool json, const char *kind, int argc, char **argv)
{
    struct opts o = { .stored = true };
    char err[1024];
    json_t *res;
    int rc = s_parse(db, &o, argc, argv);

    if (rc != 0)
        return rc;
    o.f.kind = kind;
    if ((res = admin_stored_list(db, &o.f, err, sizeof err)) == NULL) {
        fprintf(stderr, "portcullis: %s\n", err);
        return CLI_EXIT_FAILED;
    }
    return s_print(res, "messages", json, true);
}
