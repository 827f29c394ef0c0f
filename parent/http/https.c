/* https: see https.h. One event base, one evhttp whose connections are OpenSSL bufferevents,
 * one PGconn, all owned by the thread that runs the loop; a 200 ms tick notices stop, retries
 * a bind that failed and reconnects the database with backoff (1 → 32 s). */
#include "http/https.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "netmatch.h"
#include "util.h"

#define HTTPS_TICK_MS 200
#define HTTPS_BIND_RETRY_MS 5000        /* a listen address in use is tried again this often */
#define HTTPS_BACKOFF_MIN_MS 1000       /* database reconnect delay, doubling … */
#define HTTPS_BACKOFF_MAX_MS 32000      /* … up to this */
#define HTTPS_LOG_INTERVAL_MS 10000     /* at most one error line per this interval */
#define HTTPS_CONNECT_TIMEOUT "3"       /* seconds libpq may take to connect (blocks the loop) */
#define HTTPS_STATEMENT_TIMEOUT "10s"
#define HTTPS_CERT_DAYS 3650            /* validity of the self-signed certificate */
#define HTTPS_LISTEN_MAX 300
#define HTTPS_ACCEPT_BACKOFF_MIN_MS 100  /* accept() failing (EMFILE …): listening pauses … */
#define HTTPS_ACCEPT_BACKOFF_MAX_MS 5000 /* … doubling up to this, instead of spinning */
#define HTTPS_DEFER_ACCEPT_S 10         /* the kernel holds a connection until its first bytes */
#define HTTPS_KEY_FILE "https.key"
#define HTTPS_CERT_FILE "https.crt"

struct route {
    char prefix[64];
    https_handler_fn fn;
    void *arg;
};

struct conn {
    struct evhttp_connection *evcon;
    https_close_fn on_close;
    void *arg;
};

/* One accepted connection's accounting (R8.8), hung on its SSL object: OpenSSL frees it with
 * the connection, whatever path closes it. Two references: the SSL object's and the pending
 * admission check's (s_admit), so that neither outlives the other's use. */
struct tls_conn {
    https_t *h;
    struct bufferevent *bev; /* NULL once the connection is gone */
    int refs;
    int addr;                /* index in h->addrs counted, -1 none */
    bool admitted;           /* counted in h->admitted */
};

struct addr_count {
    char addr[64];
    unsigned n;
};

struct https {
    char *dsn;
    char listen[HTTPS_LISTEN_MAX], host[HTTPS_LISTEN_MAX];
    uint16_t port;
    bool bound;
    uint64_t bind_at;
    char pin[HTTPS_PIN_MAX];
    SSL_CTX *ssl;
    struct event_base *base;
    struct evhttp *http;
    struct event *tick;
    atomic_int stop;
    pthread_t thread;
    bool threaded;

    PGconn *db;
    uint64_t retry_at, backoff_ms;
    uint64_t log_at;
    unsigned log_dropped;

    struct route routes[HTTPS_ROUTES_MAX];
    size_t nroutes;
    struct { https_close_fn fn; void *arg; } on_free[HTTPS_ROUTES_MAX];
    size_t non_free;
    struct conn conns[HTTPS_CONN_MAX];
    size_t nconns;

    /* R8.8: connections counted when accepted, in total and per client address */
    unsigned accepted;      /* open, admitted or not yet judged */
    unsigned admitted;      /* past s_admit: what the total cap bounds */
    struct addr_count addrs[HTTPS_CONN_MAX];
    size_t naddrs;
    struct evconnlistener *listener;
    uint64_t accept_backoff_ms, accept_resume_at;
};

static int s_tls_conn_idx = -1;

