/* update: see update.h. Layout under state_dir/updates/<component>/:
 *   dl-<rand>.pkg            a download in progress (0600), removed after use
 *   <version>-<rand>.part/   an extraction in progress
 *   <version>-<rand>/        an installed set, never changed once complete
 *   installed                "<version>\n", replaced atomically after the swap
 * The component's directory (e.g. signature_dir) becomes a symlink to the installed set; a
 * real directory found there the first time is kept beside it as "<dir>.pre-update". The scan
 * service resolves the symlink once per load (av.c), so a load never mixes two sets. */
#include "manager/update.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "update_pkg.h"
#include "util.h"
#include "wire.h"

#define UPDATE_CONNECT_TIMEOUT_S 10     /* TCP + TLS set-up */
#define UPDATE_LOW_SPEED_BYTES 1024     /* a download slower than this (bytes/s) … */
#define UPDATE_LOW_SPEED_S 30           /* … for this long is abandoned */
#define UPDATE_DOWNLOAD_MAX_S 1800      /* whole download, whatever the speed */
#define UPDATE_URL_MAX 1024             /* bytes of a download address */
#define UPDATE_TOKEN_MAX 128            /* bytes of the bearer token */
#define UPDATE_PIN_MAX 128              /* bytes of "sha256//<base64>" */
#define UPDATE_WHY_MAX 512
#define UPDATE_DIR_MAX 1024            /* bytes of a component directory path (checked at start) */

struct want {
    bool set;
    char version[UPDATE_VERSION_MAX + 1], url[UPDATE_URL_MAX], sha256[UPDATE_HEX_LEN + 1];
    uint8_t sig[UPDATE_SIG_LEN];
    uint64_t size;
};

struct comp {
    const char *name;
    char dir[UPDATE_DIR_MAX];       /* the symlink the scan service loads */
    char root[UPDATE_DIR_MAX];      /* state_dir/updates/<name> */
    char installed[UPDATE_VERSION_MAX + 1];
    struct want want;
    unsigned attempts;
    uint64_t next_at;               /* monotonic ms of the next attempt */
    char failure[UPDATE_WHY_MAX];   /* last failure still in force, "" none */
    char refused[UPDATE_VERSION_MAX + 1]; /* announced entry refused (logged once) */
};

struct job {
    struct update *u;
    int idx;
    struct want want;
    char root[UPDATE_DIR_MAX], dir[UPDATE_DIR_MAX], name[16];
    uint8_t pk[UPDATE_PK_LEN];
    char pin[UPDATE_PIN_MAX], token[UPDATE_TOKEN_MAX + 1];
    atomic_bool cancel;
    int fd;                         /* download file while writing */
    uint64_t got;
    bool ok;
    size_t nfiles;
    uint64_t bytes, ms;
    char why[UPDATE_WHY_MAX];
};

struct update {
    mreport_t *mrep;
    struct comp comps[UPDATE_COMPONENTS];
    uint8_t pk[UPDATE_PK_LEN];
    bool have_pk;
    char pin[UPDATE_PIN_MAX], token[UPDATE_TOKEN_MAX + 1];
    int pipe[2];
    struct job *running;
    pthread_t thread;
    char state[2 * UPDATE_WHY_MAX + 64];
};

/* --- files ----------------------------------------------------------------------------------- */

/* Removes a directory of plain files (what an extraction makes). */
static void s_rm_set(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char p[PATH_MAX];

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(path);
}

/* Everything in root but the installed record and the sets named keep1/keep2 (basenames). */
static void s_prune(const char *root, const char *keep1, const char *keep2)
{
    DIR *d = opendir(root);
    struct dirent *de;
    char p[PATH_MAX];

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "installed") == 0 ||
            strncmp(n, "installed.tmp", 13) == 0 || (keep1 != NULL && strcmp(n, keep1) == 0) ||
            (keep2 != NULL && strcmp(n, keep2) == 0))
            continue;
        snprintf(p, sizeof p, "%s/%s", root, n);
        s_rm_set(p);
    }
    closedir(d);
}

