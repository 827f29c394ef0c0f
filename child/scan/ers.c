/* ers: email reputation look-ups and the DNS health check (R3.1); see ers.h. Every request to
 * evdns carries a struct ers_req kept on the ers_t's list until evdns calls back (it always
 * does, once: answer, error, timeout or cancel), so a query or check that goes away first only
 * detaches itself from its requests. Zone sets are reference-counted: a configuration change
 * does not pull the zones from under a query in flight. */
#include "scan/ers.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#define ERS_NAME_MAX 256        /* bytes of a query name: reversed address + zone */
#define ERS_ATTEMPTS "2"        /* evdns tries per name; each gets half of ers.timeout_ms */

enum ers_state { ERS_OFF, ERS_OK, ERS_FAILING };

struct zoneset {
    unsigned refs;
    struct ers_zones z;
};

struct ers_req {
    ers_t *e;
    struct ers_req *prev, *next;  /* e->reqs */
    bool check;                   /* a health check's request */
    struct ers_query *q;          /* a query's; NULL once the query went away */
    size_t zone;
    unsigned check_gen;           /* a check's: the check it belongs to */
    struct evdns_request *r;
};

struct ers_query {
    ers_t *e;
    struct zoneset *zs;
    struct ers_req *reqs[ERS_ZONES_MAX];
    size_t pending;
    bool done, errors;
    struct event *deadline;
    struct ers_result res;
    void (*fn)(void *arg);
    void *arg;
};

struct ers {
    struct event_base *base;
    struct evdns_base *dns;
    struct zoneset *zs;           /* NULL: no zones */
    bool enabled;
    int timeout_ms, interval_s;
    enum ers_state state;
    struct ers_req *reqs;
    struct event *check_timer, *check_deadline;
    bool checking, check_failed;
    unsigned check_gen;
    size_t check_pending;
    char check_error[128];
};

static struct zoneset *s_zs_ref(struct zoneset *zs)
{
    zs->refs++;
    return zs;
}

static void s_zs_unref(struct zoneset **zsp)
{
    if (*zsp != NULL && --(*zsp)->refs == 0)
        free(*zsp);
    *zsp = NULL;
}

static const char *s_dns_err(int result)
{
    return evdns_err_to_string(result);
}

/* The server answered: a name that exists or not is a working block list. */
static bool s_answered(int result)
{
    return result == DNS_ERR_NONE || result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA;
}

/* --- requests ----------------------------------------------------------------------------- */

static void s_req_cb(int result, char type, int count, int ttl, void *addrs, void *arg);

/* A request on e's list; NULL if evdns refused it at once (a name it cannot send). */
static struct ers_req *s_req_send(ers_t *e, const char *name, struct ers_query *q, size_t zone)
{
    struct ers_req *rq = xcalloc(1, sizeof *rq);

    rq->e = e;
    rq->check = q == NULL;
    rq->q = q;
    rq->zone = zone;
    rq->check_gen = e->check_gen;
    rq->next = e->reqs;
    if (e->reqs != NULL)
        e->reqs->prev = rq;
    e->reqs = rq;
    rq->r = evdns_base_resolve_ipv4(e->dns, name, DNS_QUERY_NO_SEARCH, s_req_cb, rq);
    if (rq->r == NULL) {
        e->reqs = rq->next;
        if (rq->next != NULL)
            rq->next->prev = NULL;
        free(rq);
        return NULL;
    }
    return rq;
}

static void s_req_unlink(struct ers_req *rq)
{
    if (rq->prev != NULL)
        rq->prev->next = rq->next;
    else
        rq->e->reqs = rq->next;
    if (rq->next != NULL)
        rq->next->prev = rq->prev;
}

/* --- the health check --------------------------------------------------------------------- */

static void s_set_state(ers_t *e, enum ers_state st, const char *why)
{
    if (e->state == st)
        return;
    if (st == ERS_FAILING)
        log_warn("ers state=failing reason=\"%s\": look-ups skipped (mail flows as not listed) "
                 "until a check succeeds", why);
    else if (st == ERS_OK)
        log_info("ers state=ok%s", e->state == ERS_FAILING ? ": DNS answers again" : "");
    else
        log_info("ers state=off");
    e->state = st;
}

static void s_check_finish(ers_t *e)
{
    e->checking = false;
    e->check_gen++; /* answers still to come belong to no check any more */
    evtimer_del(e->check_deadline);
    if (e->enabled && e->zs != NULL)
        s_set_state(e, e->check_failed ? ERS_FAILING : ERS_OK, e->check_error);
}

