/* command: see command.h. Every handler runs on the manager's thread except the SMTP part of
 * a release (release.c); file removals, usage counters and removal reports all happen here,
 * so the manager's spool keeps its single writer. */
#include "manager/command.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "manager/release.h"
#include "storepath.h"
#include "usage.h"
#include "util.h"

#define COMMAND_ADDR_MAX 512        /* bytes of one envelope address in a release */
#define COMMAND_ERR_MAX 1024

struct handler {
    char kind[32];
    command_handler_fn fn;
    void *arg;
};

/* An answer kept so that a repeated request id gets the same answer, not a second action. */
struct recent {
    uint64_t id;
    bool ok;
    char error[COMMAND_ERR_MAX];
    char *detail;
};

struct command {
    struct command_conf conf;
    mreport_t *mrep;
    command_send_fn send;
    void *arg;
    releaser_t *rel;
    usage_t *usage[2];                 /* quarantine, archive: opened at the first removal */
    struct handler handlers[COMMAND_HANDLERS_MAX];
    size_t nhandlers;
    struct recent recent[COMMAND_RECENT];
    unsigned recent_head;
};

/* --- replies ------------------------------------------------------------------------------ */

static void s_remember(command_t *c, uint64_t id, bool ok, const char *error, const char *detail)
{
    struct recent *r = &c->recent[c->recent_head];

    c->recent_head = (c->recent_head + 1) % COMMAND_RECENT;
    free(r->detail);
    r->id = id;
    r->ok = ok;
    strlcpy_p(r->error, error != NULL ? error : "", sizeof r->error);
    r->detail = detail != NULL ? xstrdup(detail) : NULL;
}

static void s_send(command_t *c, const Portcullis__CommandReply *r)
{
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    env.body_case = PORTCULLIS__ENVELOPE__BODY_COMMAND_REPLY;
    env.command_reply = (Portcullis__CommandReply *)r;
    if (c->send(c->arg, &env) != 0)
        log_warn("command id=%" PRIu64 ": answer not sent (link down); the parent times out "
                 "and the operation can be retried", r->id);
}

void command_reply(command_t *c, uint64_t id, bool ok, const char *error, const char *detail)
{
    Portcullis__CommandReply r = PORTCULLIS__COMMAND_REPLY__INIT;

    r.id = id;
    r.ok = ok;
    r.error = (char *)(ok || error == NULL ? "" : error);
    r.detail = (char *)(detail != NULL ? detail : "");
    s_remember(c, id, ok, r.error, r.detail);
    s_send(c, &r);
}

/* --- stored files ------------------------------------------------------------------------- */

