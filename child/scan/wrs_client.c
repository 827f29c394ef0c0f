/* wrs_client: see wrs_client.h. libcurl multi on the scan service's libevent loop, the same
 * way smartscan.c drives its own (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION, one event per
 * socket); a second multi handle, since smartscan's carries its health checks and failure
 * window. CURLOPT_TIMEOUT_MS bounds every request, connect included, to wrs.timeout_ms. */
#include "scan/wrs_client.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define WRS_CLIENT_URL_MAX 2049         /* wrs.url (2048) */

struct req {
    struct wrs_client *wc;
    CURL *easy;
    struct curl_slist *headers;
    char *post;                 /* the request body */
    char *body;                 /* response, up to WRS_CLIENT_RESPONSE_MAX */
    size_t len;
    bool too_big;
    wrs_client_done_fn *done;
    void *arg;
    struct req *prev, *next;
};

struct sock {
    struct event ev;
    bool added;
};

struct wrs_client {
    struct event_base *base;
    CURLM *multi;
    struct event timer;
    struct req *reqs;           /* in flight */
    bool enabled;
    long timeout_ms;
    char url[WRS_CLIENT_URL_MAX];
    bool failing;               /* the last request failed: logged once per change */
};

/* --- libcurl on libevent ------------------------------------------------------------------- */

static void s_check_done(struct wrs_client *wc);

static void s_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct wrs_client *wc = arg;
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;

    curl_multi_socket_action(wc->multi, fd, flags, &running);
    s_check_done(wc);
    if (running <= 0 && evtimer_pending(&wc->timer, NULL))
        evtimer_del(&wc->timer);
}

static int s_sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct wrs_client *wc = userp;
    struct sock *so = socketp;
    short kind;

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (so != NULL) {
            if (so->added)
                event_del(&so->ev);
            free(so);
        }
        curl_multi_assign(wc->multi, fd, NULL);
        return 0;
    }
    if (so == NULL) {
        so = xcalloc(1, sizeof *so);
        curl_multi_assign(wc->multi, fd, so);
    } else if (so->added) {
        event_del(&so->ev);
    }
    kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                   ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    event_assign(&so->ev, wc->base, fd, kind, s_sock_event, wc);
    event_add(&so->ev, NULL);
    so->added = true;
    return 0;
}

static void s_timer_event(evutil_socket_t fd, short what, void *arg)
{
    struct wrs_client *wc = arg;
    int running;

    (void)fd;
    (void)what;
    curl_multi_socket_action(wc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    s_check_done(wc);
}

static int s_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct wrs_client *wc = userp;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

    (void)m;
    if (timeout_ms < 0)
        evtimer_del(&wc->timer);
    else
        evtimer_add(&wc->timer, &tv);
    return 0;
}

static size_t s_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
    struct req *r = arg;
    size_t n = size * nmemb;

    if (r->len + n > WRS_CLIENT_RESPONSE_MAX) {
        r->too_big = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    r->body = xrealloc(r->body, r->len + n + 1);
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static void s_req_free(struct wrs_client *wc, struct req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        wc->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    curl_multi_remove_handle(wc->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->post);
    free(r->body);
    free(r);
}

/* --- answers -------------------------------------------------------------------------------- */

/* {"ratings": [{"url": U, "level": 0..100, "category": C}, …]}: the highest kept; a URL the
 * service does not rate may be left out or given level 0. 0 ok, -1 with res->error. */
static int s_parse(const struct req *r, struct wrs_client_result *res)
{
    json_error_t je;
    json_t *root = json_loadb(r->body != NULL ? r->body : "", r->len, 0, &je), *v;
    int rc = -1;

    v = root != NULL ? json_object_get(root, "ratings") : NULL;
    if (!json_is_array(v) || json_array_size(v) > WRS_URLS_MAX) {
        snprintf(res->error, sizeof res->error, "bad answer: %s",
                 root == NULL ? "not JSON" : "ratings missing or too many");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i), *lv = json_object_get(e, "level");
        const char *url = json_string_value(json_object_get(e, "url"));
        const char *cat = json_string_value(json_object_get(e, "category"));
        json_int_t level = json_is_integer(lv) ? json_integer_value(lv) : -1;

        if (url == NULL || level < 0 || level > 100) {
            snprintf(res->error, sizeof res->error, "bad answer: rating %zu needs a url and a "
                     "level 0..100", i + 1);
            goto out;
        }
        wrs_rating_merge(&res->best, (unsigned)level, cat, url);
    }
    rc = 0;
out:
    if (root != NULL)
        json_decref(root);
    return rc;
}

