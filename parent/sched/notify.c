/* notify: see notify.h. One thread, one PGconn (LISTEN portcullis_notify and
 * portcullis_config), libcurl easy handles with hard timeouts: a slow or absent mail server
 * delays only other notifications, never the cluster loop. */
#include "sched/notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "db/db.h"
#include "log.h"
#include "mailaddr.h"
#include "settings.h"
#include "util.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define NOTIFY_DB_RETRY_MIN_MS 1000
#define NOTIFY_DB_RETRY_MAX_MS 32000
#define NOTIFY_SUBJECT_WORD 45 /* input bytes per RFC 2047 encoded word (60 base64 chars) */

struct notifier {
    char *dsn;
    pthread_t thread;
    bool started;
    int stop_pipe[2];
    atomic_bool stop;
    PGconn *db;
    unsigned db_backoff_ms;
    uint64_t db_retry_at;
    char hostname[256];
};

unsigned notify_backoff_s(unsigned attempts)
{
    unsigned s = NOTIFY_RETRY_MIN_S;

    for (unsigned i = 1; i < attempts && s < NOTIFY_RETRY_MAX_S; i++)
        s *= 2;
    return s > NOTIFY_RETRY_MAX_S ? NOTIFY_RETRY_MAX_S : s;
}

/* --- the message -------------------------------------------------------------------------- */

static size_t s_utf8_len(const unsigned char *p, size_t n)
{
    size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
                 : (p[0] & 0xf8) == 0xf0 ? 4 : 1;
    return len <= n ? len : n;
}

static void s_subject(FILE *f, const char *subject)
{
    char clean[256];
    size_t n = 0;
    bool ascii = true;

    for (const unsigned char *p = (const unsigned char *)subject; *p && n < sizeof clean - 1; p++) {
        clean[n++] = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p; /* no header injection */
        if (*p >= 0x80)
            ascii = false;
    }
    clean[n] = '\0';
    fputs("Subject: ", f);
    if (ascii) {
        fputs(clean, f);
    } else {
        /* Encoded words never split a UTF-8 sequence (RFC 2047 §5). */
        for (size_t i = 0; i < n;) {
            size_t take = 0;
            char b64[sodium_base64_ENCODED_LEN(NOTIFY_SUBJECT_WORD + 4,
                                               sodium_base64_VARIANT_ORIGINAL)];
            while (i + take < n) {
                size_t l = s_utf8_len((const unsigned char *)clean + i + take, n - i - take);
                if (take + l > NOTIFY_SUBJECT_WORD)
                    break;
                take += l;
            }
            sodium_bin2base64(b64, sizeof b64, (const unsigned char *)clean + i, take,
                              sodium_base64_VARIANT_ORIGINAL);
            fprintf(f, "%s=?UTF-8?B?%s?=", i == 0 ? "" : "\r\n ", b64);
            i += take;
        }
    }
    fputs("\r\n", f);
}

char *notify_format(const char *from, const char *to_list, const char *subject, const char *body,
                    time_t date, const char *message_id)
{
    char *out = NULL, when[64];
    size_t outlen = 0, col = 0;
    struct tm tm;
    FILE *f = open_memstream(&out, &outlen);

    if (f == NULL)
        fatal("open_memstream: %s", strerror(errno));
    gmtime_r(&date, &tm);
    strftime(when, sizeof when, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    fprintf(f, "From: Portcullis <%s>\r\nTo: %s\r\n", from, to_list);
    s_subject(f, subject);
    fprintf(f, "Date: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n"
               "Auto-Submitted: auto-generated\r\n\r\n", when, message_id);
    for (const char *p = body; *p; p++) {
        if (*p == '\r')
            continue;
        if (*p == '\n' || col >= NOTIFY_LINE_MAX) {
            fputs("\r\n", f);
            col = 0;
            if (*p == '\n')
                continue;
        }
        fputc(*p, f);
        col++;
    }
    fputs("\r\n", f);
    fclose(f);
    return out;
}

/* --- sending ------------------------------------------------------------------------------ */

struct upload {
    const char *data;
    size_t len, off;
};

static size_t s_read(char *buf, size_t size, size_t nitems, void *arg)
{
    struct upload *u = arg;
    size_t n = size * nitems;

    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

static int s_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    notifier_t *n = arg;

    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&n->stop) ? 1 : 0; /* stopping: abandon, the row is retried later */
}

static int s_send(notifier_t *n, const settings_t *s, char addrs[][MAILADDR_MAX + 1],
                  size_t naddrs, const char *msg, char *err, size_t errlen)
{
    char cerr[CURL_ERROR_SIZE] = "", from[MAILADDR_MAX + 3];
    struct upload u = { .data = msg, .len = strlen(msg) };
    struct curl_slist *rcpt = NULL;
    CURL *h = curl_easy_init();
    CURLcode rc;
    long code = 0;

    if (h == NULL) {
        snprintf(err, errlen, "libcurl could not make a handle");
        return -1;
    }
    for (size_t i = 0; i < naddrs; i++) {
        char b[MAILADDR_MAX + 3];
        snprintf(b, sizeof b, "<%.*s>", MAILADDR_MAX, addrs[i]);
        rcpt = curl_slist_append(rcpt, b);
    }
    snprintf(from, sizeof from, "<%s>", settings_str(s, SETTING_NOTIFY_FROM));
    curl_easy_setopt(h, CURLOPT_URL, settings_str(s, SETTING_NOTIFY_SMTP_URL));
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, s_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)u.len);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)NOTIFY_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)NOTIFY_SEND_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, s_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, n);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK)
        snprintf(err, errlen, "%s (last SMTP reply %ld)", cerr[0] ? cerr : curl_easy_strerror(rc),
                 code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
    return rc == CURLE_OK ? 0 : -1;
}

