/* smartscan: smart-protection look-ups over HTTP on the scan service's libevent loop
 * (curl_loop.c: libcurl multi, keep-alive connections, no thread waits on the network).
 * Also owns the failure policy of R2.3–R2.5: the sliding window, the switch to conventional
 * scan, the health checks and the optional return (R2.4). */
#include "scan/smartscan.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "curl_loop.h"
#include "scan/smartscan_window.h"
#include "util.h"

#define SMARTSCAN_URL_MAX 2100          /* smart_scan.url (2048) plus the health path */
#define SMARTSCAN_HEALTH_MS 5000        /* health check interval */
#define SMARTSCAN_HEALTH_RETURN_MS 1000 /* …while waiting to return by itself (R2.4) */
#define SMARTSCAN_HEALTH_TIMEOUT_MS 5000 /* a health check never takes longer than this */

struct req {
    struct smartscan *ss;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_body ans;       /* response, up to SMARTSCAN_RESPONSE_MAX */
    bool health;
    size_t n;                   /* digests asked */
    char (*hex)[65];
    smartscan_done_fn *done;
    void *arg;
    struct req *prev, *next;
};

struct smartscan {
    struct event_base *base;
    curl_loop_t *loop;
    struct event health_timer;
    struct req *reqs;           /* in flight */
    smartscan_changed_fn *changed;
    void *changed_arg;
    /* settings */
    bool configured, cfg_enabled, switch_on, auto_return;
    long timeout_ms;
    uint64_t auto_return_after_ms;
    char url[SMARTSCAN_URL_MAX], health_url[SMARTSCAN_URL_MAX];
    struct smartscan_window win;
    /* state */
    bool switched;              /* switched to conventional by ourselves (R2.3) */
    bool returned;              /* returned by ourselves; the parent has not recorded it yet */
    bool start_check;           /* the next health answer is the start-up check (R2.2) */
    bool health_failed, lookup_failed;
    bool health_busy;
    uint64_t ok_since;          /* health answering continuously since (ms), 0: not */
};

static struct req *s_req_new(struct smartscan *ss, const char *url, long timeout_ms)
{
    struct req *r = xcalloc(1, sizeof *r);

    r->ss = ss;
    r->easy = curl_loop_easy(ss->loop, url, timeout_ms, r, &r->ans, SMARTSCAN_RESPONSE_MAX);
    r->next = ss->reqs;
    if (ss->reqs != NULL)
        ss->reqs->prev = r;
    ss->reqs = r;
    return r;
}

static void s_req_free(struct smartscan *ss, struct req *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        ss->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    curl_loop_remove(ss->loop, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->ans.data);
    free(r->hex);
    free(r);
}

/* --- state ---------------------------------------------------------------------------------- */

static void s_health_schedule(struct smartscan *ss);

bool smartscan_in_force(const smartscan_t *ss)
{
    return ss->returned || (ss->cfg_enabled && !ss->switched && ss->url[0] != '\0');
}

const char *smartscan_state(const smartscan_t *ss)
{
    if (!smartscan_in_force(ss) && !ss->switched)
        return "off";
    if (ss->health_failed)
        return "unreachable";
    if (ss->lookup_failed)
        return "failing";
    return "ok";
}

static void s_switch(struct smartscan *ss, const char *reason)
{
    if (!smartscan_in_force(ss))
        return;
    if (!ss->switch_on) {
        log_warn("smart scan: %s; smart_scan.switch_to_conventional is off: messages keep "
                 "getting 4xx until the server answers", reason);
        return;
    }
    ss->switched = true;
    ss->returned = false;
    ss->ok_since = 0;
    smartscan_window_clear(&ss->win);
    log_warn("smart scan: switched to conventional scan: %s (R2.3)%s", reason,
             ss->auto_return ? "; returns by itself once the server answers" :
                               "; an administrator re-enables smart scan");
    if (ss->changed != NULL)
        ss->changed("conventional", reason, ss->changed_arg);
    s_health_schedule(ss);
}