void https_log_limited(https_t *h, const char *fmt, ...)
{
    uint64_t now = now_ms();
    char line[1024];
    va_list ap;

    if (h->log_at != 0 && now - h->log_at < HTTPS_LOG_INTERVAL_MS) {
        h->log_dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (h->log_dropped > 0)
        log_warn("%s suppressed=%u", line, h->log_dropped);
    else
        log_warn("%s", line);
    h->log_at = now;
    h->log_dropped = 0;
}

/* --- TLS identity ---------------------------------------------------------------------------- */

static void s_ssl_err(char *err, size_t errlen, const char *what)
{
    char e[256];

    ERR_error_string_n(ERR_get_error(), e, sizeof e);
    snprintf(err, errlen, "https: %s: %s", what, e);
}

/* A fresh P-256 key and a self-signed certificate, key 0600 written before the certificate
 * (a certificate without its key is never left behind as the newer file). */
static int s_cert_make(const char *keypath, const char *certpath, char *err, size_t errlen)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    FILE *f = NULL;
    uint64_t serial;
    int fd, rc = -1;

    if (pkey == NULL || x == NULL) {
        s_ssl_err(err, errlen, "key generation");
        goto out;
    }
    RAND_bytes((unsigned char *)&serial, sizeof serial);
    serial &= 0x7fffffffffffffffull; /* positive */
    X509_set_version(x, 2);
    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)HTTPS_CERT_DAYS * 86400);
    X509_set_pubkey(x, pkey);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"portcullis-parent",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, pkey, EVP_sha256()) == 0) {
        s_ssl_err(err, errlen, "certificate signing");
        goto out;
    }
    fd = open(keypath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "https: %s: %s", keypath, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "https: %s: cannot write the key", keypath);
        goto out;
    }
    fclose(f);
    f = fopen(certpath, "we");
    if (f == NULL || PEM_write_X509(f, x) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        snprintf(err, errlen, "https: %s: cannot write the certificate", certpath);
        goto out;
    }
    log_info("https certificate created path=%s", certpath);
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
    return rc;
}

static int s_pin_of(X509 *x, char pin[HTTPS_PIN_MAX], char *err, size_t errlen)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE], b64[48]; /* 44 + NUL for 32 bytes */
    unsigned int mdlen = 0;
    int n = pk != NULL ? i2d_PUBKEY(pk, &der) : -1;

    if (n <= 0 || EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        s_ssl_err(err, errlen, "public key pin");
        return -1;
    }
    OPENSSL_free(der);
    if (mdlen != 32) {
        s_ssl_err(err, errlen, "public key pin");
        return -1;
    }
    EVP_EncodeBlock(b64, md, (int)mdlen);
    memcpy(pin, "sha256//", 8);
    memcpy(pin + 8, b64, 45); /* 44 characters and the NUL */
    return 0;
}

