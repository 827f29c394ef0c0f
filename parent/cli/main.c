/* portcullis: the administrator's command line. It works on the parent's database through
 * parent/admin (the same operations the daemon and the API use); the parent notices changes
 * through LISTEN/NOTIFY. Exit status: 0 done, 1 failed, 2 usage or invalid input. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/admin_command.h"
#include "cli/cli_common.h"
#include "cli/cli_log.h"
#include "cli/cli_store.h"
#include "cli/cmd_policy.h"
#include "cli/cmd_quarantine.h"
#include "cli/cmd_sps.h"
#include "cli/cmd_wrs.h"
#include "cli/cmd_update.h"
#include "cli/cmd_spam.h"
#include "cli/cmd_mta.h"
#include "cli/cmd_notify.h"
#include "cli/cmd_user.h"
#include "db/db.h"
#include "keys.h"
#include "log.h"
#include "parent_conf.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

struct cli {
    conf_t *conf;
    PGconn *db;
    bool json;
};

static void s_usage(FILE *f)
{
    fprintf(f,
        "usage: portcullis [-c parent.conf] COMMAND …\n"
        "  status [--json]                      every child: state, last heartbeat, config version\n"
        "  settings get [SECTION.NAME] [--json] settings with value, default and range\n"
        "  settings set SECTION.NAME VALUE      change a setting (new configuration version)\n"
        "  child list [--json]                  children and their enrolment\n"
        "  child enroll-token NAME              one-time token for a new child's child.conf\n"
        "  child approve NAME --fingerprint F   let a pending child in (F: its key's\n"
        "                                       fingerprint, from `child list`, compared\n"
        "                                       with the child's log)\n"
        "  child remove NAME                    forget a child and its key\n"
        "  child health NAME                    the child's whole last health report (JSON)\n"
        "  child flush NAME [--json]            flush the child's upstream MTA queue now (R7.4)\n"
        "  child reload NAME [--json]           the child's scan service reloads its signatures\n"
        "  child purge NAME [--json]            quota check + purge and retention purge now\n"
        "  child apply-mta NAME [--json]        apply the mta.* settings now (needs mta.apply)\n"
        "                                       each waits for the child's answer (exit 1 if it\n"
        "                                       failed, is down or did not answer in time)\n"
        "  log query [--since T] [--until T] [--sender S] [--recipient R] [--verdict [ENGINE:]V]\n"
        "            [--action A] [--child NAME] [--limit N] [--after CURSOR] [--json]\n"
        "                                       message tracking, newest first (default: last 24 h)\n"
        "  log query --category C [--since T] [--until T] [--child NAME] [--limit N] [--after CURSOR]\n"
        "            [--json]                   events: C = system, cluster, … or all (R1.6)\n"
        "  quarantine list [--area A] [--child C] [--sender S] [--recipient R] [--since T]\n"
        "            [--until T] [--limit N] [--after CURSOR] [--json]   quarantined messages\n"
        "  archive list [same options]          archived messages\n"
        "  T: ISO-8601 (2026-11-23T19:00:00Z) or a time ago (45s, 30m, 1h, 2d, 1w)\n");
    cmd_quarantine_usage(f);
    cmd_policy_usage(f);
    cmd_sps_usage(f);
    cmd_wrs_usage(f);
    cmd_update_usage(f);
    cmd_spam_usage(f);
    cmd_mta_usage(f);
    cmd_notify_usage(f);
    cmd_user_usage(f);
    fprintf(f,
        "configuration: -c FILE, or $" PARENT_CONF_ENV ", or " PARENT_CONF_DEFAULT "\n");
}

static int s_fail(const char *err)
{
    fprintf(stderr, "portcullis: %s\n", err);
    return EXIT_FAILED;
}

static void s_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
}

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "-";
}

static int cmd_status(struct cli *c)
{
    char err[1024];
    /* every child, each with the summary of its Health */
    json_t *st = admin_status(c->db, &(struct admin_status_query){ 0 }, err, sizeof err), *ch;
    size_t i;

    if (st == NULL)
        return s_fail(err);
    if (c->json) {
        s_print_json(st);
        json_decref(st);
        return 0;
    }
    printf("configuration version %lld\n\n", (long long)json_integer_value(json_object_get(st, "config_version")));
    printf("%-20s %-8s %-16s %-24s %-10s %-8s %-12s %s\n", "CHILD", "STATE", "ADDRESS",
           "LAST HEARTBEAT", "CONFIG", "SCAN", "METHOD", "MSGS/MIN");
    json_array_foreach(json_object_get(st, "children"), i, ch) {
        const json_t *h = json_object_get(ch, "health");
        const json_t *cv = json_object_get(ch, "config_version");
        char ver[48] = "-", mpm[16] = "-";
        if (json_is_integer(cv))
            snprintf(ver, sizeof ver, "%lld%s", (long long)json_integer_value(cv),
                     json_is_true(json_object_get(ch, "config_current")) ? "" : " (behind)");
        if (json_is_object(h))
            snprintf(mpm, sizeof mpm, "%lld",
                     (long long)json_integer_value(json_object_get(h, "messages_per_minute")));
        printf("%-20s %-8s %-16s %-24s %-10s %-8s %-12s %s\n", s_str(ch, "name"),
               s_str(ch, "state"), s_str(ch, "address"), s_str(ch, "last_heartbeat"), ver,
               json_is_object(h) ? s_str(h, "scan_service") : "-",
               json_is_object(h) ? s_str(h, "scan_method") : "-", mpm);
        if (strcmp(s_str(ch, "state"), "pending") == 0)
            printf("  ? waiting for approval, key fingerprint %s: `portcullis child approve %s "
                   "--fingerprint …` once it matches the child's log\n",
                   s_str(ch, "key_fingerprint"), s_str(ch, "name"));
        if (json_is_string(json_object_get(ch, "config_error")))
            printf("  ! configuration refused: %s\n", s_str(ch, "config_error"));
        if (json_is_object(h) && json_object_size(json_object_get(h, "patterns")) > 0) {
            const char *comp;
            json_t *pv;
            printf("  patterns:");
            json_object_foreach(json_object_get(h, "patterns"), comp, pv)
                printf(" %s=%s", comp, json_string_value(pv) ? json_string_value(pv) : "?");
            printf("\n");
        }
        if (json_is_object(h) && json_is_string(json_object_get(h, "update_state")) &&
            strcmp(s_str(h, "update_state"), "ok") != 0 && s_str(h, "update_state")[0] != '\0')
            printf("  ! component update: %s\n", s_str(h, "update_state"));
        /* R4.3: only a failure needs the administrator's eye ("ok", "off" say nothing new). */
        if (json_is_object(h) && json_is_string(json_object_get(h, "mta_state")) &&
            strcmp(s_str(h, "mta_state"), "ok") != 0 && strcmp(s_str(h, "mta_state"), "off") != 0 &&
            strcmp(s_str(h, "mta_state"), "") != 0)
            printf("  ! MTA settings: %s\n", s_str(h, "mta_state"));
        /* R8.4: a child's own switch away from smart scan, beside the fleet's setting */
        if (json_is_object(h) && strcmp(s_str(h, "scan_method"), "conventional") == 0 &&
            json_is_string(json_object_get(h, "smart_scan_state")) &&
            strcmp(s_str(h, "smart_scan_state"), "off") != 0)
            printf("  ! switched to conventional scan by itself (smart-protection server %s); "
                   "`portcullis child reload %s` resumes smart scan\n",
                   s_str(h, "smart_scan_state"), s_str(ch, "name"));
        if (json_is_object(h))
            cli_store_print_child(h);
    }
    cli_store_print_totals(st);
    json_decref(st);
    return 0;
}