/* snprintf for paths: false (and the path unusable) if it did not fit. */
static bool s_path(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool s_path(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    int w;

    va_start(ap, fmt);
    w = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    return w >= 0 && (size_t)w < n;
}

static int s_store_index(const char *store)
{
    if (store != NULL && strcmp(store, "quarantine") == 0)
        return 0;
    if (store != NULL && strcmp(store, "archive") == 0)
        return 1;
    return -1;
}

static const char *s_base(const command_t *c, int store)
{
    return store == 0 ? c->conf.quarantine_dir : c->conf.archive_dir;
}

static bool s_regular(const char *path, uint64_t *size)
{
    struct stat st;

    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    if (size != NULL)
        *size = (uint64_t)st.st_size;
    return true;
}

/* Finds <base>/<area-dir>/<bucket>/<file_id>.eml: first where the index says, then by a
 * search bounded by COMMAND_SEARCH_MAX entries (an area renamed, a bucket unknown). Every
 * name used is validated, so the path stays under base. 0 found, 1 not found, -1 error. */
static int s_locate(const char *base, const Portcullis__Command *cmd, char *path, size_t plen,
                    char *err, size_t errlen)
{
    char adir[STOREPATH_AREA_DIR_MAX + 1];
    bool bucket_ok = storepath_bucket_valid(cmd->bucket);
    unsigned visited = 0;
    DIR *top;
    struct dirent *de;
    int rc = 1;

    if (!storepath_file_id_valid(cmd->file_id)) {
        snprintf(err, errlen, "'%.64s' is not a file id (32 lowercase hex digits)",
                 cmd->file_id != NULL ? cmd->file_id : "");
        return -1;
    }
    if (cmd->area != NULL && cmd->area[0] != '\0' && bucket_ok) {
        storepath_area_dir(cmd->area, adir, sizeof adir);
        if (s_path(path, plen, "%s/%s/%s/%s.eml", base, adir, cmd->bucket, cmd->file_id) &&
            s_regular(path, NULL))
            return 0;
    }
    if ((top = opendir(base)) == NULL) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "cannot read %s: %s", base, strerror(errno));
        return -1;
    }
    while (rc == 1 && (de = readdir(top)) != NULL && visited < COMMAND_SEARCH_MAX) {
        visited++;
        if (!storepath_area_dir_valid(de->d_name))
            continue;
        if (bucket_ok) {
            if (s_path(path, plen, "%s/%s/%s/%s.eml", base, de->d_name, cmd->bucket,
                       cmd->file_id) && s_regular(path, NULL))
                rc = 0;
            continue;
        }
        char sub[4096];
        DIR *d;
        struct dirent *be;
        if (!s_path(sub, sizeof sub, "%s/%s", base, de->d_name) || (d = opendir(sub)) == NULL)
            continue;
        while (rc == 1 && (be = readdir(d)) != NULL && visited < COMMAND_SEARCH_MAX) {
            visited++;
            if (!storepath_bucket_valid(be->d_name))
                continue;
            if (s_path(path, plen, "%s/%s/%s.eml", sub, be->d_name, cmd->file_id) &&
                s_regular(path, NULL))
                rc = 0;
        }
        closedir(d);
    }
    closedir(top);
    if (rc == 1 && visited >= COMMAND_SEARCH_MAX) {
        snprintf(err, errlen, "file %s not found within the first %d directory entries",
                 cmd->file_id, COMMAND_SEARCH_MAX);
        return -1;
    }
    return rc;
}

/* Unlinks a stored file and accounts for it: usage counters, a durable removal report. */
static int s_remove(command_t *c, int store, const char *path, const char *file_id,
                    const char *reason, uint64_t *size, char *err, size_t errlen)
{
    char dir[4096], uerr[256];
    const char *kind = store == 0 ? "quarantine" : "archive";

    *size = 0;
    s_regular(path, size);
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove file %s: %s", file_id, strerror(errno));
        return -1;
    }
    strlcpy_p(dir, path, sizeof dir);
    if (fs_fsync_dir(dirname(dir)) != 0)
        log_warn("fsync of the directory of %s: %s", path, strerror(errno));
    if (c->usage[store] == NULL &&
        (c->usage[store] = usage_open(s_base(c, store), uerr, sizeof uerr)) == NULL)
        log_warn("%s usage counters not updated: %s", kind, uerr);
    if (c->usage[store] != NULL)
        usage_add(c->usage[store], -(int64_t)*size, -1);
    if (mreport_removed(c->mrep, kind, file_id, reason) != 0 || mreport_sync(c->mrep) != 0)
        log_err("%s file %s %s, but the removal report was not written: the daily "
                "reconciliation will repair the index", kind, file_id, reason);
    return 0;
}

/* --- kinds ----------------------------------------------------------------------------------- */

static void s_json_reply(Portcullis__CommandReply *r, json_t *detail)
{
    char *t = json_dumps(detail, JSON_COMPACT);
    json_decref(detail);
    r->detail = t; /* freed by the caller (s_finish) */
}