/* Loads (making on first use) the key and certificate; fills ctx when not NULL. */
static int s_identity(const char *state_dir, SSL_CTX *ctx, char pin[HTTPS_PIN_MAX], char *err,
                      size_t errlen)
{
    char keypath[4096], certpath[4096];
    struct stat st;
    X509 *x = NULL;
    FILE *f;
    int rc = -1;

    snprintf(keypath, sizeof keypath, "%s/%s", state_dir, HTTPS_KEY_FILE);
    snprintf(certpath, sizeof certpath, "%s/%s", state_dir, HTTPS_CERT_FILE);
    if (fs_mkdir_p(state_dir, 0700, err, errlen) != 0)
        return -1;
    if ((access(keypath, F_OK) != 0 || access(certpath, F_OK) != 0) &&
        s_cert_make(keypath, certpath, err, errlen) != 0)
        return -1;
    if (stat(keypath, &st) != 0 || (st.st_mode & 077) != 0) {
        snprintf(err, errlen, "https: %s: missing or readable by group or others: chmod 600 it",
                 keypath);
        return -1;
    }
    if ((f = fopen(certpath, "re")) == NULL || (x = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
        snprintf(err, errlen, "https: %s: not a PEM certificate", certpath);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    if (s_pin_of(x, pin, err, errlen) != 0)
        goto out;
    if (ctx != NULL && (SSL_CTX_use_certificate(ctx, x) != 1 ||
                        SSL_CTX_use_PrivateKey_file(ctx, keypath, SSL_FILETYPE_PEM) != 1 ||
                        SSL_CTX_check_private_key(ctx) != 1)) {
        s_ssl_err(err, errlen, "certificate and key");
        goto out;
    }
    rc = 0;
out:
    X509_free(x);
    return rc;
}

int https_tls_identity(const char *state_dir, char pin[HTTPS_PIN_MAX], char *err, size_t errlen)
{
    return s_identity(state_dir, NULL, pin, err, errlen);
}

/* parent.conf https_cert / https_key: an administrator's certificate (chain, leaf first) and
 * key. The pin children check is then that certificate's key. */
static int s_identity_given(const char *certpath, const char *keypath, SSL_CTX *ctx,
                            char pin[HTTPS_PIN_MAX], char *err, size_t errlen)
{
    struct stat st;
    X509 *x = NULL;
    FILE *f;
    int rc;

    if (stat(keypath, &st) != 0) {
        snprintf(err, errlen, "https_key %s: %s", keypath, strerror(errno));
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "https_key %s is readable by group or others: chmod 600 it",
                 keypath);
        return -1;
    }
    if ((f = fopen(certpath, "re")) == NULL) {
        snprintf(err, errlen, "https_cert %s: %s", certpath, strerror(errno));
        return -1;
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        snprintf(err, errlen, "https_cert %s: not a PEM certificate", certpath);
        return -1;
    }
    rc = s_pin_of(x, pin, err, errlen);
    X509_free(x);
    if (rc != 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, certpath) != 1) {
        s_ssl_err(err, errlen, "https_cert");
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, keypath, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        s_ssl_err(err, errlen, "https_key (is it the key of https_cert?)");
        return -1;
    }
    log_info("https certificate given cert=%s", certpath);
    return 0;
}

/* --- database --------------------------------------------------------------------------------- */

void https_db_lost(https_t *h, const char *why)
{
    char m[512];

    strlcpy_p(m, why, sizeof m);
    m[strcspn(m, "\r\n")] = '\0';
    https_log_limited(h, "https database unavailable error=\"%s\" retry_ms=%llu", m,
                      (unsigned long long)h->backoff_ms);
    PQfinish(h->db);
    h->db = NULL;
    h->retry_at = now_ms() + h->backoff_ms;
    h->backoff_ms = h->backoff_ms * 2 > HTTPS_BACKOFF_MAX_MS ? HTTPS_BACKOFF_MAX_MS : h->backoff_ms * 2;
}

static int s_db_connect(https_t *h)
{
    const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
    const char *vals[] = { h->dsn, HTTPS_CONNECT_TIMEOUT, "portcullis-https", NULL };

    PQfinish(h->db);
    h->db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(h->db) != CONNECTION_OK) {
        https_db_lost(h, PQerrorMessage(h->db));
        return -1;
    }
    PQclear(PQexec(h->db, "SET statement_timeout = '" HTTPS_STATEMENT_TIMEOUT "'"));
    if (h->backoff_ms > HTTPS_BACKOFF_MIN_MS)
        log_info("https database connected");
    h->backoff_ms = HTTPS_BACKOFF_MIN_MS;
    return 0;
}

PGconn *https_db(https_t *h)
{
    if (h->db != NULL && PQstatus(h->db) != CONNECTION_OK)
        s_db_connect(h); /* broken since the last request: try once now */
    else if (h->db == NULL && now_ms() >= h->retry_at)
        s_db_connect(h);
    return h->db;
}

PGconn *https_db_reconnect(https_t *h)
{
    s_db_connect(h);
    return h->db;
}

struct event_base *https_base(https_t *h) { return h->base; }
const char *https_pin(const https_t *h) { return h->pin; }

/* --- connections and routing ------------------------------------------------------------------ */