static void s_finish(struct wrs_client *wc, struct req *r, CURLcode cc)
{
    struct wrs_client_result res;
    wrs_client_done_fn *done = r->done;
    void *arg = r->arg;
    long code = 0;

    memset(&res, 0, sizeof res);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK)
        snprintf(res.error, sizeof res.error, "%s", r->too_big ? "answer too large" :
                                                                  curl_easy_strerror(cc));
    else if (code != 200)
        snprintf(res.error, sizeof res.error, "HTTP %ld", code);
    res.status = res.error[0] == '\0' && s_parse(r, &res) == 0 ? WRS_CLIENT_OK
                                                                : WRS_CLIENT_FAILED;
    if ((res.status == WRS_CLIENT_FAILED) != wc->failing) {
        wc->failing = res.status == WRS_CLIENT_FAILED;
        if (wc->failing)
            log_warn("web reputation: rating service failing (%s): its ratings are skipped, "
                     "the block-lists still apply", res.error);
        else
            log_info("web reputation: rating service answers again");
    }
    s_req_free(wc, r);
    done(&res, arg);
}

static void s_check_done(struct wrs_client *wc)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(wc->multi, &left)) != NULL) {
        struct req *r = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        s_finish(wc, r, m->data.result);
    }
}

/* --- requests ------------------------------------------------------------------------------- */

void wrs_client_rate(wrs_client_t *wc, char *const *urls, size_t n, wrs_client_done_fn *done,
                     void *arg)
{
    struct req *r = xcalloc(1, sizeof *r);
    json_t *root = json_object(), *arr = json_array();

    for (size_t i = 0; i < n && i < WRS_URLS_MAX; i++)
        json_array_append_new(arr, json_string(urls[i]));
    json_object_set_new(root, "urls", arr);
    r->post = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (r->post == NULL)
        abort(); /* out of memory */
    r->wc = wc;
    r->done = done;
    r->arg = arg;
    r->easy = curl_easy_init();
    if (r->easy == NULL)
        fatal("wrs_client: curl_easy_init failed");
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(r->easy, CURLOPT_URL, wc->url);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, wc->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, wc->timeout_ms);
    curl_easy_setopt(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->post);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, s_write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    r->next = wc->reqs;
    if (wc->reqs != NULL)
        wc->reqs->prev = r;
    wc->reqs = r;
    curl_multi_add_handle(wc->multi, r->easy);
}

/* --- life ----------------------------------------------------------------------------------- */

bool wrs_client_on(const wrs_client_t *wc) { return wc->enabled && wc->url[0] != '\0'; }

void wrs_client_configure(wrs_client_t *wc, const settings_t *s)
{
    bool was = wrs_client_on(wc);

    wc->enabled = settings_bool(s, SETTING_WRS_ENABLED);
    strlcpy_p(wc->url, settings_str(s, SETTING_WRS_URL), sizeof wc->url);
    wc->timeout_ms = settings_int(s, SETTING_WRS_TIMEOUT_MS);
    if (wrs_client_on(wc) && !was)
        log_info("web reputation: rating service url=%s timeout_ms=%ld", wc->url,
                 wc->timeout_ms);
    else if (!wrs_client_on(wc) && was)
        log_info("web reputation: rating service off: block-lists only");
}

wrs_client_t *wrs_client_new(struct event_base *base)
{
    wrs_client_t *wc;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* counted: once per client */
        log_err("wrs_client: curl_global_init failed");
        return NULL;
    }
    wc = xcalloc(1, sizeof *wc);
    wc->base = base;
    wc->multi = curl_multi_init();
    if (wc->multi == NULL) {
        log_err("wrs_client: curl_multi_init failed");
        free(wc);
        return NULL;
    }
    curl_multi_setopt(wc->multi, CURLMOPT_SOCKETFUNCTION, s_sock_cb);
    curl_multi_setopt(wc->multi, CURLMOPT_SOCKETDATA, wc);
    curl_multi_setopt(wc->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb);
    curl_multi_setopt(wc->multi, CURLMOPT_TIMERDATA, wc);
    evtimer_assign(&wc->timer, base, s_timer_event, wc);
    return wc;
}

void wrs_client_free(wrs_client_t **wp)
{
    wrs_client_t *wc;
    struct wrs_client_result res;

    if (wp == NULL || *wp == NULL)
        return;
    wc = *wp;
    memset(&res, 0, sizeof res);
    res.status = WRS_CLIENT_CANCELLED;
    snprintf(res.error, sizeof res.error, "scan service stopping");
    while (wc->reqs != NULL) {
        struct req *r = wc->reqs;
        wrs_client_done_fn *done = r->done;
        void *arg = r->arg;
        s_req_free(wc, r);
        done(&res, arg);
    }
    evtimer_del(&wc->timer);
    curl_multi_cleanup(wc->multi);
    free(wc);
    *wp = NULL;
}