static void s_delete(command_t *c, int store, const Portcullis__Command *cmd,
                     Portcullis__CommandReply *r, char *err, size_t errlen)
{
    char path[4096];
    uint64_t size;
    int rc = s_locate(s_base(c, store), cmd, path, sizeof path, err, errlen);

    if (rc == 1) {
        snprintf(err, errlen, "file %s is not in this child's %s", cmd->file_id, cmd->store);
        s_json_reply(r, json_pack("{s:b}", "not_found", 1));
        return;
    }
    if (rc < 0)
        return;
    if (c->rel != NULL && releaser_busy(c->rel, path)) {
        snprintf(err, errlen, "file %s is being released; try again when that has finished",
                 cmd->file_id);
        return;
    }
    if (s_remove(c, store, path, cmd->file_id, "deleted", &size, err, errlen) != 0)
        return;
    r->ok = true;
    s_json_reply(r, json_pack("{s:I}", "size", (json_int_t)size));
}

static void s_fetch(command_t *c, int store, const Portcullis__Command *cmd,
                    Portcullis__CommandReply *r, char *err, size_t errlen)
{
    char path[4096];
    struct stat st;
    size_t want = cmd->length > 0 && cmd->length < COMMAND_FETCH_CHUNK ? cmd->length
                                                                       : COMMAND_FETCH_CHUNK;
    int fd, rc = s_locate(s_base(c, store), cmd, path, sizeof path, err, errlen);
    ssize_t n;

    if (rc == 1) {
        snprintf(err, errlen, "file %s is not in this child's %s", cmd->file_id, cmd->store);
        s_json_reply(r, json_pack("{s:b}", "not_found", 1));
        return;
    }
    if (rc < 0)
        return;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read file %s: %s", cmd->file_id, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    r->total_size = (uint64_t)st.st_size;
    if (cmd->offset < (uint64_t)st.st_size) {
        if ((uint64_t)st.st_size - cmd->offset < want)
            want = (size_t)((uint64_t)st.st_size - cmd->offset);
        r->data.data = xmalloc(want);
        do
            n = pread(fd, r->data.data, want, (off_t)cmd->offset);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            snprintf(err, errlen, "cannot read file %s: %s", cmd->file_id, strerror(errno));
            close(fd);
            return;
        }
        r->data.len = (size_t)n;
    }
    close(fd);
    r->ok = true;
}

static bool s_addr_ok(const char *a, bool empty_ok)
{
    size_t n = a != NULL ? strlen(a) : 0;

    if (n == 0)
        return empty_ok;
    if (n > COMMAND_ADDR_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= ' ' || *p == '<' || *p == '>' || *p == 0x7f)
            return false;
    return true;
}

/* 0: queued (answered from command_tick); -1: answer now with err. */
static int s_release(command_t *c, int store, const Portcullis__Command *cmd, char *err,
                     size_t errlen)
{
    struct release_job *j;
    int rc;

    if (cmd->n_recipients == 0 || !s_addr_ok(cmd->sender, true)) {
        snprintf(err, errlen, cmd->n_recipients == 0 ? "release needs the original recipients"
                                                     : "release: the sender is not an address");
        return -1;
    }
    for (size_t i = 0; i < cmd->n_recipients; i++) {
        if (!s_addr_ok(cmd->recipients[i], false)) {
            snprintf(err, errlen, "release: recipient %zu is not an address", i + 1);
            return -1;
        }
    }
    j = xcalloc(1, sizeof *j);
    rc = s_locate(s_base(c, store), cmd, j->path, sizeof j->path, err, errlen);
    if (rc != 0 || releaser_busy(c->rel, j->path)) {
        if (rc == 1)
            snprintf(err, errlen, "file %s is not in this child's %s", cmd->file_id, cmd->store);
        else if (rc == 0)
            snprintf(err, errlen, "file %s is already being released", cmd->file_id);
        free(j);
        return -1;
    }
    j->id = cmd->id;
    strlcpy_p(j->file_id, cmd->file_id, sizeof j->file_id);
    strlcpy_p(j->kind, store == 0 ? "quarantine" : "archive", sizeof j->kind);
    j->sender = xstrdup(cmd->sender != NULL ? cmd->sender : "");
    j->rcpts = xcalloc(cmd->n_recipients, sizeof *j->rcpts);
    for (size_t i = 0; i < cmd->n_recipients; i++)
        j->rcpts[i] = xstrdup(cmd->recipients[i]);
    j->nrcpts = cmd->n_recipients;
    j->timeout_s = (int)(cmd->timeout_ms / 4000);
    if (j->timeout_s < RELEASE_TIMEOUT_MIN_S)
        j->timeout_s = RELEASE_TIMEOUT_MIN_S;
    if (releaser_submit(c->rel, j, COMMAND_RELEASE_QUEUE_MAX) != 0) {
        snprintf(err, errlen, "%d releases are already waiting; try again shortly",
                 COMMAND_RELEASE_QUEUE_MAX);
        release_job_free(&j);
        return -1;
    }
    log_info("command id=%" PRIu64 " release %s %s to %zu recipient(s): queued", cmd->id,
             j->kind, cmd->file_id, cmd->n_recipients);
    return 0;
}

