/* cmd_policy: the policy and area commands of `portcullis`: argument parsing and printing only;
 * parent/admin/admin_policy.c validates (with the children's own compiler) and stores. */
#include "cli/cmd_policy.h"
#include "cli/cli_common.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "policy.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

void cmd_policy_usage(FILE *f)
{
    fprintf(f,
        "  policy list [--json]                 rules in evaluation order\n"
        "  policy add NAME [--position N] [--scope any|inbound|outbound] [--domains D1,D2]\n"
        "             [--match all|any] [--disabled] (--if KIND[=VALUE] | --if-not KIND[=VALUE])…\n"
        "             --then ACTION[=ARG]…      add a rule (e.g. --if attachment_extension=exe\n"
        "                                       --then quarantine=\"Default quarantine\")\n"
        "  policy remove|enable|disable NAME    remove, switch on or off a rule\n"
        "  policy move NAME POSITION            give a rule another place in the order\n"
        "  area list [--json]                   quarantine and archive areas\n"
        "  area add NAME --kind quarantine|archive [--retention-days N]   (default 15 days)\n"
        "  area set NAME --retention-days N     keep messages N days (1 to 60)\n"
        "  area remove NAME                     (refused while a rule uses it)\n");
}

static int s_usage(const char *what)
{
    fprintf(stderr, "portcullis: %s\nusage:\n", what);
    cmd_policy_usage(stderr);
    return EXIT_USAGE;
}

static void s_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
}