/* basename of the directory dir points to now, "" if not one of ours. */
static void s_current_target(const char *dir, const char *root, char *out, size_t outlen)
{
    char t[PATH_MAX];
    ssize_t n = readlink(dir, t, sizeof t - 1);
    size_t rl = strlen(root);

    out[0] = '\0';
    if (n <= 0)
        return;
    t[n] = '\0';
    if (strncmp(t, root, rl) == 0 && t[rl] == '/' && strchr(t + rl + 1, '/') == NULL)
        strlcpy_p(out, t + rl + 1, outlen);
}

/* Points dir at set atomically: a temporary symlink renamed over dir. A real directory at
 * dir (the administrator's set before the first update) moves aside first. */
static int s_swap(const char *dir, const char *set, char *why, size_t whylen)
{
    char tmp[PATH_MAX], aside[PATH_MAX], parent[PATH_MAX], rnd[17];
    struct stat st;

    if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(aside, sizeof aside, "%s.pre-update", dir);
        if (access(aside, F_OK) == 0) {
            random_hex(rnd, 4);
            snprintf(aside, sizeof aside, "%s.pre-update-%s", dir, rnd);
        }
        /* From here until the rename below a reload finds no directory and keeps its engine. */
        if (rename(dir, aside) != 0) {
            snprintf(why, whylen, "cannot move %.300s aside: %s", dir, strerror(errno));
            return -1;
        }
        log_info("update: %s moved to %s; %s now follows the installed updates", dir, aside, dir);
    }
    random_hex(rnd, 8);
    snprintf(tmp, sizeof tmp, "%s.link-%s", dir, rnd);
    if (symlink(set, tmp) != 0) {
        snprintf(why, whylen, "symlink %.300s: %s", tmp, strerror(errno));
        return -1;
    }
    if (rename(tmp, dir) != 0) {
        snprintf(why, whylen, "rename to %.300s: %s", dir, strerror(errno));
        unlink(tmp);
        return -1;
    }
    strlcpy_p(parent, dir, sizeof parent);
    fs_fsync_dir(dirname(parent));
    return 0;
}

/* --- the worker ------------------------------------------------------------------------------ */

static size_t s_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct job *j = arg;
    size_t n = size * nmemb, off = 0;

    /* Never more than announced: a server sending more is cut off here. */
    if (j->got + n > j->want.size) {
        snprintf(j->why, sizeof j->why, "size mismatch: more than the announced %" PRIu64 " bytes",
                 j->want.size);
        return 0;
    }
    while (off < n) {
        ssize_t w = write(j->fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(j->why, sizeof j->why, "cannot write the download: %s", strerror(errno));
            return 0;
        }
        off += (size_t)w;
    }
    j->got += n;
    return n;
}

static int s_progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct job *j = arg;

    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&j->cancel) ? 1 : 0;
}