static void s_return(struct smartscan *ss)
{
    char reason[128];

    snprintf(reason, sizeof reason, "smart-protection server answered for %llu s",
             (unsigned long long)(ss->auto_return_after_ms / 1000));
    ss->switched = false;
    ss->returned = !ss->cfg_enabled; /* the fleet was turned off meanwhile: ours alone */
    ss->ok_since = 0;
    ss->lookup_failed = false;
    smartscan_window_clear(&ss->win);
    log_warn("smart scan: returned to smart scan: %s (R2.4)", reason);
    if (ss->changed != NULL)
        ss->changed("smart", reason, ss->changed_arg);
}

static void s_lookup_failed(struct smartscan *ss)
{
    char reason[160];

    ss->lookup_failed = true;
    if (smartscan_window_fail(&ss->win, now_ms())) {
        snprintf(reason, sizeof reason, "%u look-up failures within %llu s", ss->win.threshold,
                 (unsigned long long)(ss->win.window_ms / 1000));
        s_switch(ss, reason);
    }
}

static void s_health_answer(struct smartscan *ss, bool ok, const char *detail)
{
    bool start = ss->start_check;

    ss->start_check = false;
    if (ok != !ss->health_failed)
        log_info("smart scan: server %s%s%s", ok ? "answers" : "unreachable",
                 ok ? "" : ": ", ok ? "" : detail);
    ss->health_failed = !ok;
    if (!ok) {
        ss->ok_since = 0;
        if (start)
            s_switch(ss, "smart-protection server unreachable at start");
        return;
    }
    if (ss->switched && ss->auto_return) {
        uint64_t now = now_ms();
        if (ss->ok_since == 0)
            ss->ok_since = now;
        if (now - ss->ok_since >= ss->auto_return_after_ms)
            s_return(ss);
    }
}

/* --- answers -------------------------------------------------------------------------------- */

int smartscan_parse_answer(const char *data, size_t len, const char (*hex)[65], size_t n,
                           struct smartscan_result *res)
{
    json_error_t je;
    json_t *root = json_loadb(data != NULL ? data : "", len, 0, &je), *v;
    size_t i;
    int rc = -1;

    res->status = SMARTSCAN_CLEAN;
    v = root != NULL ? json_object_get(root, "verdicts") : NULL;
    if (!json_is_array(v) || json_array_size(v) != n) {
        snprintf(res->error, sizeof res->error, "bad answer: %s",
                 root == NULL ? "not JSON" : "verdicts missing or of the wrong length");
        goto out;
    }
    for (i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        const char *h = json_string_value(json_object_get(e, "sha256"));
        const char *verdict = json_string_value(json_object_get(e, "verdict"));
        const char *name = json_string_value(json_object_get(e, "name"));

        if (h == NULL || verdict == NULL || strcasecmp(h, hex[i]) != 0) {
            snprintf(res->error, sizeof res->error, "bad answer: verdict %zu does not match", i);
            goto out;
        }
        if (strcmp(verdict, "malicious") == 0 && res->status != SMARTSCAN_MALICIOUS) {
            res->status = SMARTSCAN_MALICIOUS;
            strlcpy_p(res->name, name != NULL && name[0] != '\0' ? name : "smart.malicious",
                      sizeof res->name);
        } else if (strcmp(verdict, "malicious") != 0 && strcmp(verdict, "unknown") != 0) {
            snprintf(res->error, sizeof res->error, "bad answer: verdict '%.32s'", verdict);
            goto out;
        }
    }
    rc = 0;
out:
    if (root != NULL)
        json_decref(root);
    return rc;
}