void command_tick(command_t *c)
{
    struct release_job *j;

    while ((j = releaser_done(c->rel)) != NULL) {
        char err[COMMAND_ERR_MAX] = "";
        uint64_t size = 0;
        int store = s_store_index(j->kind);
        bool ok = j->ok && s_remove(c, store, j->path, j->file_id, "released", &size, err,
                                    sizeof err) == 0;
        if (!j->ok)
            strlcpy_p(err, j->error, sizeof err);
        if (ok) {
            json_t *d = json_pack("{s:I,s:I}", "size", (json_int_t)j->size, "recipients",
                                  (json_int_t)j->nrcpts);
            char *t = json_dumps(d, JSON_COMPACT);
            log_info("command id=%" PRIu64 " release %s %s: delivered downstream, file removed",
                     j->id, j->kind, j->file_id);
            command_reply(c, j->id, true, NULL, t);
            free(t);
            json_decref(d);
        } else {
            log_warn("command id=%" PRIu64 " release %s %s failed (file kept): %s", j->id,
                     j->kind, j->file_id, err);
            command_reply(c, j->id, false, err, NULL);
        }
        release_job_free(&j);
    }
}

/* --- reconcile: one page of the store's files in name order ---------------------------------- */

static int s_filter_dot(const struct dirent *d) { return d->d_name[0] != '.'; }

struct listing {
    char *buf;
    size_t len, cap;
    unsigned n, ignored;
    char last[STOREPATH_REL_MAX + 1];
};

static void s_list_add(struct listing *l, const char *rel, const struct stat *st)
{
    char line[STOREPATH_REL_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %" PRIu64 " %" PRIu64 "\n", rel, (uint64_t)st->st_size,
                     (uint64_t)st->st_mtim.tv_sec * 1000 + (uint64_t)st->st_mtim.tv_nsec / 1000000);

    if (l->len + (size_t)n > l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64 * 1024;
        l->buf = xrealloc(l->buf, l->cap);
    }
    memcpy(l->buf + l->len, line, (size_t)n);
    l->len += (size_t)n;
    l->n++;
    strlcpy_p(l->last, rel, sizeof l->last);
}

/* Lists the files of one bucket after the cursor's file id (when in the cursor's bucket). */
static void s_list_bucket(const char *dir, const char *adir, const char *bucket,
                          const char *after, struct listing *l)
{
    struct dirent **names;
    int n = scandir(dir, &names, s_filter_dot, alphasort);

    for (int i = 0; i < n; i++) {
        char fid[STOREPATH_FILE_ID_LEN + 1], rel[STOREPATH_REL_MAX + 1], path[4200];
        struct stat st;
        if (l->n < COMMAND_LIST_MAX) {
            if (!storepath_file_name(names[i]->d_name, fid) ||
                !s_path(path, sizeof path, "%s/%s", dir, names[i]->d_name) || lstat(path, &st) != 0 ||
                !S_ISREG(st.st_mode))
                l->ignored++;
            else if (after == NULL || strcmp(fid, after) > 0) {
                if (s_path(rel, sizeof rel, "%s/%s/%s", adir, bucket, fid))
                    s_list_add(l, rel, &st);
            }
        }
        free(names[i]);
    }
    free(names);
}