static int s_download(struct job *j, const char *path)
{
    char errbuf[CURL_ERROR_SIZE] = "", auth[UPDATE_TOKEN_MAX + 32];
    struct curl_slist *hdr = NULL;
    CURL *c = curl_easy_init();
    CURLcode rc;

    if (c == NULL) {
        snprintf(j->why, sizeof j->why, "curl_easy_init failed");
        return -1;
    }
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", j->token);
    hdr = curl_slist_append(hdr, auth);
    curl_easy_setopt(c, CURLOPT_URL, j->want.url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* No CA: the parent's self-signed key is pinned (the CURVE link brought the pin). */
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, j->pin);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)j->want.size);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)UPDATE_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)UPDATE_LOW_SPEED_BYTES);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)UPDATE_LOW_SPEED_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)UPDATE_DOWNLOAD_MAX_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, s_progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, j);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "portcullis-child/" PORTCULLIS_VERSION);
    j->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        snprintf(j->why, sizeof j->why, "%.300s: %s", path, strerror(errno));
        rc = CURLE_WRITE_ERROR;
    } else {
        rc = curl_easy_perform(c);
        if (rc == CURLE_OK && fsync(j->fd) != 0)
            snprintf(j->why, sizeof j->why, "fsync of the download: %s", strerror(errno));
        close(j->fd);
        j->fd = -1;
    }
    if (rc != CURLE_OK && j->why[0] == '\0') {
        if (atomic_load(&j->cancel))
            snprintf(j->why, sizeof j->why, "superseded");
        else if (rc == CURLE_FILESIZE_EXCEEDED)
            snprintf(j->why, sizeof j->why, "size mismatch: server announced more than %" PRIu64
                     " bytes", j->want.size);
        else if (rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
            snprintf(j->why, sizeof j->why, "download refused: the server's TLS key does not "
                     "match the parent's pin");
        else
            snprintf(j->why, sizeof j->why, "download failed: %s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return j->why[0] == '\0' ? 0 : -1;
}

static void s_job_run(struct job *j)
{
    char pkg[PATH_MAX], part[PATH_MAX + 8], set[PATH_MAX], before[NAME_MAX + 1], rnd[17];
    char rec[UPDATE_VERSION_MAX + 2], recpath[PATH_MAX];
    uint64_t t0 = now_ms();

    random_hex(rnd, 8);
    snprintf(pkg, sizeof pkg, "%s/dl-%s.pkg", j->root, rnd);
    snprintf(set, sizeof set, "%s/%s-%s", j->root, j->want.version, rnd);
    snprintf(part, sizeof part, "%s.part", set);
    if (s_download(j, pkg) != 0)
        goto out;
    if (update_pkg_check_file(pkg, j->name, j->want.version, j->want.size, j->want.sha256,
                              j->want.sig, sizeof j->want.sig, j->pk, sizeof j->pk, j->why,
                              sizeof j->why) != 0)
        goto out;
    if (mkdir(part, 0755) != 0) {
        snprintf(j->why, sizeof j->why, "%.300s: %s", part, strerror(errno));
        goto out;
    }
    if (update_pkg_extract_file(pkg, part, &j->nfiles, &j->bytes, j->why, sizeof j->why) != 0 ||
        rename(part, set) != 0 || fs_fsync_dir(j->root) != 0) {
        if (j->why[0] == '\0')
            snprintf(j->why, sizeof j->why, "%.300s: %s", set, strerror(errno));
        s_rm_set(part);
        goto out;
    }
    if (atomic_load(&j->cancel)) {
        snprintf(j->why, sizeof j->why, "superseded");
        s_rm_set(set);
        goto out;
    }
    s_current_target(j->dir, j->root, before, sizeof before);
    if (s_swap(j->dir, set, j->why, sizeof j->why) != 0) {
        s_rm_set(set);
        goto out;
    }
    snprintf(rec, sizeof rec, "%s\n", j->want.version);
    snprintf(recpath, sizeof recpath, "%s/installed", j->root);
    if (fs_write_atomic(recpath, rec, strlen(rec), 0600, j->why, sizeof j->why) != 0)
        log_err("update %s %s installed but not recorded: %s", j->name, j->want.version, j->why);
    j->why[0] = '\0';
    /* The set in force and the one before stay: a load begun a moment ago may still read it. */
    s_prune(j->root, strrchr(set, '/') + 1, before[0] != '\0' ? before : NULL);
    j->ok = true;
out:
    unlink(pkg);
    j->ms = now_ms() - t0;
}

static void *s_thread(void *arg)
{
    struct job *j = arg;
    ssize_t w;

    s_job_run(j);
    w = write(j->u->pipe[1], &j, sizeof j); /* one pointer: atomic on a pipe */
    (void)w;
    return NULL;
}

/* --- the manager's side ---------------------------------------------------------------------- */

static void s_state_refresh(update_t *u)
{
    size_t n = 0;

    u->state[0] = '\0';
    for (int i = 0; i < UPDATE_COMPONENTS; i++) {
        if (u->comps[i].failure[0] == '\0')
            continue;
        n += (size_t)snprintf(u->state + n, sizeof u->state - n, "%s%s", n > 0 ? "; " : "",
                              u->comps[i].failure);
        if (n >= sizeof u->state)
            break;
    }
    if (u->state[0] == '\0')
        strlcpy_p(u->state, "ok", sizeof u->state);
}

static void s_read_installed(struct comp *c)
{
    char path[PATH_MAX], err[256], *data;
    size_t len;

    snprintf(path, sizeof path, "%s/installed", c->root);
    if (fs_read_file(path, UPDATE_VERSION_MAX + 2, &data, &len, err, sizeof err) != 0)
        return;
    data[strcspn(data, "\n")] = '\0';
    if (update_pkg_version_valid(data))
        strlcpy_p(c->installed, data, sizeof c->installed);
    free(data);
}

/* Leftovers of a download or extraction cut short by a stop or a crash. */
static void s_clean_partial(const char *root)
{
    DIR *d = opendir(root);
    struct dirent *de;
    char p[PATH_MAX];

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "dl-", 3) == 0 ||
            (n > 5 && strcmp(de->d_name + n - 5, ".part") == 0)) {
            snprintf(p, sizeof p, "%s/%s", root, de->d_name);
            s_rm_set(p);
        }
    }
    closedir(d);
}

