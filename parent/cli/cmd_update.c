/* cmd_update: see cmd_update.h. The package file is read whole (at most UPDATE_PKG_MAX),
 * checked as an archive, digested and signed by admin_update_import, which stores it in one
 * transaction with the new configuration version that makes the children fetch it. */
#include "cli/cmd_update.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_update.h"
#include "fs.h"
#include "util.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2

void cmd_update_usage(FILE *f)
{
    fprintf(f,
        "  update import [--component clamav|light] --version V [--no-use] FILE\n"
        "                                       store a signature package (tar or tar.gz of\n"
        "                                       ClamAV database files, at most %llu MiB), signed\n"
        "                                       with the update key; it becomes current (every\n"
        "                                       child downloads, verifies and swaps it) unless\n"
        "                                       --no-use; default component clamav\n"
        "  update list [--json]                 stored packages, which one is current\n"
        "  update use COMPONENT VERSION         make a stored version current (e.g. roll back)\n",
        (unsigned long long)(UPDATE_PKG_MAX >> 20));
}

static int s_import(PGconn *db, const conf_t *conf, int argc, char **argv)
{
    const char *component = "clamav", *version = NULL, *path = NULL;
    struct admin_update_key k;
    bool use = true;
    char err[1024], *data = NULL;
    size_t len = 0, nfiles = 0;
    uint64_t cv = 0;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--component") == 0 && i + 1 < argc)
            component = argv[++i];
        else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc)
            version = argv[++i];
        else if (strcmp(argv[i], "--no-use") == 0)
            use = false;
        else if (path == NULL && argv[i][0] != '-')
            path = argv[i];
        else
            path = NULL, i = argc + 1; /* unknown option: usage */
    }
    if (version == NULL || path == NULL) {
        fprintf(stderr, "usage:\n");
        cmd_update_usage(stderr);
        return EXIT_USAGE;
    }
    if (admin_update_key_load_or_create(conf_get(conf, "state_dir"), &k, err, sizeof err) != 0) {
        fprintf(stderr, "portcullis: update key: %s\n", err);
        return EXIT_FAILED;
    }
    if (fs_read_file(path, UPDATE_PKG_MAX, &data, &len, err, sizeof err) != 0) {
        fprintf(stderr, "portcullis: %s\n", err);
        sodium_memzero(&k, sizeof k);
        return EXIT_USAGE;
    }
    rc = admin_update_import(db, &k, component, version, data, len, use, &cv, &nfiles, err,
                             sizeof err);
    sodium_memzero(&k, sizeof k);
    free(data);
    if (rc != 0) {
        fprintf(stderr, "portcullis: update import: %s\n", err);
        return strncmp(err, "database", 8) == 0 ? EXIT_FAILED : EXIT_USAGE;
    }
    printf("%s version %s imported: %zu files, %zu bytes, signed\n", component, version, nfiles, len);
    if (cv != 0)
        printf("now current; configuration version %llu is being pushed to the children\n",
               (unsigned long long)cv);
    else if (!use)
        printf("not current: `portcullis update use %s %s` makes it so\n", component, version);
    return 0;
}

static int s_list(PGconn *db, bool json)
{
    char err[512];
    json_t *o = admin_update_list(db, err, sizeof err), *e;
    size_t i;

    if (o == NULL) {
        fprintf(stderr, "portcullis: update list: %s\n", err);
        return EXIT_FAILED;
    }
    if (json) {
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
        puts(s);
        free(s);
    } else {
        printf("%-8s %-24s %-8s %12s %6s %-20s %s\n", "COMPONENT", "VERSION", "CURRENT", "BYTES",
               "FILES", "IMPORTED", "SHA-256");
        json_array_foreach(json_object_get(o, "components"), i, e)
            printf("%-8s %-24s %-8s %12lld %6lld %-20s %.16s…\n",
                   json_string_value(json_object_get(e, "component")),
                   json_string_value(json_object_get(e, "version")),
                   json_is_true(json_object_get(e, "current")) ? "yes" : "",
                   (long long)json_integer_value(json_object_get(e, "size")),
                   (long long)json_integer_value(json_object_get(e, "files")),
                   json_string_value(json_object_get(e, "imported_at")),
                   json_string_value(json_object_get(e, "sha256")));
    }
    json_decref(o);
    return 0;
}

int cmd_update(PGconn *db, const conf_t *conf, bool json, int argc, char **argv)
{
    char err[512];
    uint64_t cv = 0;

    if (argc >= 1 && strcmp(argv[0], "import") == 0)
        return s_import(db, conf, argc - 1, argv + 1);
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return s_list(db, json);
    if (argc == 3 && strcmp(argv[0], "use") == 0) {
        if (admin_update_use(db, argv[1], argv[2], &cv, err, sizeof err) != 0) {
            fprintf(stderr, "portcullis: update use: %s\n", err);
            return strncmp(err, "database", 8) == 0 ? EXIT_FAILED : EXIT_USAGE;
        }
        if (cv != 0)
            printf("%s version %s is current; configuration version %llu is being pushed to "
                   "the children\n", argv[1], argv[2], (unsigned long long)cv);
        else
            printf("%s version %s was already current\n", argv[1], argv[2]);
        return 0;
    }
    fprintf(stderr, "usage:\n");
    cmd_update_usage(stderr);
    return EXIT_USAGE;
}