static int s_parse_uint(const char *s, unsigned max, unsigned *out)
{
    int64_t v;

    if (parse_int64(s, &v) != 0 || v < 0 || v > (int64_t)max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* "--opt VALUE" or "--opt=VALUE": the value of option opt at argv[*i], or NULL if argv[*i]
 * is another option. Advances *i past a separate value. */
static const char *s_opt(int argc, char **argv, int *i, const char *opt, bool *missing)
{
    size_t n = strlen(opt);

    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* --- policy list ------------------------------------------------------------------------------- */

static const char *s_js(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

static void s_print_rule(const json_t *r)
{
    const json_t *v;
    size_t i;
    bool any = strcmp(s_js(r, "match"), "any") == 0;

    printf("%3lld  %-32s %-9s ", (long long)json_integer_value(json_object_get(r, "position")),
           s_js(r, "name"), json_is_true(json_object_get(r, "enabled")) ? "enabled" : "disabled");
    if (strcmp(s_js(r, "scope"), "any") == 0)
        printf("any message");
    else
        printf("%s %s ", s_js(r, "scope"),
               strcmp(s_js(r, "scope"), "inbound") == 0 ? "to" : "from");
    json_array_foreach(json_object_get(r, "domains"), i, v)
        printf("%s%s", i > 0 ? ", " : "", json_string_value(v));
    printf("\n");
    json_array_foreach(json_object_get(r, "conditions"), i, v) {
        printf("       %-5s %s%s", i == 0 ? "if" : any ? "or" : "and",
               json_is_true(json_object_get(v, "negate")) ? "not " : "", s_js(v, "kind"));
        if (*s_js(v, "value"))
            printf(" \"%s\"", s_js(v, "value"));
        printf("\n");
    }
    if (json_array_size(json_object_get(r, "conditions")) == 0)
        printf("       %-5s every message\n", "if");
    json_array_foreach(json_object_get(r, "actions"), i, v) {
        printf("       %-5s %s", i == 0 ? "then" : "", s_js(v, "kind"));
        if (*s_js(v, "arg"))
            printf(" \"%s\"", s_js(v, "arg"));
        printf("\n");
    }
}

static int s_policy_list(PGconn *db, bool json)
{
    char err[1024];
    json_t *all = admin_policy_list(db, err, sizeof err), *r;
    size_t i;

    if (all == NULL)
        return cli_refused(err);
    if (json) {
        s_print_json(all);
    } else {
        printf("configuration version %lld: rules in evaluation order (the first that decides "
               "deliver, delete or quarantine ends it)\n\n",
               (long long)json_integer_value(json_object_get(all, "config_version")));
        printf("%3s  %-32s %-9s %s\n", "#", "NAME", "STATE", "SCOPE");
        json_array_foreach(json_object_get(all, "rules"), i, r)
            s_print_rule(r);
        if (json_array_size(json_object_get(all, "rules")) == 0)
            printf("(no rules: every message is delivered)\n");
    }
    json_decref(all);
    return 0;
}

/* --- policy add ---------------------------------------------------------------------------------- */

/* "KIND=VALUE" or "KIND" → kind, value (value "" when absent). */
static void s_split(const char *spec, char *kind, size_t kindlen, const char **value)
{
    const char *eq = strchr(spec, '=');
    size_t n = eq != NULL ? (size_t)(eq - spec) : strlen(spec);

    snprintf(kind, kindlen, "%.*s", (int)n, spec);
    *value = eq != NULL ? eq + 1 : "";
}

static int s_add_option(Portcullis__PolicyRule *r, int argc, char **argv, int *i,
                        unsigned *position)
{
    char kind[64];
    const char *v, *val;
    bool missing = false;

    if ((v = s_opt(argc, argv, i, "--position", &missing)) != NULL) {
        if (s_parse_uint(v, POLICY_RULES_MAX + 1, position) != 0 || *position == 0)
            return s_usage("--position takes a rule position from 1 (first)");
    } else if ((v = s_opt(argc, argv, i, "--scope", &missing)) != NULL) {
        free(r->scope);
        r->scope = xstrdup(v);
    } else if ((v = s_opt(argc, argv, i, "--match", &missing)) != NULL) {
        free(r->match);
        r->match = xstrdup(v);
    } else if ((v = s_opt(argc, argv, i, "--domains", &missing)) != NULL) {
        char *list = xstrdup(v), *save = NULL;
        for (char *d = strtok_r(list, ", ", &save); d != NULL; d = strtok_r(NULL, ", ", &save))
            admin_policy_rule_add_domain(r, d);
        free(list);
    } else if ((v = s_opt(argc, argv, i, "--if-not", &missing)) != NULL) {
        s_split(v, kind, sizeof kind, &val);
        admin_policy_rule_add_condition(r, kind, val, true);
    } else if (!missing && (v = s_opt(argc, argv, i, "--if", &missing)) != NULL) {
        s_split(v, kind, sizeof kind, &val);
        admin_policy_rule_add_condition(r, kind, val, false);
    } else if ((v = s_opt(argc, argv, i, "--then", &missing)) != NULL) {
        s_split(v, kind, sizeof kind, &val);
        admin_policy_rule_add_action(r, kind, val); /* the default area when val is "" */
    } else if (strcmp(argv[*i], "--disabled") == 0) {
        r->enabled = false;
    } else if (missing) {
        fprintf(stderr, "portcullis: %s needs a value\n", argv[*i]);
        return EXIT_USAGE;
    } else {
        fprintf(stderr, "portcullis: unknown option '%s' for policy add\n", argv[*i]);
        return EXIT_USAGE;
    }
    if (missing) {
        fprintf(stderr, "portcullis: %s needs a value\n", argv[*i]);
        return EXIT_USAGE;
    }
    return 0;
}

static int s_policy_add(PGconn *db, int argc, char **argv)
{
    Portcullis__PolicyRule *r;
    unsigned position = 0;
    uint64_t version;
    char err[1024], what[256];
    int rc = 0;

    if (argc < 1 || strncmp(argv[0], "--", 2) == 0)
        return s_usage("policy add needs a rule NAME first");
    r = admin_policy_rule_new(argv[0]);
    for (int i = 1; i < argc && rc == 0; i++)
        rc = s_add_option(r, argc, argv, &i, &position);
    if (rc == 0 && r->n_actions == 0)
        rc = s_usage("a rule needs at least one --then ACTION (deliver, delete, quarantine, "
                     "archive, tag_subject, add_header, notify)");
    if (rc == 0) {
        if (admin_policy_add(db, r, position, &version, err, sizeof err) != 0) {
            rc = cli_refused(err);
        } else {
            snprintf(what, sizeof what, "rule \"%.127s\" added%s", r->name,
                     position == 0 ? " last" : "");
            cli_changed(what, version);
        }
    }
    portcullis__policy_rule__free_unpacked(r, NULL);
    return rc;
}

int cmd_policy_rules(PGconn *db, bool json, int argc, char **argv)
{
    char err[1024], what[256];
    uint64_t version = 0;
    unsigned position;
    int rc;

    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return s_policy_list(db, json);
    if (argc >= 1 && strcmp(argv[0], "add") == 0)
        return s_policy_add(db, argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[0], "remove") == 0) {
        rc = admin_policy_remove(db, argv[1], &version, err, sizeof err);
        snprintf(what, sizeof what, "rule \"%.127s\" removed", argv[1]);
    } else if (argc == 2 && (strcmp(argv[0], "enable") == 0 || strcmp(argv[0], "disable") == 0)) {
        bool on = strcmp(argv[0], "enable") == 0;
        rc = admin_policy_set_enabled(db, argv[1], on, &version, err, sizeof err);
        snprintf(what, sizeof what, "rule \"%.127s\" %s", argv[1], on ? "enabled" : "disabled");
    } else if (argc == 3 && strcmp(argv[0], "move") == 0) {
        if (s_parse_uint(argv[2], POLICY_RULES_MAX, &position) != 0 || position == 0)
            return s_usage("policy move takes a rule NAME and a POSITION from 1 (first)");
        rc = admin_policy_move(db, argv[1], position, &version, err, sizeof err);
        snprintf(what, sizeof what, "rule \"%.127s\" moved to position %u", argv[1], position);
    } else {
        return s_usage("unknown policy command");
    }
    if (rc != 0)
        return cli_refused(err);
    cli_changed(what, version);
    return 0;
}

/* --- areas ----------------------------------------------------------------------------------------- */

static int s_area_list(PGconn *db, bool json)
{
    char err[1024];
    json_t *all = admin_area_list(db, err, sizeof err), *a, *u;
    size_t i, j;

    if (all == NULL)
        return cli_refused(err);
    if (json) {
        s_print_json(all);
        json_decref(all);
        return 0;
    }
    printf("%-32s %-11s %-10s %s\n", "AREA", "KIND", "RETENTION", "USED BY RULES");
    json_array_foreach(json_object_get(all, "areas"), i, a) {
        printf("%-32s %-11s %3lld days   ", s_js(a, "name"), s_js(a, "kind"),
               (long long)json_integer_value(json_object_get(a, "retention_days")));
        json_array_foreach(json_object_get(a, "used_by"), j, u)
            printf("%s\"%s\"", j > 0 ? ", " : "", json_string_value(u));
        printf("%s\n", json_array_size(json_object_get(a, "used_by")) == 0 ? "-" : "");
    }
    json_decref(all);
    return 0;
}

/* --kind K and --retention-days N after the area name. */
static int s_area_options(int argc, char **argv, const char **kind, unsigned *days)
{
    for (int i = 0; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (kind != NULL && (v = s_opt(argc, argv, &i, "--kind", &missing)) != NULL) {
            *kind = v;
        } else if (!missing && (v = s_opt(argc, argv, &i, "--retention-days", &missing)) != NULL) {
            /* the range (1..60) is the validator's to say */
            if (s_parse_uint(v, 1000000, days) != 0)
                return s_usage("--retention-days takes a number of days from 1 to 60");
        } else {
            fprintf(stderr, "portcullis: %s '%s'\n", missing ? "a value is missing after" :
                    "unknown option", argv[i]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

int cmd_policy_areas(PGconn *db, bool json, int argc, char **argv)
{
    char err[1024], what[256];
    const char *kind = NULL;
    unsigned days = UINT32_MAX; /* not given */
    uint64_t version = 0;
    int rc;

    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return s_area_list(db, json);
    if (argc < 2 || strncmp(argv[1], "--", 2) == 0)
        return s_usage("area commands take an area NAME");
    if (strcmp(argv[0], "add") == 0) {
        if ((rc = s_area_options(argc - 2, argv + 2, &kind, &days)) != 0)
            return rc;
        if (kind == NULL)
            return s_usage("area add needs --kind quarantine or --kind archive");
        if (days == UINT32_MAX)
            days = ADMIN_AREA_RETENTION_DEFAULT;
        rc = admin_area_add(db, argv[1], kind, days, &version, err, sizeof err);
        snprintf(what, sizeof what, "%s area \"%.127s\" added", kind, argv[1]);
    } else if (strcmp(argv[0], "set") == 0) {
        if ((rc = s_area_options(argc - 2, argv + 2, NULL, &days)) != 0)
            return rc;
        if (days == UINT32_MAX)
            return s_usage("area set needs --retention-days N");
        rc = admin_area_set_retention(db, argv[1], days, &version, err, sizeof err);
        snprintf(what, sizeof what, "area \"%.127s\" keeps messages %u days", argv[1], days);
    } else if (strcmp(argv[0], "remove") == 0 && argc == 2) {
        rc = admin_area_remove(db, argv[1], &version, err, sizeof err);
        snprintf(what, sizeof what, "area \"%.127s\" removed", argv[1]);
    } else {
        return s_usage("unknown area command");
    }
    if (rc != 0)
        return cli_refused(err);
    cli_changed(what, version);
    return 0;
}
