/* wrs_client: see wrs_client.h. HTTP on the scan service's libevent loop (curl_loop.c), with
 * a multi handle of its own beside smartscan's, which carries its health checks and failure
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
#include "curl_loop.h"
#include "util.h"

#define WRS_CLIENT_URL_MAX 2049         /* wrs.url (2048) */

struct req {
    struct wrs_client *wc;
    CURL *easy;
    struct curl_slist *headers;
    char *post;                 /* the request body */
    struct curl_body ans;       /* response, up to WRS_CLIENT_RESPONSE_MAX */
    wrs_client_done_fn *done;
    void *arg;
    struct req *prev, *next;
};

struct wrs_client {
    struct event_base *base;
    curl_loop_t *loop;
    struct req *reqs;           /* in flight */
    bool enabled;
    long timeout_ms;
    char url[WRS_CLIENT_URL_MAX];
    bool failing;               /* the last request failed: logged once per change */
};

static void s_req_free(struct wrs_client *wc, struct req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        wc->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    curl_loop_remove(wc->loop, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->post);
    free(r->ans.data);
    free(r);
}

/* --- answers -------------------------------------------------------------------------------- */

/* {"ratings": [{"url": U, "level": 0..100, "category": C}, …]}: the highest kept; a URL the
 * service does not rate may be left out or given level 0. 0 ok, -1 with res->error. */
int wrs_client_parse_answer(const char *data, size_t len, struct wrs_client_result *res)
{
    json_error_t je;
    json_t *root = json_loadb(data != NULL ? data : "", len, 0, &je), *v;
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
        snprintf(res.error, sizeof res.error, "%s", r->ans.too_big ? "answer too large" :
                                                                  curl_easy_strerror(cc));
    else if (code != 200)
        snprintf(res.error, sizeof res.error, "HTTP %ld", code);
    res.status = res.error[0] == '\0' && wrs_client_parse_answer(r->ans.data, r->ans.len, &res) == 0 ? WRS_CLIENT_OK
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

static void s_done(void *arg, void *priv, CURLcode cc) { s_finish(arg, priv, cc); }

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
    r->easy = curl_loop_easy(wc->loop, wc->url, wc->timeout_ms, r, &r->ans, WRS_CLIENT_RESPONSE_MAX);
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->post);
    r->next = wc->reqs;
    if (wc->reqs != NULL)
        wc->reqs->prev = r;
    wc->reqs = r;
    curl_loop_add(wc->loop, r->easy);
}

/* --- life ----------------------------------------------------------------------------------- */

bool wrs_client_on(const wrs_client_t *wc) { return wc->enabled && wc->url[0] != '\0'; }

void wrs_client_configure(wrs_client_t *wc, const settings_t *s, const struct curl_peer *peer)
{
    bool was = wrs_client_on(wc);

    curl_loop_set_peer(wc->loop, peer);
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

    wc = xcalloc(1, sizeof *wc);
    wc->base = base;
    if ((wc->loop = curl_loop_new(base, s_done, wc)) == NULL) {
        free(wc);
        return NULL;
    }
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
    curl_loop_free(&wc->loop);
    free(wc);
    *wp = NULL;
}