update_t *update_new(const struct update_dirs *d, mreport_t *mrep, char *err, size_t errlen)
{
    update_t *u = xcalloc(1, sizeof *u);
    const char *names[UPDATE_COMPONENTS] = { "clamav", "light" };
    const char *dirs[UPDATE_COMPONENTS] = { d->clamav_dir, d->light_dir };

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "update: curl_global_init failed");
        free(u);
        return NULL;
    }
    u->mrep = mrep;
    u->pipe[0] = u->pipe[1] = -1;
    if (pipe2(u->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "update: pipe: %s", strerror(errno));
        free(u);
        return NULL;
    }
    for (int i = 0; i < UPDATE_COMPONENTS; i++) {
        struct comp *c = &u->comps[i];
        c->name = names[i];
        if (strlen(dirs[i]) >= sizeof c->dir || strlen(d->state_dir) + 32 >= sizeof c->root) {
            snprintf(err, errlen, "update: directory paths longer than %d bytes", UPDATE_DIR_MAX - 32);
            update_free(&u);
            return NULL;
        }
        strlcpy_p(c->dir, dirs[i], sizeof c->dir);
        /* the directory's last component must not end in '/' for the symlink rename */
        for (size_t n = strlen(c->dir); n > 1 && c->dir[n - 1] == '/'; n--)
            c->dir[n - 1] = '\0';
        snprintf(c->root, sizeof c->root, "%s/updates/%s", d->state_dir, names[i]);
        if (fs_mkdir_p(c->root, 0755, err, errlen) != 0) {
            update_free(&u);
            return NULL;
        }
        s_clean_partial(c->root);
        s_read_installed(c);
        if (c->installed[0] != '\0')
            log_info("update component=%s installed version=%s", c->name, c->installed);
    }
    s_state_refresh(u);
    return u;
}

void update_free(update_t **up)
{
    update_t *u;

    if (up == NULL || *up == NULL)
        return;
    u = *up;
    if (u->running != NULL) {
        atomic_store(&u->running->cancel, true);
        pthread_join(u->thread, NULL);
        free(u->running);
    }
    if (u->pipe[0] >= 0)
        close(u->pipe[0]);
    if (u->pipe[1] >= 0)
        close(u->pipe[1]);
    free(u);
    curl_global_cleanup();
    *up = NULL;
}

int update_fd(const update_t *u) { return u != NULL ? u->pipe[0] : -1; }