static void s_check_fail(ers_t *e, const char *zone, const char *why)
{
    if (e->check_failed)
        return;
    e->check_failed = true;
    snprintf(e->check_error, sizeof e->check_error, "%s: %s", zone, why);
}

static void s_check_answer(ers_t *e, const struct ers_req *rq, int result)
{
    if (!e->checking || rq->check_gen != e->check_gen)
        return;
    if (!s_answered(result))
        s_check_fail(e, rq->zone < e->zs->z.nzones ? e->zs->z.zones[rq->zone].name : "?",
                     s_dns_err(result));
    if (--e->check_pending == 0)
        s_check_finish(e);
}

static void s_check_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    ers_t *e = arg;
    char why[64];

    (void)fd;
    (void)what;
    if (!e->checking)
        return;
    snprintf(why, sizeof why, "no answer within %d ms", e->timeout_ms);
    s_check_fail(e, "check", why);
    s_check_finish(e);
}

/* Asks each zone for 2.0.0.127.<zone>, the test entry block lists carry by convention; any
 * answer (listed, NXDOMAIN, no data) means the zone's servers work. */
static void s_check_start(ers_t *e)
{
    struct timeval tv = { e->timeout_ms / 1000, (e->timeout_ms % 1000) * 1000 };
    char name[ERS_NAME_MAX];

    if (e->checking || !e->enabled || e->zs == NULL)
        return;
    e->checking = true;
    e->check_failed = false;
    e->check_error[0] = '\0';
    e->check_pending = 0;
    evtimer_add(e->check_deadline, &tv);
    for (size_t i = 0; i < e->zs->z.nzones; i++) {
        snprintf(name, sizeof name, "2.0.0.127.%s", e->zs->z.zones[i].name);
        if (s_req_send(e, name, NULL, i) != NULL)
            e->check_pending++;
        else
            s_check_fail(e, e->zs->z.zones[i].name, "request refused by the resolver");
    }
    if (e->check_pending == 0)
        s_check_finish(e);
}

static void s_check_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s_check_start(arg);
}

/* --- queries ------------------------------------------------------------------------------ */

static void s_hit(struct ers_query *q, const char *zone, const char *listing)
{
    struct ers_result *r = &q->res;
    size_t n = strlen(r->detail);

    for (size_t i = 0; i < r->nhits; i++)
        if (strcmp(r->listings[i], listing) == 0)
            goto detail; /* the same listing from another zone: once in the list */
    if (r->nhits == ERS_HITS_MAX)
        return;
    snprintf(r->listings[r->nhits++], sizeof r->listings[0], "%s", listing);
detail:
    snprintf(r->detail + n, sizeof r->detail - n, "%s%s:%s", n > 0 ? "," : "", zone, listing);
}

static void s_query_complete(struct ers_query *q, bool timed_out)
{
    struct ers_result *r = &q->res;

    evtimer_del(q->deadline);
    for (size_t i = 0; i < ERS_ZONES_MAX; i++) {
        struct ers_req *rq = q->reqs[i];
        if (rq == NULL)
            continue;
        q->reqs[i] = NULL;
        rq->q = NULL;                          /* its callback just frees it */
        evdns_cancel_request(q->e->dns, rq->r);
    }
    q->pending = 0;
    q->done = true;
    if (r->nhits > 0) {
        r->outcome = ERS_LISTED;
    } else if (timed_out || q->errors) {
        r->outcome = ERS_SKIPPED;
        if (r->detail[0] == '\0')
            snprintf(r->detail, sizeof r->detail, "no answer within %d ms", q->e->timeout_ms);
    } else {
        r->outcome = ERS_NOT_LISTED;
    }
    if (timed_out || q->errors)
        s_check_start(q->e); /* a look-up failed: is DNS down? (no-op if a check runs) */
    if (q->fn != NULL)
        q->fn(q->arg); /* may free q: last */
}

static void s_query_answer(struct ers_query *q, const struct ers_req *rq, int result, char type,
                           int count, const void *addrs)
{
    const struct ers_zone *z = &q->zs->z.zones[rq->zone];

    q->reqs[rq->zone] = NULL;
    if (result == DNS_ERR_NONE && type == DNS_IPv4_A) {
        const uint32_t *a = addrs;
        for (int i = 0; i < count; i++) {
            const char *listing = ers_zones_listing(z, ntohl(a[i]));
            if (listing != NULL)
                s_hit(q, z->name, listing);
        }
    } else if (!s_answered(result)) {
        size_t n = strlen(q->res.detail);
        q->errors = true;
        if (q->res.nhits == 0)
            snprintf(q->res.detail + n, sizeof q->res.detail - n, "%s%s:%s", n > 0 ? "," : "",
                     z->name, s_dns_err(result));
    }
    if (--q->pending == 0)
        s_query_complete(q, false);
}

