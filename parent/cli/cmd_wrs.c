/* cmd_wrs: see cmd_wrs.h. An import reads and checks the whole file first (a malformed line
 * refuses the import, naming the line, before anything changes), then stores it with
 * admin_wrs_import in one transaction that makes a new configuration version. */
#include "cli/cmd_wrs.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define WRS_IMPORT_LINE_MAX 1024   /* bytes per line of an import file */

void cmd_wrs_usage(FILE *f)
{
    fprintf(f,
        "  wrs import [--replace] FILE          web-reputation block-lists (R3.2): one\n"
        "                                       \"domain NAME LEVEL CATEGORY\" or \"url URL LEVEL\n"
        "                                       CATEGORY\" per line (LEVEL 1..100; a domain also\n"
        "                                       lists its subdomains), '#' comments; merged into\n"
        "                                       the lists (an entry already there takes the new\n"
        "                                       level), or --replace the lists; a malformed line\n"
        "                                       refuses the whole import; at most %d entries\n"
        "  wrs list [--limit N] [--json]        how many entries, and the first N (default %d)\n",
        ADMIN_WRS_ENTRIES_MAX, ADMIN_WRS_LIST_DEFAULT);
}

struct import {
    struct admin_wrs_entry *e;
    char **strs;                   /* owned copies the entries point into */
    size_t n, cap;
};

/* One line; 0 added, 1 nothing on the line, -1 malformed with the reason in why. */
static int s_line(struct import *im, char *line, const char **why)
{
    char *f[5], *save = NULL, *end;
    size_t nf = 0;
    unsigned long level;

    for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL && nf < 5;
         t = strtok_r(NULL, " \t\r\n", &save))
        f[nf++] = t;
    if (nf == 0 || f[0][0] == '#')
        return 1;
    if (nf != 4) {
        *why = "want 4 fields: domain|url PATTERN LEVEL CATEGORY";
        return -1;
    }
    errno = 0;
    level = strtoul(f[2], &end, 10);
    if (errno != 0 || *end != '\0' || !isdigit((unsigned char)f[2][0]) || level > 100)
        level = 0; /* out of range: admin_wrs_entry_check says so */
    if (strcmp(f[0], "domain") != 0 && strcmp(f[0], "url") != 0) {
        *why = "first field must be \"domain\" or \"url\"";
        return -1;
    }
    if (admin_wrs_entry_check(f[0], f[1], (long long)level, f[3], why) != 0)
        return -1;
    if (im->n >= ADMIN_WRS_ENTRIES_MAX) {
        *why = "too many entries for the web-reputation lists";
        return -1;
    }
    if (im->n == im->cap) {
        im->cap = im->cap == 0 ? 256 : 2 * im->cap;
        im->e = xrealloc(im->e, im->cap * sizeof *im->e);
        im->strs = xrealloc(im->strs, 3 * im->cap * sizeof *im->strs);
    }
    im->strs[3 * im->n] = xstrdup(f[0]);
    im->strs[3 * im->n + 1] = xstrdup(f[1]);
    im->strs[3 * im->n + 2] = xstrdup(f[3]);
    im->e[im->n] = (struct admin_wrs_entry){ .kind = im->strs[3 * im->n],
                                             .pattern = im->strs[3 * im->n + 1],
                                             .level = (unsigned)level,
                                             .category = im->strs[3 * im->n + 2] };
    im->n++;
    return 0;
}

static void s_import_free(struct import *im)
{
    for (size_t i = 0; i < 3 * im->n; i++)
        free(im->strs[i]);
    free(im->strs);
    free(im->e);
}

static int cmd_wrs_import(PGconn *db, bool json, bool replace, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    struct import im = { 0 };
    char *line = NULL, err[512];
    size_t cap = 0, total = 0;
    ssize_t len;
    unsigned long lineno = 0;
    const char *why = NULL;
    uint64_t version = 0;
    int rc = 0;

    if (f == NULL) {
        fprintf(stderr, "portcullis: %s: %s\n", path, strerror(errno));
        return EXIT_FAILED;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (len > WRS_IMPORT_LINE_MAX) {
            why = "line longer than 1024 bytes";
            break;
        }
        if (memchr(line, '\0', (size_t)len) != NULL) {
            why = "NUL byte in line";
            break;
        }
        if (s_line(&im, line, &why) < 0)
            break;
    }
    if (why == NULL && ferror(f)) {
        fprintf(stderr, "portcullis: %s: %s\n", path, strerror(errno));
        rc = EXIT_FAILED;
    } else if (why != NULL) {
        fprintf(stderr, "portcullis: %s:%lu: %s; nothing imported\n", path, lineno, why);
        rc = EXIT_USAGE;
    }
    free(line);
    if (f != stdin)
        fclose(f);
    if (rc == 0 && admin_wrs_import(db, im.e, im.n, replace, &version, &total, err,
                                    sizeof err) != 0) {
        fprintf(stderr, "portcullis: wrs import: %s\n", err);
        rc = EXIT_FAILED;
    }
    if (rc == 0) {
        if (json)
            printf("{\"imported\": %zu, \"total\": %zu, \"config_version\": %llu}\n", im.n,
                   total, (unsigned long long)version);
        else
            printf("imported %zu entries%s; %zu in the web-reputation lists; configuration "
                   "version %llu\n", im.n, replace ? " (lists replaced)" : "", total,
                   (unsigned long long)version);
    }
    s_import_free(&im);
    return rc;
}

static int cmd_wrs_list(PGconn *db, bool json, size_t limit)
{
    char err[512];
    json_t *o = admin_wrs_list(db, limit, err, sizeof err), *arr, *e;
    size_t i;

    if (o == NULL) {
        fprintf(stderr, "portcullis: wrs list: %s\n", err);
        return EXIT_FAILED;
    }
    if (json) {
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
    } else {
        arr = json_object_get(o, "entries");
        printf("%lld entries in the web-reputation lists\n",
               (long long)json_integer_value(json_object_get(o, "count")));
        json_array_foreach(arr, i, e)
            printf("%-6s %-40s %3lld %s\n", json_string_value(json_object_get(e, "kind")),
                   json_string_value(json_object_get(e, "pattern")),
                   (long long)json_integer_value(json_object_get(e, "level")),
                   json_string_value(json_object_get(e, "category")));
    }
    json_decref(o);
    return 0;
}

int cmd_wrs(PGconn *db, bool json, int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[0], "import") == 0)
        return cmd_wrs_import(db, json, false, argv[1]);
    if (argc == 3 && strcmp(argv[0], "import") == 0 && strcmp(argv[1], "--replace") == 0)
        return cmd_wrs_import(db, json, true, argv[2]);
    if (argc >= 1 && strcmp(argv[0], "list") == 0) {
        size_t limit = ADMIN_WRS_LIST_DEFAULT;
        bool ok = true;
        for (int i = 1; i < argc && ok; i++) {
            char *end;
            if (strcmp(argv[i], "--json") == 0)
                json = true;
            else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
                limit = strtoul(argv[++i], &end, 10);
                ok = *end == '\0' && limit <= ADMIN_WRS_ENTRIES_MAX;
            } else
                ok = false;
        }
        if (ok)
            return cmd_wrs_list(db, json, limit);
    }
    fprintf(stderr, "usage:\n");
    cmd_wrs_usage(stderr);
    return EXIT_USAGE;
}