static int cmd_settings_get(struct cli *c, const char *key)
{
    char err[1024];
    json_t *all = admin_settings_describe(c->db, key, err, sizeof err), *s;
    size_t i;

    if (all == NULL) {
        fprintf(stderr, "portcullis: %s\n", err);
        return key != NULL && strstr(err, "unknown setting") ? EXIT_USAGE : EXIT_FAILED;
    }
    if (c->json) {
        s_print_json(all);
        json_decref(all);
        return 0;
    }
    json_array_foreach(json_object_get(all, "settings"), i, s) {
        char *v = json_dumps(json_object_get(s, "value"), JSON_ENCODE_ANY);
        char *d = json_dumps(json_object_get(s, "default"), JSON_ENCODE_ANY);
        printf("%s = %s", s_str(s, "key"), v);
        if (json_object_get(s, "min") != NULL)
            printf("    # %s, default %s, %lld..%lld %s", s_str(s, "type"), d,
                   (long long)json_integer_value(json_object_get(s, "min")),
                   (long long)json_integer_value(json_object_get(s, "max")), s_str(s, "unit"));
        else
            printf("    # %s, default %s", s_str(s, "type"), d);
        printf("\n");
        if (key != NULL)
            printf("    %s\n", s_str(s, "description"));
        free(v);
        free(d);
    }
    json_decref(all);
    return 0;
}