static void s_finish(struct smartscan *ss, struct req *r, CURLcode cc)
{
    struct smartscan_result res;
    long code = 0;

    memset(&res, 0, sizeof res);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK)
        snprintf(res.error, sizeof res.error, "%s", r->ans.too_big ? "answer too large" :
                                                                  curl_easy_strerror(cc));
    else if (code != 200)
        snprintf(res.error, sizeof res.error, "HTTP %ld", code);
    if (r->health) {
        ss->health_busy = false;
        s_health_answer(ss, res.error[0] == '\0', res.error);
        s_req_free(ss, r);
        s_health_schedule(ss);
        return;
    }
    if (res.error[0] == '\0' &&
        smartscan_parse_answer(r->ans.data, r->ans.len, (const char (*)[65])r->hex, r->n,
                               &res) == 0) {
        ss->lookup_failed = false;
        ss->health_failed = false;
    } else {
        res.status = SMARTSCAN_FAILED;
        s_lookup_failed(ss);
    }
    {
        smartscan_done_fn *done = r->done;
        void *arg = r->arg;
        s_req_free(ss, r);
        done(&res, arg);
    }
}

static void s_done(void *arg, void *priv, CURLcode cc) { s_finish(arg, priv, cc); }

/* --- requests ------------------------------------------------------------------------------- */

static void s_health_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smartscan *ss = arg;
    struct req *r;

    (void)fd;
    (void)what;
    if (ss->health_busy || ss->health_url[0] == '\0' || (!smartscan_in_force(ss) && !ss->switched))
        return;
    r = s_req_new(ss, ss->health_url,
                  ss->timeout_ms < SMARTSCAN_HEALTH_TIMEOUT_MS ? SMARTSCAN_HEALTH_TIMEOUT_MS
                                                               : ss->timeout_ms);
    r->health = true;
    ss->health_busy = true;
    curl_loop_add(ss->loop, r->easy);
}

static void s_health_schedule(struct smartscan *ss)
{
    long ms = ss->switched && ss->auto_return ? SMARTSCAN_HEALTH_RETURN_MS : SMARTSCAN_HEALTH_MS;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (!smartscan_in_force(ss) && !ss->switched) {
        evtimer_del(&ss->health_timer);
        return;
    }
    evtimer_add(&ss->health_timer, &tv);
}

void smartscan_lookup(smartscan_t *ss, const unsigned char (*digests)[32], size_t n,
                      smartscan_done_fn *done, void *arg)
{
    struct req *r = s_req_new(ss, ss->url, ss->timeout_ms);
    size_t cap, off;
    char *json;

    if (n > SMARTSCAN_DIGESTS_MAX)
        n = SMARTSCAN_DIGESTS_MAX;
    r->done = done;
    r->arg = arg;
    r->n = n;
    r->hex = xcalloc(n > 0 ? n : 1, sizeof *r->hex);
    cap = 16 + n * 68;
    json = xmalloc(cap);
    off = (size_t)snprintf(json, cap, "{\"sha256\":[");
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < 32; b++)
            snprintf(r->hex[i] + 2 * b, 3, "%02x", digests[i][b]);
        off += (size_t)snprintf(json + off, cap - off, "%s\"%s\"", i > 0 ? "," : "", r->hex[i]);
    }
    snprintf(json + off, cap - off, "]}");
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    r->headers = curl_slist_append(r->headers, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, json);
    free(json);
    curl_loop_add(ss->loop, r->easy);
}

/* --- life ----------------------------------------------------------------------------------- */

/* "http://host:port/v1/lookup" → "http://host:port/v1/health". */
static void s_health_url(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    const char *slash = p != NULL ? strchr(p + 3, '/') : NULL;
    size_t hostlen = slash != NULL ? (size_t)(slash - url) : strlen(url);

    if (url[0] == '\0' || p == NULL) {
        out[0] = '\0';
        return;
    }
    snprintf(out, n, "%.*s/v1/health", (int)hostlen, url);
}