static void s_reconcile(command_t *c, int store, const Portcullis__Command *cmd,
                        Portcullis__CommandReply *r, char *err, size_t errlen)
{
    char ca[STOREPATH_AREA_DIR_MAX + 1] = "", cb[STOREPATH_BUCKET_LEN + 1] = "",
         cf[STOREPATH_FILE_ID_LEN + 1] = "";
    bool have_cursor = cmd->cursor != NULL && cmd->cursor[0] != '\0';
    const char *base = s_base(c, store);
    struct listing l = { 0 };
    struct dirent **areas;
    int na;

    if (have_cursor && storepath_rel_parse(cmd->cursor, ca, cb, cf) != 0) {
        snprintf(err, errlen, "reconcile: '%.80s' is not a listing cursor", cmd->cursor);
        return;
    }
    na = scandir(base, &areas, s_filter_dot, alphasort);
    if (na < 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", base, strerror(errno));
        return;
    }
    for (int i = 0; i < na; i++) {
        const char *ad = areas[i]->d_name;
        int cmpa = have_cursor ? strcmp(ad, ca) : 1;
        if (l.n < COMMAND_LIST_MAX && cmpa >= 0 && storepath_area_dir_valid(ad)) {
            char adpath[4200];
            struct dirent **buckets;
            int nb;
            nb = s_path(adpath, sizeof adpath, "%s/%s", base, ad)
                     ? scandir(adpath, &buckets, s_filter_dot, alphasort) : -1;
            for (int k = 0; k < nb; k++) {
                const char *b = buckets[k]->d_name;
                int cmpb = cmpa == 0 ? strcmp(b, cb) : 1;
                if (l.n < COMMAND_LIST_MAX && cmpb >= 0 && storepath_bucket_valid(b)) {
                    char bpath[4300];
                    if (s_path(bpath, sizeof bpath, "%s/%s", adpath, b))
                        s_list_bucket(bpath, ad, b, cmpb == 0 ? cf : NULL, &l);
                }
                free(buckets[k]);
            }
            if (nb >= 0)
                free(buckets);
        } else if (cmpa >= 0 && !storepath_area_dir_valid(ad)) {
            l.ignored++;
        }
        free(areas[i]);
    }
    if (na >= 0)
        free(areas);
    r->ok = true;
    r->data.data = (uint8_t *)l.buf;
    r->data.len = l.len;
    s_json_reply(r, json_pack("{s:I,s:I,s:s?}", "files", (json_int_t)l.n, "ignored",
                              (json_int_t)l.ignored, "next",
                              l.n >= COMMAND_LIST_MAX ? l.last : NULL));
}

/* --- dispatch ---------------------------------------------------------------------------------- */