static int cmd_settings_set(struct cli *c, const char *key, const char *value)
{
    char err[1024];
    uint64_t version;

    if (admin_settings_set(c->db, key, value, &version, err, sizeof err) != 0) {
        fprintf(stderr, "portcullis: %s\n", err);
        return strncmp(err, "database", 8) == 0 ? EXIT_FAILED : EXIT_USAGE;
    }
    printf("%s set; configuration version %llu is being pushed to the children\n", key,
           (unsigned long long)version);
    return 0;
}

static int cmd_enroll_token(struct cli *c, const char *name)
{
    char err[1024];
    json_t *o = admin_enroll_offer(c->db, c->conf, name, err, sizeof err);

    if (o == NULL)
        return s_fail(err);
    printf("# child.conf lines for %s: the token is valid for %d hours and works once\n", name,
           (int)json_integer_value(json_object_get(o, "expires_hours")));
    printf("name = %s\n", name);
    printf("parent_cluster = %s\n", s_str(o, "parent_cluster"));
    printf("parent_enrol = %s\n", s_str(o, "parent_enrol"));
    printf("parent_public_key = %s\n", s_str(o, "parent_public_key"));
    printf("enroll_token = %s\n", s_str(o, "token"));
    json_decref(o);
    return 0;
}

/* child flush|reload|purge|apply-mta NAME (R7.4): one command, its answer. */
static int cmd_child_command(struct cli *c, const char *verb, const char *name)
{
    static const struct { const char *verb, *kind, *done; } verbs[] = {
        { "flush", "flush", "upstream queue flushed" },
        { "reload", "reload", "scan service reloading its signatures" },
        { "purge", "purge", "quota and retention purge done" },
        { "apply-mta", "apply_mta", "MTA settings applied" },
    };
    char err[1024], actor[CLI_ACTOR_MAX];
    json_t *detail = NULL;
    size_t i;

    for (i = 0; i < ARRAY_LEN(verbs) && strcmp(verbs[i].verb, verb) != 0; i++)
        ;
    if (admin_child_command(c->db, name, verbs[i].kind, cli_actor(actor, sizeof actor), &detail,
                            err, sizeof err) != 0)
        return s_fail(err);
    if (c->json) {
        json_t *o = json_pack("{s:s, s:s, s:b, s:O?}", "child", name, "command", verbs[i].kind,
                              "ok", 1, "detail", detail);
        s_print_json(o);
        json_decref(o);
    } else {
        char *txt = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS |
                                                            JSON_ENCODE_ANY) : NULL;
        printf("child %s: %s%s%s\n", name, verbs[i].done, txt != NULL ? " " : "",
               txt != NULL ? txt : "");
        free(txt);
    }
    json_decref(detail);
    return 0;
}

static bool s_child_verb(const char *v)
{
    return strcmp(v, "flush") == 0 || strcmp(v, "reload") == 0 || strcmp(v, "purge") == 0 ||
           strcmp(v, "apply-mta") == 0;
}