static bool s_hex_ok(const char *s)
{
    if (s == NULL || strlen(s) != UPDATE_HEX_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return false;
    return true;
}

/* Why an announced entry cannot be used, or NULL. */
static const char *s_entry_problem(const update_t *u, const Portcullis__ComponentUpdate *e)
{
    if (!update_pkg_version_valid(e->version))
        return "bad version string";
    if (e->url == NULL || e->url[0] == '\0')
        return "no download address (the parent's HTTPS server is off: https_listen)";
    if (strncmp(e->url, "https://", 8) != 0 || strlen(e->url) >= UPDATE_URL_MAX)
        return "download address is not an https:// URL";
    if (!s_hex_ok(e->sha256))
        return "sha256 is not 64 hex digits";
    if (e->signature.len != UPDATE_SIG_LEN)
        return "signature is not 64 bytes";
    if (e->size == 0 || e->size > UPDATE_PKG_MAX)
        return "size out of range";
    if (!u->have_pk)
        return "no update public key in the configuration";
    if (strncmp(u->pin, "sha256//", 8) != 0)
        return "no TLS key pin in the configuration";
    return NULL;
}

void update_config(update_t *u, const Portcullis__ConfigSnapshot *snap)
{
    u->have_pk = snap->update_public_key.len == UPDATE_PK_LEN;
    if (u->have_pk)
        memcpy(u->pk, snap->update_public_key.data, UPDATE_PK_LEN);
    strlcpy_p(u->pin, snap->update_tls_pin != NULL && strlen(snap->update_tls_pin) < UPDATE_PIN_MAX
                          ? snap->update_tls_pin : "", sizeof u->pin);
    strlcpy_p(u->token, snap->update_token != NULL && strlen(snap->update_token) <= UPDATE_TOKEN_MAX
                            ? snap->update_token : "", sizeof u->token);
    for (int i = 0; i < UPDATE_COMPONENTS; i++) {
        struct comp *c = &u->comps[i];
        const Portcullis__ComponentUpdate *e = NULL;
        const char *problem;

        for (size_t k = 0; k < snap->n_updates; k++)
            if (snap->updates[k]->component != NULL &&
                strcmp(snap->updates[k]->component, c->name) == 0)
                e = snap->updates[k];
        if (e == NULL) {
            c->want.set = false; /* nothing announced: what is installed stays */
            c->failure[0] = '\0';
            continue;
        }
        if ((problem = s_entry_problem(u, e)) != NULL) {
            if (strcmp(c->refused, e->version != NULL ? e->version : "") != 0)
                log_err("update refused component=%s version=%s reason=\"%s\": keeping %s",
                        c->name, e->version != NULL ? e->version : "",
                        problem, c->installed[0] ? c->installed : "the patterns in place");
            strlcpy_p(c->refused, e->version != NULL ? e->version : "", sizeof c->refused);
            snprintf(c->failure, sizeof c->failure, "%s %.64s: %s", c->name,
                     e->version != NULL ? e->version : "", problem);
            c->want.set = false;
            continue;
        }
        c->refused[0] = '\0';
        /* Changed entries (a new version, or the same version served elsewhere) replace the
         * wanted one; a new version supersedes a pending retry at once. */
        if (!c->want.set || strcmp(c->want.version, e->version) != 0) {
            if (c->want.set && strcmp(c->want.version, c->installed) != 0)
                log_info("update component=%s version=%s supersedes version=%s", c->name,
                         e->version, c->want.version);
            c->attempts = 0;
            c->next_at = 0;
            c->failure[0] = '\0'; /* it was about a version no longer wanted */
            if (u->running != NULL && u->running->idx == i)
                atomic_store(&u->running->cancel, true);
        }
        c->want.set = true;
        strlcpy_p(c->want.version, e->version, sizeof c->want.version);
        strlcpy_p(c->want.url, e->url, sizeof c->want.url);
        strlcpy_p(c->want.sha256, e->sha256, sizeof c->want.sha256);
        memcpy(c->want.sig, e->signature.data, UPDATE_SIG_LEN);
        c->want.size = e->size;
    }
    s_state_refresh(u);
}

void update_config_file(update_t *u, const char *path)
{
    Portcullis__ConfigSnapshot *snap;
    char err[512], *data;
    size_t len;

    if (fs_read_file(path, WIRE_MSG_MAX, &data, &len, err, sizeof err) != 0)
        return;
    snap = portcullis__config_snapshot__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (snap == NULL)
        return;
    if (snap->n_updates <= WIRE_UPDATES_MAX)
        update_config(u, snap);
    portcullis__config_snapshot__free_unpacked(snap, NULL);
}

void update_tick(update_t *u)
{
    uint64_t now = now_ms();
    sigset_t all, old;

    if (u->running != NULL)
        return;
    for (int i = 0; i < UPDATE_COMPONENTS; i++) {
        struct comp *c = &u->comps[i];
        struct job *j;

        if (!c->want.set || strcmp(c->want.version, c->installed) == 0 || now < c->next_at)
            continue;
        j = xcalloc(1, sizeof *j);
        j->u = u;
        j->idx = i;
        j->want = c->want;
        j->fd = -1;
        strlcpy_p(j->root, c->root, sizeof j->root);
        strlcpy_p(j->dir, c->dir, sizeof j->dir);
        strlcpy_p(j->name, c->name, sizeof j->name);
        memcpy(j->pk, u->pk, sizeof j->pk);
        strlcpy_p(j->pin, u->pin, sizeof j->pin);
        strlcpy_p(j->token, u->token, sizeof j->token);
        atomic_init(&j->cancel, false);
        log_info("update download component=%s version=%s size=%" PRIu64 " attempt=%u url=%s",
                 c->name, c->want.version, c->want.size, c->attempts + 1, c->want.url);
        /* The worker takes no signals: the manager's self-pipe handler runs on its thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&u->thread, NULL, s_thread, j) != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            log_err("update: cannot start a download thread; trying again later");
            c->next_at = now + UPDATE_RETRY_MIN_MS;
            free(j);
            return;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        u->running = j;
        return;
    }
}

bool update_on_result(update_t *u, char *reason, size_t reasonlen)
{
    struct job *j = NULL;
    struct comp *c;
    bool installed = false;

    if (read(u->pipe[0], &j, sizeof j) != (ssize_t)sizeof j || j == NULL || j != u->running)
        return false;
    pthread_join(u->thread, NULL);
    u->running = NULL;
    c = &u->comps[j->idx];
    if (j->ok) {
        strlcpy_p(c->installed, j->want.version, sizeof c->installed);
        c->attempts = 0;
        c->failure[0] = '\0';
        log_info("update installed component=%s version=%s files=%zu bytes=%" PRIu64 " ms=%" PRIu64
                 " dir=%s", c->name, j->want.version, j->nfiles, j->bytes, j->ms, c->dir);
        mreport_event(u->mrep, "update", "info", false, NULL,
                      "component %s version %s installed (%zu files)", c->name, j->want.version,
                      j->nfiles);
        snprintf(reason, reasonlen, "update %s %s", c->name, j->want.version);
        installed = true;
    } else if (strcmp(j->why, "superseded") == 0 || !c->want.set ||
               strcmp(c->want.version, j->want.version) != 0) {
        log_info("update component=%s version=%s abandoned: superseded by version=%s", c->name,
                 j->want.version, c->want.set ? c->want.version : "(none)");
        c->next_at = 0;
    } else {
        uint64_t delay = UPDATE_RETRY_MIN_MS;
        for (unsigned k = 0; k < c->attempts && delay < UPDATE_RETRY_MAX_MS; k++)
            delay *= 2;
        if (delay > UPDATE_RETRY_MAX_MS)
            delay = UPDATE_RETRY_MAX_MS;
        c->attempts++;
        c->next_at = now_ms() + delay;
        log_err("update failed component=%s version=%s reason=\"%s\" attempt=%u retry_in_ms=%" PRIu64
                ": keeping %s", c->name, j->want.version, j->why, c->attempts, delay,
                c->installed[0] ? c->installed : "the patterns in place");
        mreport_event(u->mrep, "update", "error", false, NULL,
                      "component %s version %s refused: %s (attempt %u, next in %" PRIu64 " s)",
                      c->name, j->want.version, j->why, c->attempts, delay / 1000);
        snprintf(c->failure, sizeof c->failure, "%s %s: %.400s (retry in %" PRIu64 " s)", c->name,
                 j->want.version, j->why, delay / 1000);
    }
    free(j);
    s_state_refresh(u);
    return installed;
}

size_t update_patterns(const update_t *u, Portcullis__PatternVersion *pv,
                       Portcullis__PatternVersion **ptrs)
{
    size_t n = 0;

    for (int i = 0; i < UPDATE_COMPONENTS; i++) {
        if (u->comps[i].installed[0] == '\0')
            continue;
        portcullis__pattern_version__init(&pv[n]);
        pv[n].component = (char *)u->comps[i].name;
        pv[n].version = (char *)u->comps[i].installed;
        ptrs[n] = &pv[n];
        n++;
    }
    return n;
}

const char *update_state(const update_t *u) { return u->state; }