/* --- the queue ---------------------------------------------------------------------------- */

static void s_db_lost(notifier_t *n, const char *why)
{
    log_warn("notifier: database connection lost (%s); reconnecting in %u ms", why,
             n->db_backoff_ms);
    db_close(&n->db);
    n->db_retry_at = now_ms() + n->db_backoff_ms;
    n->db_backoff_ms = n->db_backoff_ms * 2 > NOTIFY_DB_RETRY_MAX_MS ? NOTIFY_DB_RETRY_MAX_MS
                                                                     : n->db_backoff_ms * 2;
}

static void s_connect(notifier_t *n)
{
    char err[512];

    n->db = db_connect(n->dsn, err, sizeof err);
    if (n->db == NULL ||
        db_exec(n->db, "LISTEN portcullis_notify", 0, NULL, err, sizeof err) != 0 ||
        db_exec(n->db, "LISTEN portcullis_config", 0, NULL, err, sizeof err) != 0) {
        s_db_lost(n, err);
        return;
    }
    n->db_backoff_ms = NOTIFY_DB_RETRY_MIN_MS;
}

static void s_mark(notifier_t *n, const char *sql, int np, const char *const *p)
{
    char err[512];

    if (db_exec(n->db, sql, np, p, err, sizeof err) != 0)
        log_err("notifier: %s", err);
}

/* One row: the mail, then its new state. */
static void s_one(notifier_t *n, const settings_t *s, PGresult *r, int i)
{
    const char *id = PQgetvalue(r, i, 0), *subject = PQgetvalue(r, i, 1);
    const char *child = PQgetvalue(r, i, 4), *created = PQgetvalue(r, i, 5);
    const char *event = PQgetvalue(r, i, 6);
    char addrs[MAILADDR_LIST_MAX][MAILADDR_MAX + 1], err[768] = "", msgid[400], delay[16];
    char attempts_txt[16], maxtxt[16];
    const char *list = settings_str(s, SETTING_NOTIFY_ADMIN_ADDRESS);
    size_t naddrs = 0;
    unsigned attempts = (unsigned)strtoul(PQgetvalue(r, i, 3), NULL, 10) + 1;
    char *body, *msg;

    if (mailaddr_list_split(list, addrs, MAILADDR_LIST_MAX, &naddrs, err, sizeof err) != 0 ||
        naddrs == 0) {
        const char *p[] = { id, naddrs == 0 && err[0] == '\0' ? "notify.admin_address is empty"
                                                               : err };
        log_info("notification id=%s not mailed: %s (subject \"%s\")", id, p[1], subject);
        s_mark(n, "UPDATE notifications SET state = 'skipped', last_error = $2 "
                  "WHERE id = $1::bigint", 2, p);
        return;
    }
    if (asprintf(&body, "%s\n\nChild:  %s\nTime:   %s\nEvent:  %s%s\n\n-- \nPortcullis parent on %s. "
                        "Recipients: notify.admin_address (portcullis settings get notify).\n",
                 PQgetvalue(r, i, 2), child[0] ? child : "-", created, event[0] ? "#" : "-",
                 event, n->hostname) < 0)
        fatal("out of memory");
    {
        char rnd[17];
        random_hex(rnd, 8);
        snprintf(msgid, sizeof msgid, "notify-%s.%s@%s", id, rnd, n->hostname);
    }
    msg = notify_format(settings_str(s, SETTING_NOTIFY_FROM), list, subject, body, time(NULL),
                        msgid);
    free(body);
    if (s_send(n, s, addrs, naddrs, msg, err, sizeof err) == 0) {
        const char *p[] = { id, list };
        log_info("notification sent id=%s to=%s subject=\"%s\"", id, list, subject);
        s_mark(n, "UPDATE notifications SET state = 'sent', sent_at = now(), "
                  "attempts = attempts + 1, recipients = $2, last_error = NULL "
                  "WHERE id = $1::bigint", 2, p);
    } else {
        snprintf(delay, sizeof delay, "%u", notify_backoff_s(attempts));
        snprintf(attempts_txt, sizeof attempts_txt, "%u", attempts);
        snprintf(maxtxt, sizeof maxtxt, "%u", (unsigned)NOTIFY_ATTEMPTS_MAX);
        const char *p[] = { id, err, delay, maxtxt };
        if (attempts >= NOTIFY_ATTEMPTS_MAX)
            log_err("notification id=%s given up after %s attempts: %s", id, attempts_txt, err);
        else
            log_warn("notification id=%s not sent (attempt %s, next in %s s) via %s: %s", id,
                     attempts_txt, delay, settings_str(s, SETTING_NOTIFY_SMTP_URL), err);
        s_mark(n, "UPDATE notifications SET attempts = attempts + 1, last_error = $2, "
                  "next_attempt_at = now() + make_interval(secs => $3::int), "
                  "state = CASE WHEN attempts + 1 >= $4::int THEN 'failed' ELSE 'pending' END "
                  "WHERE id = $1::bigint", 4, p);
    }
    free(msg);
}