static int cmd_child(struct cli *c, int argc, char **argv)
{
    char err[1024];

    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return cmd_status(c);
    if (argc == 4 && strcmp(argv[0], "approve") == 0 && strcmp(argv[2], "--fingerprint") == 0) {
        if (admin_child_approve(c->db, argv[1], argv[3], err, sizeof err) != 0)
            return s_fail(err);
        printf("child %s approved: it connects at its next enrolment attempt\n", argv[1]);
        return 0;
    }
    if (argc != 2) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[0], "enroll-token") == 0)
        return cmd_enroll_token(c, argv[1]);
    if (s_child_verb(argv[0]))
        return cmd_child_command(c, argv[0], argv[1]);
    if (strcmp(argv[0], "approve") == 0) {
        (void)admin_child_approve(c->db, argv[1], NULL, err, sizeof err);
        fprintf(stderr, "portcullis: %s\n", err);
        return EXIT_USAGE;
    }
    if (strcmp(argv[0], "health") == 0) {
        json_t *h = admin_child_health(c->db, argv[1], err, sizeof err);
        if (h == NULL)
            return s_fail(err);
        s_print_json(h); /* JSON whatever --json says: it is the whole report */
        json_decref(h);
        return 0;
    }
    if (strcmp(argv[0], "remove") == 0) {
        if (admin_child_remove(c->db, argv[1], err, sizeof err) != 0)
            return s_fail(err);
        printf("child %s removed: its key is no longer let in\n", argv[1]);
        return 0;
    }
    s_usage(stderr);
    return EXIT_USAGE;
}

/* Moves "--json" out of argv wherever it stands. */
static int s_take_json(int argc, char **argv, bool *json)
{
    int n = 0;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *json = true;
        else
            argv[n++] = argv[i];
    }
    return n;
}

/* The CLI's changes that no admin_* function audits itself, written to the audit log (R5.4,
 * issue 6) after they ran: "<command> <subcommand>", the object named, the rest as detail. */
static const char *const s_audited[][2] = {
    { "settings", "set" }, { "child", "enroll-token" }, { "child", "approve" },
    { "child", "remove" }, { "policy", "add" }, { "policy", "remove" }, { "policy", "enable" },
    { "policy", "disable" }, { "policy", "move" }, { "area", "add" }, { "area", "set" },
    { "area", "remove" }, { "sps", "import" }, { "wrs", "import" }, { "update", "import" },
    { "update", "use" }, { "spam", "add" }, { "spam", "remove" }, { "spam", "enable" },
    { "spam", "disable" }, { "notify", "test" },
};
#define CLI_AUDIT_DETAIL_MAX 400

static void s_audit_change(PGconn *db, int argc, char **argv, int rc)
{
    char action[64], detail[CLI_AUDIT_DETAIL_MAX] = "", actor[CLI_ACTOR_MAX];
    size_t i, used = 0;

    if (argc < 2)
        return;
    for (i = 0; i < ARRAY_LEN(s_audited); i++)
        if (strcmp(argv[0], s_audited[i][0]) == 0 && strcmp(argv[1], s_audited[i][1]) == 0)
            break;
    if (i == ARRAY_LEN(s_audited))
        return;
    snprintf(action, sizeof action, "%s %s", argv[0], argv[1]);
    /* the object is the first word after the subcommand unless that is an option */
    bool named = argc >= 3 && argv[2][0] != '-';
    for (int a = named ? 3 : 2; a < argc && used + 2 < sizeof detail; a++) {
        int n = snprintf(detail + used, sizeof detail - used, "%s%s", used ? " " : "", argv[a]);
        used = n < 0 ? used : used + (size_t)n >= sizeof detail ? sizeof detail - 1 : used + (size_t)n;
    }
    if (rc != 0 && used + 2 < sizeof detail)
        snprintf(detail + used, sizeof detail - used, "%s(refused, exit %d)", used ? " " : "", rc);
    admin_audit(db, cli_actor(actor, sizeof actor), action, named ? argv[2] : "", rc == 0,
                detail);
}