void https_reply_json(struct evhttp_request *req, int code, const char *reason, json_t *j)
{
    struct evbuffer *out = evbuffer_new();
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (text != NULL)
        evbuffer_add(out, text, strlen(text));
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
    free(text);
    json_decref(j);
}

void https_reply_error(struct evhttp_request *req, int code, const char *reason,
                       const char *message)
{
    /* escaped by jansson: messages may quote what the client sent */
    https_reply_json(req, code, reason, json_pack("{s:s}", "error", message));
}

static struct conn *s_conn_find(https_t *h, struct evhttp_connection *evcon)
{
    for (size_t i = 0; i < h->nconns; i++)
        if (h->conns[i].evcon == evcon)
            return &h->conns[i];
    return NULL;
}

static void s_on_close(struct evhttp_connection *evcon, void *arg)
{
    https_t *h = arg;
    struct conn *c = s_conn_find(h, evcon);

    if (c == NULL)
        return;
    if (c->on_close != NULL)
        c->on_close(c->arg);
    *c = h->conns[--h->nconns];
}

void https_conn_on_close(https_t *h, struct evhttp_request *req, https_close_fn fn, void *arg)
{
    struct conn *c = s_conn_find(h, evhttp_request_get_connection(req));

    if (c != NULL) {
        c->on_close = fn;
        c->arg = arg;
    }
}

void https_conn_forget(https_t *h, struct evhttp_connection *evcon)
{
    struct conn *c = s_conn_find(h, evcon);

    if (c != NULL) {
        c->on_close = NULL;
        c->arg = NULL;
    }
}

/* The table of connections with requests, for the handlers' close callbacks. */
static bool s_conn_admit(https_t *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);

    if (s_conn_find(h, evcon) != NULL)
        return true;
    if (h->nconns == HTTPS_CONN_MAX) { /* not reached: the accept count refuses first */
        https_log_limited(h, "https refused connection reason=\"over %d connections\"",
                          HTTPS_CONN_MAX);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        https_reply_error(req, 503, "Service Unavailable", "too many connections");
        return false;
    }
    h->conns[h->nconns++] = (struct conn){ .evcon = evcon };
    evhttp_connection_set_closecb(evcon, s_on_close, h);
    return true;
}

static void s_on_request(struct evhttp_request *req, void *arg)
{
    https_t *h = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const struct route *best = NULL;

    if (!s_conn_admit(h, req))
        return;
    for (size_t i = 0; path != NULL && i < h->nroutes; i++) {
        size_t n = strlen(h->routes[i].prefix);
        if (strncmp(path, h->routes[i].prefix, n) == 0 &&
            (best == NULL || n > strlen(best->prefix)))
            best = &h->routes[i];
    }
    if (best == NULL) {
        https_reply_error(req, 404, "Not Found", "no such resource");
        return;
    }
    best->fn(h, req, path + strlen(best->prefix), best->arg);
}

static void s_tls_conn_unref(struct tls_conn *tc)
{
    if (--tc->refs == 0)
        free(tc);
}

static void s_tls_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    struct tls_conn *tc = ptr;

    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (tc == NULL)
        return;
    tc->h->accepted--;
    if (tc->admitted)
        tc->h->admitted--;
    if (tc->addr >= 0 && --tc->h->addrs[tc->addr].n == 0)
        tc->h->addrs[tc->addr].addr[0] = '\0';
    tc->addr = -1;
    tc->bev = NULL;
    s_tls_conn_unref(tc);
}

