/* cmd_quarantine: the CLI of the central quarantine and archive operations (R5.4) and their
 * reconciliation (R5.3). The operations are admin_quarantine's; this file parses, names the
 * acting administrator (the OS user) and prints. */
#include "cli/cmd_quarantine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_quarantine.h"
#include "cli/cli_common.h"
#include "cli/cli_log.h"
#include "util.h"

#define CMDQ_EXIT_FAILED 1
#define CMDQ_EXIT_USAGE 2

static int s_usage_err(const char *fmt, const char *a)
{
    fprintf(stderr, "portcullis: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return CMDQ_EXIT_USAGE;
}

static int s_fail(const char *err)
{
    fprintf(stderr, "portcullis: %s\n", err);
    return CMDQ_EXIT_FAILED;
}

static void s_print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s);
    free(s);
}

static const char *s_str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL && *v ? v : "-";
}

static int s_show(PGconn *db, bool json, const char *kind, const char *ref, const char *actor)
{
    char err[1024];
    int rc;
    json_t *row = admin_stored_show(db, actor, kind, ref, &rc, err, sizeof err), *v;
    size_t i;

    if (row == NULL)
        return s_fail(err);
    if (json) {
        s_print_json(row);
    } else {
        static const char *const keys[] = { "id", "child", "kind", "area", "file_id", "bucket",
                                            "state", "received_at", "sender", "subject", "rule",
                                            "msg_id" };
        for (i = 0; i < ARRAY_LEN(keys); i++) {
            json_t *x = json_object_get(row, keys[i]);
            if (json_is_integer(x))
                printf("%-12s %" JSON_INTEGER_FORMAT "\n", keys[i], json_integer_value(x));
            else
                printf("%-12s %s\n", keys[i], s_str(row, keys[i]));
        }
        printf("%-12s %" JSON_INTEGER_FORMAT "\n", "size",
               json_integer_value(json_object_get(row, "size")));
        json_array_foreach(json_object_get(row, "recipients"), i, v)
            printf("%-12s %s\n", "recipient", json_string_value(v));
        json_array_foreach(json_object_get(row, "verdicts"), i, v)
            printf("%-12s %s:%s %s\n", "verdict", s_str(v, "engine"), s_str(v, "result"),
                   s_str(v, "detail"));
        if (json_is_string(json_object_get(row, "headers")))
            printf("\n%s", json_string_value(json_object_get(row, "headers")));
    }
    json_decref(row);
    if (rc != 0)
        return s_fail(err); /* the index is shown; the child could not add the headers */
    return 0;
}

static int s_sink_fd(void *arg, const void *data, size_t len)
{
    int fd = *(int *)arg;
    const char *p = data;

    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int s_download(PGconn *db, const char *kind, const char *ref, const char *out,
                      const char *actor)
{
    char err[1024], tmp[4096];
    uint64_t size;
    int fd = STDOUT_FILENO, rc;

    if (out != NULL) {
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.part", out) >= sizeof tmp)
            return s_usage_err("-o: name too long%s", "");
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
            snprintf(err, sizeof err, "cannot create %.900s: %s", tmp, strerror(errno));
            return s_fail(err);
        }
    }
    rc = admin_stored_download(db, actor, kind, ref, s_sink_fd, &fd, &size, err, sizeof err);
    if (out != NULL) {
        if (rc == 0 && (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, out) != 0)) {
            snprintf(err, sizeof err, "cannot write %.900s: %s", out, strerror(errno));
            rc = -1;
        } else if (rc != 0) {
            close(fd);
        }
        if (rc != 0)
            unlink(tmp);
    }
    if (rc != 0)
        return s_fail(err);
    if (out != NULL)
        printf("downloaded %llu bytes to %s\n", (unsigned long long)size, out);
    return 0;
}

struct recon_print {
    bool json;
    json_t *diffs;
};

static void s_recon_cb(void *arg, const struct admin_reconcile_diff *d)
{
    struct recon_print *p = arg;

    if (p->json)
        json_array_append_new(p->diffs, json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "child", d->child,
                                                  "kind", d->kind, "what", d->what, "file_id",
                                                  d->file_id, "row_id", (json_int_t)d->row_id,
                                                  "detail", d->detail));
    else if (strcmp(d->what, "error") == 0)
        printf("%s %s: FAILED: %s\n", d->child, d->kind, d->detail);
    else
        printf("%s %s %s %s: %s\n", d->child, d->kind, d->what, d->file_id, d->detail);
    fflush(stdout);
}