int main(int argc, char **argv)
{
    const char *path = getenv(PARENT_CONF_ENV);
    struct cli c = { 0 };
    char err[1024];
    int opt, rc;

    log_init("portcullis", LOG_LEVEL_WARN);
    while ((opt = getopt(argc, argv, "+c:h")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return EXIT_USAGE;
        }
    }
    argc -= optind;
    argv += optind;
    argc = s_take_json(argc, argv, &c.json);
    if (argc < 1) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    if (path == NULL)
        path = PARENT_CONF_DEFAULT;
    c.conf = conf_load(path, parent_conf_keys, ARRAY_LEN(parent_conf_keys), err, sizeof err);
    if (c.conf == NULL)
        return s_fail(err);
    c.db = db_connect(conf_get(c.conf, "db"), err, sizeof err);
    if (c.db == NULL || db_schema_check(c.db, err, sizeof err) != 0) {
        rc = s_fail(err);
        goto out;
    }

    if (strcmp(argv[0], "status") == 0 && argc == 1)
        rc = cmd_status(&c);
    else if (strcmp(argv[0], "settings") == 0 && argc >= 2 && strcmp(argv[1], "get") == 0 && argc <= 3)
        rc = cmd_settings_get(&c, argc == 3 ? argv[2] : NULL);
    else if (strcmp(argv[0], "settings") == 0 && argc == 4 && strcmp(argv[1], "set") == 0)
        rc = cmd_settings_set(&c, argv[2], argv[3]);
    else if (strcmp(argv[0], "child") == 0)
        rc = cmd_child(&c, argc - 1, argv + 1);
    else if (strcmp(argv[0], "log") == 0 && argc >= 2 && strcmp(argv[1], "query") == 0)
        rc = cli_log_query(c.db, c.json, argc - 2, argv + 2);
    else if ((strcmp(argv[0], "quarantine") == 0 || strcmp(argv[0], "archive") == 0) &&
             argc >= 2 && strcmp(argv[1], "list") == 0)
        rc = cli_stored_list(c.db, c.json, argv[0], argc - 2, argv + 2);
    else if ((strcmp(argv[0], "quarantine") == 0 || strcmp(argv[0], "archive") == 0) &&
             argc >= 2 && cmd_quarantine_handles(argv[1]))
        rc = cmd_quarantine(c.db, c.json, argv[0], argc - 1, argv + 1);
    else if (strcmp(argv[0], "policy") == 0)
        rc = cmd_policy_rules(c.db, c.json, argc - 1, argv + 1);
    else if (strcmp(argv[0], "area") == 0)
        rc = cmd_policy_areas(c.db, c.json, argc - 1, argv + 1);
    else if (strcmp(argv[0], "sps") == 0)
        rc = cmd_sps(c.db, c.json, argc - 1, argv + 1);
    else if (strcmp(argv[0], "wrs") == 0)
        rc = cmd_wrs(c.db, c.json, argc - 1, argv + 1);
    else if (strcmp(argv[0], "update") == 0)
        rc = cmd_update(c.db, c.conf, c.json, argc - 1, argv + 1);
    else if (strcmp(argv[0], "spam") == 0)
        rc = cmd_spam(c.db, c.json, argc - 1, argv + 1);
    else if (strcmp(argv[0], "mta") == 0)
        rc = cmd_mta(c.db, argc - 1, argv + 1, c.json);
    else if (strcmp(argv[0], "notify") == 0)
        rc = cmd_notify(c.db, c.json, argc - 1, argv + 1);
    else if (strcmp(argv[0], "user") == 0)
        rc = cmd_user(c.db, c.json, argc - 1, argv + 1);
    else {
        s_usage(stderr);
        rc = EXIT_USAGE;
    }
    if (c.db != NULL)
        s_audit_change(c.db, argc, argv, rc);
out:
    db_close(&c.db);
    conf_free(&c.conf);
    return rc;
}