/* Counts the address of a connection; false when it is over its cap. */
static bool s_addr_admit(https_t *h, struct tls_conn *tc, const char *addr)
{
    size_t i, free_slot = SIZE_MAX;

    for (i = 0; i < h->naddrs; i++) {
        if (strcmp(h->addrs[i].addr, addr) == 0)
            break;
        if (h->addrs[i].addr[0] == '\0' && free_slot == SIZE_MAX)
            free_slot = i;
    }
    if (i == h->naddrs) { /* a new address: a free slot, or a new one (≤ one a connection) */
        if (free_slot == SIZE_MAX && h->naddrs == HTTPS_CONN_MAX)
            return false;
        i = free_slot != SIZE_MAX ? free_slot : h->naddrs++;
        strlcpy_p(h->addrs[i].addr, addr, sizeof h->addrs[i].addr);
        h->addrs[i].n = 0;
    }
    if (h->addrs[i].n >= HTTPS_CONN_PER_ADDRESS_MAX) {
        if (h->addrs[i].n == 0)
            h->addrs[i].addr[0] = '\0';
        return false;
    }
    h->addrs[i].n++;
    tc->addr = (int)i;
    return true;
}

/* Right after the accept (the loop's next turn, when evhttp has given the connection its
 * socket): one over the total or over its address's cap is shut down at once, so that it
 * holds no file and no slot (R8.8). */
static void s_admit(evutil_socket_t unused, short what, void *arg)
{
    struct tls_conn *tc = arg;
    https_t *h = tc->h;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[64] = "unknown";
    evutil_socket_t fd;

    (void)unused;
    (void)what;
    if (tc->bev == NULL || (fd = bufferevent_getfd(tc->bev)) < 0) {
        s_tls_conn_unref(tc);
        return;
    }
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        netmatch_addr_text((struct sockaddr *)&ss, addr, sizeof addr);
    /* the address first: one address's flood is refused before it can fill the total */
    if (!s_addr_admit(h, tc, addr)) {
        https_log_limited(h, "https refused connection address=%s reason=\"over %d connections "
                          "from one address\"", addr, HTTPS_CONN_PER_ADDRESS_MAX);
        shutdown(fd, SHUT_RDWR); /* evhttp sees the end and frees the connection */
    } else if (h->admitted >= HTTPS_CONN_MAX) {
        https_log_limited(h, "https refused connection address=%s reason=\"over %d connections\"",
                          addr, HTTPS_CONN_MAX);
        shutdown(fd, SHUT_RDWR);
    } else {
        tc->admitted = true;
        h->admitted++;
    }
    s_tls_conn_unref(tc);
}

/* evhttp calls this for each connection it accepts: the count starts here (R8.8). */
static struct bufferevent *s_bevcb(struct event_base *base, void *arg)
{
    https_t *h = arg;
    SSL *ssl = SSL_new(h->ssl);
    struct bufferevent *bev;
    struct tls_conn *tc;

    if (ssl == NULL)
        return NULL;
    tc = xcalloc(1, sizeof *tc);
    tc->h = h;
    tc->addr = -1;
    tc->refs = 1;
    h->accepted++;
    h->accept_backoff_ms = 0; /* accepting works again */
    SSL_set_ex_data(ssl, s_tls_conn_idx, tc);
    bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL) {
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1); /* clients that just hang up */
        tc->bev = bev;
        tc->refs++;
        event_base_once(base, -1, EV_TIMEOUT, s_admit, tc, &(struct timeval){ 0, 0 });
    }
    return bev;
}

int https_route(https_t *h, const char *prefix, https_handler_fn fn, void *arg)
{
    if (h->nroutes == HTTPS_ROUTES_MAX || strlen(prefix) >= sizeof h->routes[0].prefix)
        return -1;
    strlcpy_p(h->routes[h->nroutes].prefix, prefix, sizeof h->routes[0].prefix);
    h->routes[h->nroutes].fn = fn;
    h->routes[h->nroutes].arg = arg;
    h->nroutes++;
    return 0;
}

int https_on_free(https_t *h, https_close_fn fn, void *arg)
{
    if (h->non_free == HTTPS_ROUTES_MAX)
        return -1;
    h->on_free[h->non_free].fn = fn;
    h->on_free[h->non_free].arg = arg;
    h->non_free++;
    return 0;
}