static void s_req_cb(int result, char type, int count, int ttl, void *addrs, void *arg)
{
    struct ers_req *rq = arg;

    (void)ttl;
    s_req_unlink(rq);
    if (rq->q != NULL) {
        struct ers_query *q = rq->q;
        rq->q = NULL;
        s_query_answer(q, rq, result, type, count, addrs);
    } else if (rq->check) {
        s_check_answer(rq->e, rq, result);
    }
    free(rq);
}

static void s_query_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    s_query_complete(arg, true);
}

/* "1.2.3.4" → "4.3.2.1"; IPv6 → 32 reversed nibbles. -1 if addr is no address. */
static int s_reverse(const char *addr, char *out, size_t n)
{
    unsigned char a[16];

    if (strncasecmp(addr, "IPv6:", 5) == 0)
        addr += 5;
    if (inet_pton(AF_INET, addr, a) == 1) {
        snprintf(out, n, "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, a) == 1) {
        static const char hex[] = "0123456789abcdef";
        size_t k = 0;
        for (int i = 15; i >= 0 && k + 4 < n; i--) {
            out[k++] = hex[a[i] & 0xf];
            out[k++] = '.';
            out[k++] = hex[a[i] >> 4];
            out[k++] = '.';
        }
        out[k > 0 ? k - 1 : 0] = '\0';
        return 0;
    }
    return -1;
}

struct ers_query *ers_query_start(ers_t *e, const char *addr)
{
    struct timeval tv = { e->timeout_ms / 1000, (e->timeout_ms % 1000) * 1000 };
    struct ers_query *q;
    char rev[128], name[ERS_NAME_MAX];

    if (e->state == ERS_OFF)
        return NULL;
    q = xcalloc(1, sizeof *q);
    q->e = e;
    q->zs = s_zs_ref(e->zs);
    q->deadline = evtimer_new(e->base, s_query_deadline_cb, q);
    if (e->state == ERS_FAILING) {
        snprintf(q->res.detail, sizeof q->res.detail, "dns failing");
    } else if (s_reverse(addr != NULL ? addr : "", rev, sizeof rev) != 0) {
        snprintf(q->res.detail, sizeof q->res.detail, "no client address");
    } else {
        for (size_t i = 0; i < q->zs->z.nzones; i++) {
            snprintf(name, sizeof name, "%s.%s", rev, q->zs->z.zones[i].name);
            q->reqs[i] = s_req_send(e, name, q, i);
            if (q->reqs[i] != NULL)
                q->pending++;
        }
        if (q->pending > 0) {
            evtimer_add(q->deadline, &tv);
            return q;
        }
        snprintf(q->res.detail, sizeof q->res.detail, "request refused by the resolver");
    }
    q->done = true;
    q->res.outcome = ERS_SKIPPED;
    return q;
}

bool ers_query_done(const struct ers_query *q) { return q->done; }

void ers_query_wait(struct ers_query *q, void (*fn)(void *arg), void *arg)
{
    q->fn = fn;
    q->arg = arg;
}

const struct ers_result *ers_query_result(const struct ers_query *q) { return &q->res; }

void ers_query_free(struct ers_query **qp)
{
    struct ers_query *q = qp != NULL ? *qp : NULL;

    if (q == NULL)
        return;
    q->fn = NULL;
    if (!q->done) {
        q->done = true; /* detaches the requests without a second completion */
        for (size_t i = 0; i < ERS_ZONES_MAX; i++) {
            struct ers_req *rq = q->reqs[i];
            if (rq == NULL)
                continue;
            rq->q = NULL;
            evdns_cancel_request(q->e->dns, rq->r);
        }
    }
    event_free(q->deadline);
    s_zs_unref(&q->zs);
    free(q);
    *qp = NULL;
}

/* --- the service -------------------------------------------------------------------------- */

/* evdns's own messages ("All nameservers have failed", …): the state transitions above are
 * what an operator needs; these only help debugging. */
static void s_evdns_log(int is_warning, const char *msg)
{
    log_debug("evdns%s: %s", is_warning ? " warning" : "", msg);
}

ers_t *ers_new(struct event_base *base, const char *dns_server, char *err, size_t errlen)
{
    ers_t *e = xcalloc(1, sizeof *e);
    int rc;

    e->base = base;
    evdns_set_log_fn(s_evdns_log);
    e->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (e->dns == NULL) {
        snprintf(err, errlen, "evdns: cannot create a resolver");
        free(e);
        return NULL;
    }
    if (dns_server != NULL && dns_server[0] != '\0') {
        rc = evdns_base_nameserver_ip_add(e->dns, dns_server);
        if (rc != 0)
            snprintf(err, errlen, "dns_server \"%s\" is not IP[:PORT]", dns_server);
    } else {
        /* Not fatal: evdns falls back to 127.0.0.1, and ERS may well be off. */
        if (evdns_base_resolv_conf_parse(e->dns, DNS_OPTION_NAMESERVERS | DNS_OPTION_MISC,
                                         "/etc/resolv.conf") != 0)
            log_warn("ers: /etc/resolv.conf unusable: asking 127.0.0.1 (set dns_server in "
                     "child.conf to choose)");
        rc = 0;
    }
    if (rc != 0) {
        evdns_base_free(e->dns, 0);
        free(e);
        return NULL;
    }
    evdns_base_set_option(e->dns, "randomize-case:", "0");
    evdns_base_set_option(e->dns, "attempts:", ERS_ATTEMPTS);
    e->check_timer = event_new(base, -1, EV_PERSIST, s_check_timer_cb, e);
    e->check_deadline = evtimer_new(base, s_check_deadline_cb, e);
    e->state = ERS_OFF;
    e->timeout_ms = 2000;
    return e;
}

void ers_free(ers_t **ep)
{
    ers_t *e = ep != NULL ? *ep : NULL;

    if (e == NULL)
        return;
    evdns_base_free(e->dns, 0); /* no callbacks: the requests' records go here */
    while (e->reqs != NULL) {
        struct ers_req *rq = e->reqs;
        e->reqs = rq->next;
        free(rq);
    }
    event_free(e->check_timer);
    event_free(e->check_deadline);
    s_zs_unref(&e->zs);
    free(e);
    *ep = NULL;
}

void ers_configure(ers_t *e, const settings_t *s)
{
    bool enabled = settings_bool(s, SETTING_ERS_ENABLED);
    int timeout_ms = (int)settings_int(s, SETTING_ERS_TIMEOUT_MS);
    int interval_s = (int)settings_int(s, SETTING_ERS_CHECK_INTERVAL_S);
    struct zoneset *zs = xcalloc(1, sizeof *zs);
    struct timeval every = { interval_s, 0 };
    char err[512], tmo[32];
    bool changed;

    if (ers_zones_parse(settings_str(s, SETTING_ERS_ZONES), &zs->z, err, sizeof err) != 0) {
        log_warn("ers.zones refused: %s", err); /* the parent validates: not reached */
        zs->z.nzones = 0;
    }
    if (zs->z.nzones == 0) {
        free(zs);
        zs = NULL;
    } else {
        zs->refs = 1;
    }
    changed = enabled != e->enabled || timeout_ms != e->timeout_ms ||
              (zs == NULL) != (e->zs == NULL) ||
              (zs != NULL && memcmp(&zs->z, &e->zs->z, sizeof zs->z) != 0);
    if (!changed && interval_s == e->interval_s) {
        s_zs_unref(&zs);
        return;
    }
    s_zs_unref(&e->zs);
    e->zs = zs;
    e->enabled = enabled;
    e->timeout_ms = timeout_ms;
    e->interval_s = interval_s;
    /* each of the ERS_ATTEMPTS tries gets half the time */
    snprintf(tmo, sizeof tmo, "%d.%03d", timeout_ms / 2000, (timeout_ms / 2) % 1000);
    evdns_base_set_option(e->dns, "timeout:", tmo);
    if (e->checking) { /* its answers are for the old zones */
        e->checking = false;
        e->check_gen++;
        evtimer_del(e->check_deadline);
    }
    event_del(e->check_timer);
    if (!enabled || zs == NULL) {
        s_set_state(e, ERS_OFF, "");
        return;
    }
    log_info("ers enabled zones=%zu timeout_ms=%d check_interval_s=%d", zs->z.nzones, timeout_ms,
             interval_s);
    if (e->state == ERS_OFF)
        e->state = ERS_OK; /* look-ups go ahead until a check says otherwise */
    event_add(e->check_timer, &every);
    s_check_start(e);
}

const char *ers_state_name(const ers_t *e)
{
    switch (e->state) {
    case ERS_OK: return "ok";
    case ERS_FAILING: return "failing";
    default: return "off";
    }
}

const char *ers_outcome_name(enum ers_outcome o)
{
    switch (o) {
    case ERS_LISTED: return "listed";
    case ERS_NOT_LISTED: return "not_listed";
    default: return "skipped";
    }
}