void command_handle(command_t *c, const Portcullis__Command *cmd)
{
    Portcullis__CommandReply r = PORTCULLIS__COMMAND_REPLY__INIT;
    char err[COMMAND_ERR_MAX] = "";
    const char *kind = cmd->kind != NULL ? cmd->kind : "";
    int store = s_store_index(cmd->store);
    bool stored_op = strcmp(kind, "delete") == 0 || strcmp(kind, "fetch") == 0 ||
                     strcmp(kind, "release") == 0 || strcmp(kind, "reconcile") == 0;

    r.id = cmd->id;
    for (unsigned i = 0; i < COMMAND_RECENT; i++) {
        const struct recent *p = &c->recent[i];
        if (p->id == cmd->id && cmd->id != 0) {
            /* Sent again: the same answer, never the action twice. */
            r.ok = p->ok;
            r.error = (char *)p->error;
            r.detail = p->detail != NULL ? p->detail : "";
            s_send(c, &r);
            return;
        }
    }
    for (size_t i = 0; i < c->nhandlers; i++) {
        if (strcmp(c->handlers[i].kind, kind) == 0) {
            r.error = "";
            r.detail = "";
            if (c->handlers[i].fn(c->handlers[i].arg, cmd, &r) == 0)
                command_reply(c, r.id, r.ok, r.error, r.detail);
            return;
        }
    }
    if (!stored_op)
        snprintf(err, sizeof err, "this child does not know the command '%.32s'", kind);
    else if (store < 0)
        snprintf(err, sizeof err, "store must be 'quarantine' or 'archive'");
    else if (strcmp(kind, "delete") == 0)
        s_delete(c, store, cmd, &r, err, sizeof err);
    else if (strcmp(kind, "fetch") == 0)
        s_fetch(c, store, cmd, &r, err, sizeof err);
    else if (strcmp(kind, "reconcile") == 0)
        s_reconcile(c, store, cmd, &r, err, sizeof err);
    else if (s_release(c, store, cmd, err, sizeof err) == 0)
        return; /* answered when the worker is done */
    if (strcmp(kind, "fetch") != 0 && strcmp(kind, "reconcile") != 0)
        log_info("command id=%" PRIu64 " %s %s %s: %s", cmd->id, kind,
                 cmd->store != NULL ? cmd->store : "", cmd->file_id != NULL ? cmd->file_id : "",
                 r.ok ? "done" : err);
    else if (!r.ok)
        log_warn("command id=%" PRIu64 " %s %s failed: %s", cmd->id, kind,
                 cmd->file_id != NULL ? cmd->file_id : "", err);
    r.error = r.ok ? "" : err;
    if (r.detail == NULL)
        r.detail = "";
    if (strcmp(kind, "fetch") == 0 || strcmp(kind, "reconcile") == 0)
        s_send(c, &r); /* reads: nothing to remember, repeating them is harmless */
    else
        command_reply(c, r.id, r.ok, r.error, r.detail);
    if (r.detail[0] != '\0')
        free(r.detail);
    free(r.data.data);
}

/* --- life cycle -------------------------------------------------------------------------------- */

command_t *command_new(const struct command_conf *conf, mreport_t *mrep, command_send_fn send,
                       void *arg, char *err, size_t errlen)
{
    command_t *c;

    if (conf->quarantine_dir == NULL || conf->archive_dir == NULL || conf->downstream == NULL) {
        snprintf(err, errlen, "commands: store directories and downstream are required");
        return NULL;
    }
    c = xcalloc(1, sizeof *c);
    c->conf = *conf;
    c->mrep = mrep;
    c->send = send;
    c->arg = arg;
    c->rel = releaser_new(conf->downstream, conf->helo != NULL ? conf->helo : "localhost");
    return c;
}

void command_destroy(command_t **cp)
{
    command_t *c;

    if (cp == NULL || (c = *cp) == NULL)
        return;
    releaser_destroy(&c->rel);
    usage_close(&c->usage[0]);
    usage_close(&c->usage[1]);
    for (unsigned i = 0; i < COMMAND_RECENT; i++)
        free(c->recent[i].detail);
    free(c);
    *cp = NULL;
}

int command_register(command_t *c, const char *kind, command_handler_fn fn, void *arg)
{
    if (c->nhandlers == COMMAND_HANDLERS_MAX || strlen(kind) >= sizeof c->handlers[0].kind)
        return -1;
    strlcpy_p(c->handlers[c->nhandlers].kind, kind, sizeof c->handlers[0].kind);
    c->handlers[c->nhandlers].fn = fn;
    c->handlers[c->nhandlers].arg = arg;
    c->nhandlers++;
    return 0;
}
