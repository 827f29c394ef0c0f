/* cmd_notify: see cmd_notify.h. */
#include "cli/cmd_notify.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_notify.h"
#include "cli/cli_common.h"
#include "util.h"

void cmd_notify_usage(FILE *f)
{
    fprintf(f,
        "  notify list [--limit N] [--json]     notification mail, newest first (default %d):\n"
        "                                       pending, sent, failed (given up) or skipped\n"
        "                                       (no notify.admin_address), with the last error\n"
        "  notify test                          queue a test mail to notify.admin_address\n",
        ADMIN_NOTIFY_LIST_DEFAULT);
}

static int s_list(PGconn *db, bool json, int argc, char **argv)
{
    size_t limit = ADMIN_NOTIFY_LIST_DEFAULT;
    char err[512];
    json_t *arr;

    for (int i = 0; i < argc; i++) {
        int64_t v;
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc && parse_int64(argv[i + 1], &v) == 0 &&
            v >= 1 && v <= ADMIN_NOTIFY_LIST_MAX) {
            limit = (size_t)v;
            i++;
        } else {
            fprintf(stderr, "portcullis: notify list: --limit takes 1..%d\n", ADMIN_NOTIFY_LIST_MAX);
            return 2;
        }
    }
    if ((arr = admin_notify_list(db, limit, err, sizeof err)) == NULL) {
        fprintf(stderr, "portcullis: %s\n", err);
        return 1;
    }
    if (json) {
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
    } else {
        size_t i;
        json_t *o;
        printf("%-6s %-20s %-8s %3s  %s\n", "ID", "CREATED", "STATE", "TRY", "SUBJECT");
        json_array_foreach(arr, i, o) {
            const char *e = json_string_value(json_object_get(o, "last_error"));
            printf("%-6lld %-20s %-8s %3lld  %s\n",
                   (long long)json_integer_value(json_object_get(o, "id")),
                   json_string_value(json_object_get(o, "created")),
                   json_string_value(json_object_get(o, "state")),
                   (long long)json_integer_value(json_object_get(o, "attempts")),
                   json_string_value(json_object_get(o, "subject")));
            if (e != NULL && *e)
                printf("%-6s   last error: %s\n", "", e);
        }
    }
    json_decref(arr);
    return 0;
}

int cmd_notify(PGconn *db, bool json, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "list") == 0)
        return s_list(db, json, argc - 1, argv + 1);
    if (argc == 1 && strcmp(argv[0], "test") == 0) {
        char err[512], actor[CLI_ACTOR_MAX];
        long long id;
        if (admin_notify_test(db, cli_actor(actor, sizeof actor), &id, err, sizeof err) != 0) {
            fprintf(stderr, "portcullis: %s\n", err);
            return 1;
        }
        printf("test notification %lld queued; `portcullis notify list` shows when it is sent\n", id);
        return 0;
    }
    cmd_notify_usage(stderr);
    return 2;
}
