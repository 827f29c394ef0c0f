/* cmd_spam: the anti-spam rule commands of `portcullis`: argument parsing and printing only;
 * parent/admin/admin_spam.c validates (with the children's own compiler) and stores. */
#include "cli/cmd_spam.h"
#include "cli/cli_common.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "policy.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

void cmd_spam_usage(FILE *f)
{
    fprintf(f,
        "  spam list [--json]                   anti-spam rules and their scores, in order\n"
        "  spam add NAME KIND VALUE SCORE [--position N]\n"
        "                                       KIND: header_regex (\"Name: regex\"),\n"
        "                                       header_missing (a header name), body_regex,\n"
        "                                       ers_listed (listing, \"\" any), web_reputation\n"
        "                                       (level); SCORE -100..100 (e.g. 2.5)\n"
        "  spam remove|enable|disable NAME      remove, switch on or off a spam rule\n"
        "  (setting spam.enabled; policy condition spam_score=THRESHOLD, default 5)\n");
}

static int s_usage(const char *what)
{
    fprintf(stderr, "portcullis: %s\nusage:\n", what);
    cmd_spam_usage(stderr);
    return EXIT_USAGE;
}

static const char *s_js(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "";
}

static int s_list(PGconn *db, bool json)
{
    char err[1024], score[32];
    json_t *all = admin_spam_list(db, err, sizeof err), *r;
    size_t i;

    if (all == NULL)
        return cli_refused(err);
    if (json) {
        char *s = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
    } else {
        printf("configuration version %lld: a message's spam score is the sum of the scores of "
               "the enabled rules it matches\n\n",
               (long long)json_integer_value(json_object_get(all, "config_version")));
        printf("%3s  %-24s %-9s %7s  %-15s %s\n", "#", "NAME", "STATE", "SCORE", "KIND", "VALUE");
        json_array_foreach(json_object_get(all, "rules"), i, r) {
            policy_score_format(json_real_value(json_object_get(r, "score")), score,
                                sizeof score);
            printf("%3lld  %-24s %-9s %7s  %-15s \"%s\"\n",
                   (long long)json_integer_value(json_object_get(r, "position")), s_js(r, "name"),
                   json_is_true(json_object_get(r, "enabled")) ? "enabled" : "disabled", score,
                   s_js(r, "kind"), s_js(r, "value"));
        }
        if (json_array_size(json_object_get(all, "rules")) == 0)
            printf("(no spam rules: every message scores 0)\n");
    }
    json_decref(all);
    return 0;
}

/* NAME KIND VALUE SCORE [--position N] */
static int s_add(PGconn *db, int argc, char **argv)
{
    char err[1024], what[256];
    unsigned position = 0;
    uint64_t version;
    double score;

    if (argc < 4)
        return s_usage("spam add takes NAME KIND VALUE SCORE (VALUE may be \"\")");
    for (int i = 4; i < argc; i++) {
        const char *v = NULL;
        int64_t n;
        if (strncmp(argv[i], "--position=", 11) == 0)
            v = argv[i] + 11;
        else if (strcmp(argv[i], "--position") == 0 && i + 1 < argc)
            v = argv[++i];
        else
            return s_usage("spam add: unknown option (only --position N)");
        if (parse_int64(v, &n) != 0 || n < 1 || n > POLICY_SPAM_RULES_MAX + 1)
            return s_usage("--position takes a rule position from 1 (first)");
        position = (unsigned)n;
    }
    if (policy_parse_decimal(argv[3], &score) != 0) {
        fprintf(stderr, "portcullis: spam rule \"%.127s\": \"%.32s\" is not a score: a decimal "
                        "such as 2 or -1.5\n", argv[0], argv[3]);
        return EXIT_USAGE;
    }
    if (admin_spam_add(db, argv[0], argv[1], argv[2], score, position, &version, err,
                       sizeof err) != 0)
        return cli_refused(err);
    snprintf(what, sizeof what, "spam rule \"%.127s\" added%s", argv[0],
             position == 0 ? " last" : "");
    cli_changed(what, version);
    return 0;
}

int cmd_spam(PGconn *db, bool json, int argc, char **argv)
{
    char err[1024], what[256];
    uint64_t version = 0;
    int rc;

    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return s_list(db, json);
    if (argc >= 1 && strcmp(argv[0], "add") == 0)
        return s_add(db, argc - 1, argv + 1);
    if (argc == 2 && strcmp(argv[0], "remove") == 0) {
        rc = admin_spam_remove(db, argv[1], &version, err, sizeof err);
        snprintf(what, sizeof what, "spam rule \"%.127s\" removed", argv[1]);
    } else if (argc == 2 && (strcmp(argv[0], "enable") == 0 || strcmp(argv[0], "disable") == 0)) {
        bool on = strcmp(argv[0], "enable") == 0;
        rc = admin_spam_set_enabled(db, argv[1], on, &version, err, sizeof err);
        snprintf(what, sizeof what, "spam rule \"%.127s\" %s", argv[1], on ? "enabled" : "disabled");
    } else {
        return s_usage("unknown spam command");
    }
    if (rc != 0)
        return cli_refused(err);
    cli_changed(what, version);
    return 0;
}