/* Sends what is due; true if a full batch was taken (more may be waiting). */
static bool s_sweep(notifier_t *n)
{
    char err[512];
    settings_t *s;
    PGresult *r;
    int rows;

    s = admin_settings_effective(n->db, err, sizeof err);
    if (s == NULL) {
        s_db_lost(n, err);
        return false;
    }
    r = db_query(n->db,
                 "SELECT n.id, n.subject, n.body, n.attempts, coalesce(c.name, ''), "
                 " to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                 " coalesce(n.event_id::text, '') "
                 "FROM notifications n LEFT JOIN children c ON c.id = n.child_id "
                 "WHERE n.state = 'pending' AND n.next_attempt_at <= now() "
                 "ORDER BY n.id LIMIT " STR(NOTIFY_BATCH),
                 0, NULL, err, sizeof err);
    if (r == NULL) {
        settings_free(&s);
        s_db_lost(n, err);
        return false;
    }
    rows = PQntuples(r);
    for (int i = 0; i < rows && !atomic_load(&n->stop) && n->db != NULL; i++)
        s_one(n, s, r, i);
    PQclear(r);
    settings_free(&s);
    return rows == NOTIFY_BATCH;
}

static void *s_main(void *arg)
{
    notifier_t *n = arg;
    uint64_t next_sweep = 0;

    while (!atomic_load(&n->stop)) {
        uint64_t now = now_ms(), until;
        struct pollfd p[2] = { { .fd = n->stop_pipe[0], .events = POLLIN }, { .fd = -1 } };
        bool sweep = false;

        if (n->db == NULL && now >= n->db_retry_at) {
            s_connect(n);
            next_sweep = now; /* whatever waited while the database was away */
        }
        if (n->db != NULL) {
            p[1].fd = PQsocket(n->db);
            p[1].events = POLLIN;
            until = next_sweep;
        } else {
            until = n->db_retry_at;
        }
        if (poll(p, 2, until > now ? (int)(until - now) : 0) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN)
            break;
        if (n->db != NULL && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
            PGnotify *nt;
            if (!PQconsumeInput(n->db)) {
                s_db_lost(n, PQerrorMessage(n->db));
                continue;
            }
            while ((nt = PQnotifies(n->db)) != NULL) {
                /* New configuration: the mail settings may have been mended — try again now. */
                if (strcmp(nt->relname, "portcullis_config") == 0)
                    s_mark(n, "UPDATE notifications SET next_attempt_at = now() "
                              "WHERE state = 'pending' AND next_attempt_at > now()", 0, NULL);
                PQfreemem(nt);
                sweep = true;
            }
        }
        if (n->db != NULL && (sweep || now_ms() >= next_sweep))
            next_sweep = now_ms() + (s_sweep(n) ? 0 : NOTIFY_SWEEP_MS);
    }
    db_close(&n->db);
    return NULL;
}

notifier_t *notifier_start(const char *dsn, char *err, size_t errlen)
{
    notifier_t *n = xcalloc(1, sizeof *n);
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    n->dsn = xstrdup(dsn);
    n->db_backoff_ms = NOTIFY_DB_RETRY_MIN_MS;
    atomic_init(&n->stop, false);
    if (gethostname(n->hostname, sizeof n->hostname) != 0 || n->hostname[0] == '\0')
        strlcpy_p(n->hostname, "localhost", sizeof n->hostname);
    n->hostname[sizeof n->hostname - 1] = '\0';
    if (pipe2(n->stop_pipe, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "notifier: pipe: %s", strerror(errno));
        free(n->dsn);
        free(n);
        return NULL;
    }
    if ((rc = pthread_create(&n->thread, NULL, s_main, n)) != 0) {
        snprintf(err, errlen, "notifier: thread: %s", strerror(rc));
        close(n->stop_pipe[0]);
        close(n->stop_pipe[1]);
        free(n->dsn);
        free(n);
        return NULL;
    }
    n->started = true;
    return n;
}

void notifier_stop(notifier_t **np)
{
    notifier_t *n;

    if (np == NULL || (n = *np) == NULL)
        return;
    atomic_store(&n->stop, true);
    if (write(n->stop_pipe[1], "x", 1) < 0)
        log_warn("notifier: stop pipe: %s", strerror(errno));
    if (n->started)
        pthread_join(n->thread, NULL);
    close(n->stop_pipe[0]);
    close(n->stop_pipe[1]);
    free(n->dsn);
    free(n);
    *np = NULL;
}