/* --- life --------------------------------------------------------------------------------------- */

/* accept() failed (out of files, most likely): pause listening with backoff rather than spin
 * on a socket that stays readable, logging at most a line per interval (R8.8). */
#define HTTPS_INSTANCES_MAX 4
static https_t *s_instances[HTTPS_INSTANCES_MAX]; /* written before their threads start */

static void s_accept_error(struct evconnlistener *l, void *arg)
{
    https_t *h = NULL;
    int e = errno;

    for (size_t i = 0; i < HTTPS_INSTANCES_MAX && h == NULL; i++)
        if (s_instances[i] != NULL && (void *)s_instances[i]->http == arg) /* evhttp's arg */
            h = s_instances[i];
    if (h == NULL)
        return;
    h->accept_backoff_ms = h->accept_backoff_ms == 0 ? HTTPS_ACCEPT_BACKOFF_MIN_MS
                           : h->accept_backoff_ms * 2 > HTTPS_ACCEPT_BACKOFF_MAX_MS
                               ? HTTPS_ACCEPT_BACKOFF_MAX_MS
                               : h->accept_backoff_ms * 2;
    h->accept_resume_at = now_ms() + h->accept_backoff_ms;
    evconnlistener_disable(l);
    https_log_limited(h, "https accept failed on %s: %s; listening again in %llu ms "
                      "(connections open: %u)", h->listen, strerror(e),
                      (unsigned long long)h->accept_backoff_ms, h->accepted);
}

static void s_try_bind(https_t *h)
{
    struct evhttp_bound_socket *bound;
    int one = 1;

    h->bind_at = now_ms() + HTTPS_BIND_RETRY_MS;
    if ((bound = evhttp_bind_socket_with_handle(h->http, h->host, h->port)) == NULL) {
        https_log_limited(h, "https cannot listen on %s: %s; trying again every %d s", h->listen,
                          strerror(errno), HTTPS_BIND_RETRY_MS / 1000);
        return;
    }
    /* Accepted sockets inherit it: a reply goes out as several TLS records (headers, body),
     * and Nagle would hold the second until the client's delayed ACK — 40 ms a request. */
    if (setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof one) != 0)
        log_warn("https: TCP_NODELAY on %s: %s", h->listen, strerror(errno));
    /* R8.8: a connection that sends nothing never reaches us (nor holds one of our files) */
    if (setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_DEFER_ACCEPT,
                   &(int){ HTTPS_DEFER_ACCEPT_S }, sizeof(int)) != 0)
        log_warn("https: TCP_DEFER_ACCEPT on %s: %s", h->listen, strerror(errno));
    h->listener = evhttp_bound_socket_get_listener(bound);
    evconnlistener_set_error_cb(h->listener, s_accept_error);
    h->bound = true;
    log_info("https ready listen=%s pin=%s", h->listen, h->pin);
}

static void s_on_tick(evutil_socket_t fd, short what, void *arg)
{
    https_t *h = arg;

    (void)fd;
    (void)what;
    if (atomic_load(&h->stop)) {
        event_base_loopbreak(h->base);
        return;
    }
    if (!h->bound && now_ms() >= h->bind_at)
        s_try_bind(h);
    if (h->accept_resume_at != 0 && now_ms() >= h->accept_resume_at) {
        h->accept_resume_at = 0;
        evconnlistener_enable(h->listener);
    }
    if (h->db == NULL && now_ms() >= h->retry_at)
        s_db_connect(h);
}