void smartscan_configure(smartscan_t *ss, const settings_t *s, const struct curl_peer *peer)
{
    bool enabled = settings_bool(s, SETTING_SMART_SCAN_ENABLED);
    unsigned threshold = (unsigned)settings_int(s, SETTING_SMART_SCAN_FAILURE_THRESHOLD);
    uint64_t window_ms = (uint64_t)settings_int(s, SETTING_SMART_SCAN_FAILURE_WINDOW_S) * 1000;
    bool was = smartscan_in_force(ss);

    curl_loop_set_peer(ss->loop, peer);
    strlcpy_p(ss->url, settings_str(s, SETTING_SMART_SCAN_URL), sizeof ss->url);
    s_health_url(ss->url, ss->health_url, sizeof ss->health_url);
    ss->timeout_ms = settings_int(s, SETTING_SMART_SCAN_QUERY_TIMEOUT_MS);
    ss->switch_on = settings_bool(s, SETTING_SMART_SCAN_SWITCH_TO_CONVENTIONAL);
    ss->auto_return = settings_bool(s, SETTING_SMART_SCAN_AUTO_RETURN);
    ss->auto_return_after_ms =
        (uint64_t)settings_int(s, SETTING_SMART_SCAN_AUTO_RETURN_AFTER_S) * 1000;
    if (!ss->configured || threshold != ss->win.threshold || window_ms != ss->win.window_ms) {
        smartscan_window_fini(&ss->win);
        smartscan_window_init(&ss->win, threshold, window_ms);
    }
    if (ss->configured && enabled != ss->cfg_enabled) {
        /* An administrator's decision (R8.4: nothing a child says changes the fleet setting):
         * this child's own switch or return ends with it. */
        ss->switched = ss->returned = false;
        ss->ok_since = 0;
        smartscan_window_clear(&ss->win);
    }
    ss->cfg_enabled = enabled;
    if (smartscan_in_force(ss) && (!ss->configured || !was)) {
        /* R2.2: connectivity checked when smart scan starts (process start or enabled). */
        ss->start_check = true;
        ss->health_failed = ss->lookup_failed = false;
        log_info("smart scan in force url=%s timeout_ms=%ld", ss->url, ss->timeout_ms);
        evtimer_del(&ss->health_timer);
        if (!ss->health_busy)
            s_health_cb(-1, 0, ss);
        s_health_schedule(ss);
    } else if (!smartscan_in_force(ss) && was && !ss->switched) {
        log_info("smart scan off: conventional scan");
        s_health_schedule(ss);
    }
    ss->configured = true;
}

void smartscan_resume(smartscan_t *ss)
{
    if (!ss->switched)
        return;
    ss->switched = ss->returned = false;
    ss->ok_since = 0;
    smartscan_window_clear(&ss->win);
    if (!smartscan_in_force(ss))
        return;
    log_warn("smart scan: resumed by the administrator (R2.4)");
    if (ss->changed != NULL)
        ss->changed("smart", "resumed by the administrator", ss->changed_arg);
    ss->start_check = true;
    ss->health_failed = ss->lookup_failed = false;
    evtimer_del(&ss->health_timer);
    if (!ss->health_busy)
        s_health_cb(-1, 0, ss);
    s_health_schedule(ss);
}

smartscan_t *smartscan_new(struct event_base *base, smartscan_changed_fn *changed, void *arg)
{
    smartscan_t *ss = xcalloc(1, sizeof *ss);

    ss->base = base;
    ss->changed = changed;
    ss->changed_arg = arg;
    if ((ss->loop = curl_loop_new(base, s_done, ss)) == NULL) {
        free(ss);
        return NULL;
    }
    evtimer_assign(&ss->health_timer, base, s_health_cb, ss);
    return ss;
}

void smartscan_free(smartscan_t **sp)
{
    smartscan_t *ss;
    struct smartscan_result res;

    if (sp == NULL || *sp == NULL)
        return;
    ss = *sp;
    memset(&res, 0, sizeof res);
    res.status = SMARTSCAN_CANCELLED;
    snprintf(res.error, sizeof res.error, "scan service stopping");
    while (ss->reqs != NULL) {
        struct req *r = ss->reqs;
        smartscan_done_fn *done = r->health ? NULL : r->done;
        void *arg = r->arg;
        s_req_free(ss, r);
        if (done != NULL)
            done(&res, arg);
    }
    evtimer_del(&ss->health_timer);
    curl_loop_free(&ss->loop);
    smartscan_window_fini(&ss->win);
    free(ss);
    *sp = NULL;
}