static int s_reconcile(PGconn *db, bool json, const char *kind, const char *child,
                       const char *actor)
{
    struct recon_print p = { .json = json, .diffs = json_array() };
    struct admin_reconcile_totals t;
    char err[1024];
    int rc = admin_reconcile(db, actor, child, kind, false, s_recon_cb, &p, &t, err, sizeof err);

    if (json) {
        json_t *o = json_pack("{s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "differences", p.diffs,
                              "totals", "children", (json_int_t)t.children, "failed",
                              (json_int_t)t.failed, "files", (json_int_t)t.files, "no_file",
                              (json_int_t)t.no_file, "no_row", (json_int_t)t.no_row, "restored",
                              (json_int_t)t.restored);
        s_print_json(o);
        json_decref(o);
    } else {
        json_decref(p.diffs);
        printf("%s reconcile: %u children, %llu files listed, %llu rows without file, %llu files "
               "without row, %llu rows restored%s\n", kind, t.children,
               (unsigned long long)t.files, (unsigned long long)t.no_file,
               (unsigned long long)t.no_row, (unsigned long long)t.restored,
               t.failed ? "; some children failed" : "");
    }
    return rc == 0 ? 0 : s_fail(err);
}

bool cmd_quarantine_handles(const char *sub)
{
    static const char *const subs[] = { "search", "show", "download", "release", "delete",
                                        "reconcile" };
    for (size_t i = 0; i < ARRAY_LEN(subs); i++)
        if (strcmp(sub, subs[i]) == 0)
            return true;
    return false;
}

int cmd_quarantine(PGconn *db, bool json, const char *kind, int argc, char **argv)
{
    const char *sub = argv[0], *out = NULL;
    char actor[CLI_ACTOR_MAX], err[1024], msg[1024];
    bool quarantine = strcmp(kind, "quarantine") == 0;

    cli_actor(actor, sizeof actor);
    if (strcmp(sub, "search") == 0)
        return cli_stored_search(db, json, kind, argc - 1, argv + 1);
    if (strcmp(sub, "reconcile") == 0) {
        if (argc > 2)
            return s_usage_err("usage: portcullis %s reconcile [CHILD]", kind);
        return s_reconcile(db, json, kind, argc == 2 ? argv[1] : NULL, actor);
    }
    if (strcmp(sub, "download") == 0 && argc == 4 && strcmp(argv[2], "-o") == 0) {
        out = argv[3];
        argc = 2;
    }
    if (argc != 2)
        return s_usage_err("usage: portcullis %s show|download|release|delete ID "
                           "(download: [-o FILE])", kind);
    if (!admin_stored_ref_valid(argv[1]))
        return s_usage_err("'%.64s' is neither an index id (see search) nor a file id "
                           "(32 hex digits)", argv[1]);
    if (strcmp(sub, "show") == 0)
        return s_show(db, json, kind, argv[1], actor);
    if (strcmp(sub, "download") == 0)
        return s_download(db, kind, argv[1], out, actor);
    if (strcmp(sub, "release") == 0) {
        if (!quarantine)
            return s_usage_err("%s: only quarantined messages are released (an archived one "
                               "was delivered already)", kind);
        if (admin_stored_release(db, actor, argv[1], msg, sizeof msg, err, sizeof err) != 0)
            return s_fail(err);
        printf("%s\n", msg);
        return 0;
    }
    if (strcmp(sub, "delete") == 0) {
        if (admin_stored_delete(db, actor, kind, argv[1], msg, sizeof msg, err, sizeof err) != 0)
            return s_fail(err);
        printf("%s\n", msg);
        return 0;
    }
    return s_usage_err("unknown subcommand '%s'", sub);
}

void cmd_quarantine_usage(FILE *f)
{
    fprintf(f,
        "  quarantine search [--since T] [--until T] [--sender S] [--recipient R] [--subject S]\n"
        "            [--area A] [--child C] [--rule R] [--verdict [ENGINE:]V] [--state S]\n"
        "            [--limit N] [--after CURSOR] [--json]   search every child's quarantine\n"
        "  quarantine show ID [--json]          index entry and the message's headers\n"
        "  quarantine download ID [-o FILE]     the message file, byte for byte (stdout)\n"
        "  quarantine release ID                deliver onward (original envelope); file removed\n"
        "  quarantine delete ID                 remove the file; the index says deleted\n"
        "  quarantine reconcile [CHILD] [--json] compare files with the index, repair, report\n"
        "  archive search|show|download|delete|reconcile  the same for the archive\n"
        "  ID: the index id shown by search, or the file id (32 hex)\n");
}