static int s_split_listen(const char *listen, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(listen, ':'), *hp = listen;
    size_t hl;
    int64_t p;

    if (colon == NULL || parse_int64(colon + 1, &p) != 0 || p < 1 || p > 65535)
        return -1;
    hl = (size_t)(colon - listen);
    if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
        hp++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

https_t *https_new(const struct https_options *opt, char *err, size_t errlen)
{
    https_t *h = xcalloc(1, sizeof *h);
    struct timeval tick = { 0, HTTPS_TICK_MS * 1000 };
    bool given_cert = opt->cert != NULL && *opt->cert != '\0';
    bool given_key = opt->key != NULL && *opt->key != '\0';

    if (s_split_listen(opt->listen, h->host, sizeof h->host, &h->port) != 0) {
        snprintf(err, errlen, "https_listen \"%s\" is not HOST:PORT", opt->listen);
        free(h);
        return NULL;
    }
    strlcpy_p(h->listen, opt->listen, sizeof h->listen);
    h->dsn = xstrdup(opt->dsn);
    h->backoff_ms = HTTPS_BACKOFF_MIN_MS;
    h->ssl = SSL_CTX_new(TLS_server_method());
    if (h->ssl == NULL) {
        s_ssl_err(err, errlen, "SSL_CTX_new");
        https_free(&h);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(h->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(h->ssl, SSL_OP_NO_RENEGOTIATION);
    if (s_tls_conn_idx < 0)
        s_tls_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, s_tls_conn_free);
    if (given_cert != given_key) {
        snprintf(err, errlen, "parent.conf: https_cert and https_key go together: set both "
                              "(your certificate and its key) or neither (a self-signed pair)");
        https_free(&h);
        return NULL;
    }
    if (given_cert ? s_identity_given(opt->cert, opt->key, h->ssl, h->pin, err, errlen) != 0
                   : s_identity(opt->state_dir, h->ssl, h->pin, err, errlen) != 0) {
        https_free(&h);
        return NULL;
    }
    h->base = event_base_new();
    h->http = h->base != NULL ? evhttp_new(h->base) : NULL;
    if (h->http == NULL) {
        snprintf(err, errlen, "https: cannot create the HTTP server");
        https_free(&h);
        return NULL;
    }
    evhttp_set_bevcb(h->http, s_bevcb, h);
    evhttp_set_max_body_size(h->http, HTTPS_BODY_MAX);
    evhttp_set_max_headers_size(h->http, HTTPS_HEADERS_MAX);
    evhttp_set_timeout(h->http, HTTPS_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(h->http, s_on_request, h);
    h->tick = event_new(h->base, -1, EV_PERSIST, s_on_tick, h);
    event_add(h->tick, &tick);
    for (size_t i = 0; i < HTTPS_INSTANCES_MAX; i++)
        if (s_instances[i] == NULL) {
            s_instances[i] = h;
            break;
        }
    s_try_bind(h);
    s_db_connect(h);
    return h;
}

static void *s_thread(void *arg)
{
    https_t *h = arg;

    event_base_dispatch(h->base);
    return NULL;
}

/* Every signal blocked in the thread, so SIGTERM/SIGINT reach the main thread's loop. */
int https_start(https_t *h, char *err, size_t errlen)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&h->thread, NULL, s_thread, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "https: cannot start its thread: %s", strerror(rc));
        return -1;
    }
    h->threaded = true;
    return 0;
}

void https_free(https_t **hp)
{
    https_t *h;

    if (hp == NULL || *hp == NULL)
        return;
    h = *hp;
    if (h->threaded) {
        atomic_store(&h->stop, 1);
        pthread_join(h->thread, NULL);
    }
    for (size_t i = 0; i < HTTPS_INSTANCES_MAX; i++)
        if (s_instances[i] == h)
            s_instances[i] = NULL;
    if (h->tick != NULL)
        event_free(h->tick);
    if (h->http != NULL)
        evhttp_free(h->http); /* closes connections: their close callbacks free handler state */
    for (size_t i = h->non_free; i > 0; i--)
        h->on_free[i - 1].fn(h->on_free[i - 1].arg);
    if (h->base != NULL)
        event_base_free(h->base);
    SSL_CTX_free(h->ssl);
    PQfinish(h->db);
    free(h->dsn);
    free(h);
    *hp = NULL;
}
