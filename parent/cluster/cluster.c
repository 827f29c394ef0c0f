/* cluster: see cluster.h. One thread, one zmq_poll loop over: the cluster ROUTER, the
 * enrolment ROUTER, the ZAP handler (inproc REP), the database connection's socket (NOTIFY)
 * and the two database threads' descriptors. A child's identity is never taken from what it
 * says: it is the User-Id that the ZAP handler bound to its CURVE key during the handshake.
 *
 * R10.1: the loop moves messages and keeps liveness; what children report goes to the
 * database on threads of its own. Report batches go to the ingest thread (acknowledged once
 * committed, refused when its queue is full: the child sends again); state (last seen,
 * connected, address, versions, config acks, Health) is kept per child in memory and written
 * for all changed children in one statement per flush by the writer thread, with the up/down
 * events (many at once become one event and one mail, R10.2). */
#include "cluster/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "admin/admin.h"
#include "admin/admin_command.h"
#include "cluster/dbthread.h"
#include "cluster/enrol.h"
#include "cluster/cmdroute.h"
#include "cluster/ingest.h"
#include "cluster/keytab.h"
#include "cluster/reconcile_sched.h"
#include "db/db.h"
#include "link.h"
#include "log.h"
#include "scan_latency.h"
#include "util.h"
#include "wire.h"

#define CLUSTER_RID_MAX 256          /* bytes of a ROUTER routing id */
#define CLUSTER_TICK_MS 500          /* housekeeping resolution */
#define CLUSTER_DB_RETRY_MS 2000     /* reconnect interval while PostgreSQL is away */
#define CLUSTER_SEEN_WRITE_MS 2000   /* last_seen is written at most this often per child */
#define CLUSTER_REFUSAL_LOG_PER_S 20 /* cap on "refused" lines under a connection flood */
#define CLUSTER_FLUSH_MS 200         /* children's state written at most this often */
#define CLUSTER_INGEST_QUEUE_MAX 32  /* report batches waiting for each ingest thread; more are
                                      * not taken (the child sends them again) */
#define CLUSTER_EVENT_WINDOW_MS 5000 /* up/downs are gathered this long from the first */
#define CLUSTER_EVENTS_SINGLE_MAX 3  /* up/downs in one window written one by one; more: one
                                      * event (and one mail) naming them */
#define CLUSTER_EVENT_NAMES_MAX 20   /* names listed in such an event */
#define CLUSTER_IO_THREADS 2         /* libzmq I/O threads (its default is 1) */
#define CLUSTER_STOP_WAIT_MS 5000    /* at stop, how long the last state flush may take */
#define CLUSTER_LOOKUP_QUEUE_MAX 256 /* enrolment requests waiting for the look-ups thread (a
                                      * token's takes 2-5 ms: the last waits about a second);
                                      * more are not taken (the child asks again after 2 s) */
#define CLUSTER_SLOW_ROUND_MS 500    /* a loop round longer than this is logged (at most every
                                      * 10 s): heartbeats are due every 2 s */
#define CLUSTER_ZAP_MISS_LOOKUPS_PER_S 20 /* unknown keys confirmed in the database, a second;
                                           * more are refused from memory alone */
#define CLUSTER_KEYS_REFRESH_MS 60000 /* the keys are reloaded at least this often, should a
                                       * notification have been lost */

/* A counter over one-second windows: at most so many of something a second. */
struct per_second {
    uint64_t window_ms;
    unsigned count;
};

/* What is to be written of a child at the next flush. */
struct peer_state {
    bool dirty;
    bool seen;                 /* last_seen = now() */
    int connected;             /* -1 unchanged, 0/1 */
    bool address;              /* write peer.address */
    char *software_version;    /* NULL unchanged */
    int64_t applied;           /* -1 unchanged, 0 none (NULL), else the version */
    bool error_set;
    char *error;               /* with error_set: NULL clears config_error */
    json_t *health;            /* the last Health; NULL unchanged */
};

struct peer {
    int64_t id;
    char name[64];
    uint8_t rid[CLUSTER_RID_MAX];
    size_t ridlen;
    char address[64];
    bool up;
    bool gone;                 /* removed (or no longer enrolled): its messages are ignored */
    uint64_t last_rx_ms, last_tx_ms, last_seen_write_ms;
    struct peer_state st;
};

struct cluster_event {
    int64_t child_id;
    bool down;
    char name[64];
    char text[160];
};

struct cluster {
    const struct cluster_options *opt;
    void *ctx, *router, *enrol, *zap;
    PGconn *db;
    uint64_t db_retry_ms;
    ingest_t *ingest[CLUSTER_INGEST_THREADS_MAX]; /* report batches into the database (R7.3) */
    cmdroute_t *cmds;              /* administrators' commands to children (R7.4) */
    reconcile_sched_t *reconcile;  /* periodic reconciliation of stores and index (R5.3) */
    struct peer *peers;
    size_t npeers, cappeers;
    size_t *slots;                 /* open-addressing index of peers by id: peers[i] + 1, 0 free */
    size_t nslots;
    dbthread_t *writer;            /* R10.1: database work off this loop */
    dbthread_t *ingester[CLUSTER_INGEST_THREADS_MAX]; /* a child's batches always on one */
    unsigned ningest;
    bool writing;                  /* a state flush is with the writer */
    uint64_t next_flush_ms;
    struct cluster_event *events;  /* up/downs of the window, waiting for its end */
    size_t nevents, capevents;
    uint64_t events_since;         /* when the window's first one came */
    uint64_t ingest_refused;       /* batches not taken since the last log line */
    uint64_t ingest_refused_log_ms;
    uint64_t config_version;      /* version of the cached snapshot */
    uint8_t *snapshot;             /* packed Envelope{config} */
    size_t snapshot_len;
    struct per_second refusal_logs; /* "refused" lines under a connection flood */
    keytab_t *keys;                /* enrolled children's keys: ZAP, new peers, enrolment */
    dbthread_t *lookups;           /* key loads and enrolment requests, off this loop */
    bool keys_loading, keys_again; /* a load is with the thread; another is wanted after it */
    uint64_t keys_next_ms;         /* next periodic (or retried) load */
    struct keytab_entry *recent;   /* keys learnt from enrolments since the load in flight was
                                    * posted: that load may not have seen them */
    size_t nrecent, caprecent;
    uint64_t enrol_dropped, enrol_dropped_log_ms;
    uint64_t slow_log_ms;          /* the last "loop round took" line */
    struct per_second zap_misses;  /* unknown keys asked of the database */
};

/* --- database ----------------------------------------------------------------------------- */

static void s_keys_reload(cluster_t *c);

static int s_listen(PGconn *db, char *err, size_t errlen)
{
    if (db_exec(db, "LISTEN " ADMIN_NOTIFY_CONFIG, 0, NULL, err, errlen) != 0 ||
        db_exec(db, "LISTEN " ADMIN_NOTIFY_COMMAND, 0, NULL, err, errlen) != 0 ||
        db_exec(db, "LISTEN " ADMIN_NOTIFY_CHILDREN, 0, NULL, err, errlen) != 0)
        return -1;
    return 0;
}

static bool s_db_ok(cluster_t *c)
{
    char err[512];

    if (c->db != NULL && PQstatus(c->db) == CONNECTION_OK)
        return true;
    if (now_ms() < c->db_retry_ms)
        return false;
    c->db_retry_ms = now_ms() + CLUSTER_DB_RETRY_MS;
    db_close(&c->db);
    c->db = db_connect(c->opt->dsn, err, sizeof err);
    if (c->db == NULL) {
        log_err("%s (retrying every %d ms)", err, CLUSTER_DB_RETRY_MS);
        return false;
    }
    if (s_listen(c->db, err, sizeof err) != 0) {
        log_err("LISTEN failed: %s", err);
        db_close(&c->db);
        return false;
    }
    log_info("database connected");
    s_keys_reload(c); /* children may have been removed while no notification could come */
    return true;
}

/* --- peers -------------------------------------------------------------------------------- */

static size_t s_slot_of(const cluster_t *c, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing of the id */
    size_t i = (size_t)(h >> 20) & (c->nslots - 1);

    while (c->slots[i] != 0 && c->peers[c->slots[i] - 1].id != id)
        i = (i + 1) & (c->nslots - 1);
    return i;
}

/* Peers by id in constant time (R10.1: thousands of children). */
static struct peer *s_peer_find(cluster_t *c, int64_t id)
{
    size_t i;

    if (c->nslots == 0)
        return NULL;
    i = s_slot_of(c, id);
    return c->slots[i] != 0 ? &c->peers[c->slots[i] - 1] : NULL;
}

/* The index at most half full: rebuilt twice as large when it would be more. */
static void s_slots_fit(cluster_t *c, size_t n)
{
    if (2 * n <= c->nslots)
        return;
    free(c->slots);
    c->nslots = c->nslots != 0 ? 2 * c->nslots : 64;
    while (2 * n > c->nslots)
        c->nslots *= 2;
    c->slots = xcalloc(c->nslots, sizeof *c->slots);
    for (size_t k = 0; k < c->npeers; k++)
        c->slots[s_slot_of(c, c->peers[k].id)] = k + 1;
}

/* A child seen for the first time since the start: known from the keys, no database. */
static struct peer *s_peer_add(cluster_t *c, int64_t id)
{
    const struct keytab_entry *e = keytab_by_id(c->keys, id);
    struct peer *pe;

    if (e == NULL)
        return NULL; /* removed after its handshake */
    if (c->npeers == c->cappeers) {
        c->cappeers = c->cappeers ? 2 * c->cappeers : 16;
        c->peers = xrealloc(c->peers, c->cappeers * sizeof *c->peers);
    }
    pe = &c->peers[c->npeers++];
    memset(pe, 0, sizeof *pe);
    pe->id = id;
    pe->st.connected = -1;
    pe->st.applied = -1;
    strlcpy_p(pe->name, e->name, sizeof pe->name);
    s_slots_fit(c, c->npeers);
    c->slots[s_slot_of(c, id)] = c->npeers;
    return pe;
}

static void s_peer_send(cluster_t *c, struct peer *pe, const envelope_t *env)
{
    if (wire_send_zmq(c->router, pe->rid, pe->ridlen, env) != 0)
        log_debug("send to %s failed: %s", pe->name, zmq_strerror(errno));
    pe->last_tx_ms = now_ms();
}

static void s_peer_send_raw(cluster_t *c, struct peer *pe, const uint8_t *buf, size_t len)
{
    if (zmq_send(c->router, pe->rid, pe->ridlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(c->router, buf, len, ZMQ_DONTWAIT) < 0)
        log_warn("send to %s failed: %s", pe->name, zmq_strerror(errno));
    pe->last_tx_ms = now_ms();
}

static void s_peer_heartbeat(cluster_t *c, struct peer *pe)
{
    Portcullis__Heartbeat hb = PORTCULLIS__HEARTBEAT__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    hb.sent_ms = wall_ms();
    env.body_case = PORTCULLIS__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_peer_send(c, pe, &env);
}

/* cmdroute's way to a child: only a connected one is sent to. */
static int s_command_send(void *arg, int64_t child_id, const envelope_t *env)
{
    cluster_t *c = arg;
    struct peer *pe = s_peer_find(c, child_id);

    if (pe == NULL || !pe->up)
        return -1;
    s_peer_send(c, pe, env);
    return 0;
}

/* --- children's state, written in batches (R10.1) ------------------------------------------ */

static void s_state_clear(struct peer_state *st)
{
    free(st->software_version);
    free(st->error);
    json_decref(st->health);
    memset(st, 0, sizeof *st);
    st->connected = -1;
    st->applied = -1;
}

static void s_set_text(char **field, const char *v)
{
    free(*field);
    *field = v != NULL ? xstrdup(v) : NULL;
}

static void s_event(cluster_t *c, struct peer *pe, bool down, const char *text)
{
    if (c->nevents == 0)
        c->events_since = now_ms(); /* R10.2: a storm falls into one window */
    if (c->nevents == c->capevents) {
        c->capevents = c->capevents ? 2 * c->capevents : 16;
        c->events = xrealloc(c->events, c->capevents * sizeof *c->events);
    }
    c->events[c->nevents].child_id = pe->id;
    c->events[c->nevents].down = down;
    strlcpy_p(c->events[c->nevents].name, pe->name, sizeof c->events[0].name);
    strlcpy_p(c->events[c->nevents].text, text, sizeof c->events[0].text);
    c->nevents++;
}

static void s_peer_up(cluster_t *c, struct peer *pe)
{
    char msg[160];

    if (pe->up)
        return;
    pe->up = true;
    log_info("child up name=%s address=%s", pe->name, pe->address);
    pe->st.dirty = pe->st.seen = pe->st.address = true;
    pe->st.connected = 1;
    pe->last_seen_write_ms = now_ms();
    snprintf(msg, sizeof msg, "child %s up from %s", pe->name, pe->address);
    s_event(c, pe, false, msg);
}

static void s_peer_down(cluster_t *c, struct peer *pe, uint64_t silent_ms)
{
    char msg[160];

    pe->up = false;
    log_warn("child down name=%s address=%s silent_ms=%" PRIu64, pe->name, pe->address, silent_ms);
    pe->st.dirty = true;
    pe->st.connected = 0;
    snprintf(msg, sizeof msg, "child %s down: no contact for %" PRIu64 " ms", pe->name, silent_ms);
    s_event(c, pe, true, msg);
}

struct flush {
    char *rows;                    /* JSON array of the changed children */
    struct cluster_event *events;
    size_t nevents;
    cluster_t *c;
};

static const char s_sql_state[] =
    "UPDATE children c SET "
    " last_seen = CASE WHEN v.seen THEN now() ELSE c.last_seen END, "
    " connected = coalesce(v.connected, c.connected), "
    " address = coalesce(v.address, c.address), "
    " software_version = coalesce(v.software_version, c.software_version), "
    " applied_config_version = CASE WHEN v.applied IS NULL THEN c.applied_config_version "
    "   WHEN v.applied = 0 THEN NULL ELSE v.applied END, "
    " config_error = CASE WHEN v.error_set THEN v.error ELSE c.config_error END, "
    " last_health = coalesce(v.health, c.last_health), "
    " last_health_at = CASE WHEN v.health IS NULL THEN c.last_health_at ELSE now() END "
    "FROM jsonb_to_recordset($1::jsonb) AS v(id bigint, seen boolean, connected boolean, "
    " address text, software_version text, applied bigint, error_set boolean, error text, "
    " health jsonb) "
    "WHERE c.id = v.id";

/* One event per child, or — when many fell (or came back) at once — one naming them. */
static bool s_flush_events(PGconn *db, const struct flush *f, bool down)
{
    size_t n = 0, listed = 0;
    char idtxt[32], msg[2048], subject[160];
    size_t off;

    for (size_t i = 0; i < f->nevents; i++)
        n += f->events[i].down == down;
    if (n == 0)
        return true;
    if (n <= CLUSTER_EVENTS_SINGLE_MAX) {
        for (size_t i = 0; i < f->nevents; i++) {
            const struct cluster_event *e = &f->events[i];
            int rc;
            if (e->down != down)
                continue;
            snprintf(idtxt, sizeof idtxt, "%" PRId64, e->child_id);
            if (down) {
                snprintf(subject, sizeof subject, "Portcullis: child %s is down", e->name);
                rc = db_event_notify(db, "cluster", "warning", idtxt, e->text, subject);
            } else {
                rc = db_event(db, "cluster", "info", idtxt, e->text);
            }
            if (rc != 0)
                return false;
        }
        return true;
    }
    off = (size_t)snprintf(msg, sizeof msg, "%zu children %s at once:", n, down ? "down" : "up");
    for (size_t i = 0; i < f->nevents && off < sizeof msg; i++) {
        const struct cluster_event *e = &f->events[i];
        if (e->down != down)
            continue;
        if (listed == CLUSTER_EVENT_NAMES_MAX) {
            off += (size_t)snprintf(msg + off, sizeof msg - off, " and %zu more", n - listed);
            break;
        }
        off += (size_t)snprintf(msg + off, sizeof msg - off, "%s %s", listed ? "," : "", e->name);
        listed++;
    }
    if (!down)
        return db_event(db, "cluster", "info", NULL, msg) == 0;
    snprintf(subject, sizeof subject, "Portcullis: %zu children are down", n);
    return db_event_notify(db, "cluster", "warning", NULL, msg, subject) == 0;
}

static bool s_flush_run(PGconn *db, void *arg)
{
    struct flush *f = arg;
    const char *p[] = { f->rows };
    char err[512];

    if (f->rows != NULL && db_exec(db, s_sql_state, 1, p, err, sizeof err) != 0) {
        log_err("children's state not written: %s", err);
        return false;
    }
    free(f->rows); /* written: a retry after a failed event must not write it twice */
    f->rows = NULL;
    if (!s_flush_events(db, f, true) || !s_flush_events(db, f, false)) {
        if (PQstatus(db) != CONNECTION_OK)
            return false; /* the database went: the writer tries again */
        /* refused by the database itself: trying again would refuse again and hold every
         * later state write behind it */
        log_err("cluster events dropped: %s", PQerrorMessage(db));
    }
    return true;
}

static void s_flush_done(void *arg, bool ok)
{
    struct flush *f = arg;

    if (!ok)
        log_err("children's state dropped at stop: the database was unavailable");
    f->c->writing = false;
    free(f->rows);
    free(f->events);
    free(f);
}

static json_t *s_state_json(const struct peer *pe)
{
    const struct peer_state *st = &pe->st;
    json_t *o = json_pack("{s:I,s:b}", "id", (json_int_t)pe->id, "seen", st->seen);

    if (st->connected >= 0)
        json_object_set_new(o, "connected", json_boolean(st->connected));
    if (st->address)
        json_object_set_new(o, "address", json_string(pe->address));
    if (st->software_version != NULL)
        json_object_set_new(o, "software_version", json_string(st->software_version));
    if (st->applied >= 0)
        json_object_set_new(o, "applied", json_integer((json_int_t)st->applied));
    if (st->error_set) {
        json_object_set_new(o, "error_set", json_true());
        json_object_set_new(o, "error", st->error != NULL ? json_string(st->error) : json_null());
    }
    if (st->health != NULL)
        json_object_set(o, "health", st->health);
    return o;
}

/* Hands every changed child's state and the waiting events to the writer: one statement for
 * all of them. One flush at a time; while one is with the writer, changes accumulate. */
static void s_flush(cluster_t *c, bool force)
{
    json_t *rows;
    struct flush *f;
    bool events;

    if (c->writing || (!force && now_ms() < c->next_flush_ms))
        return;
    events = c->nevents > 0 && (force || now_ms() >= c->events_since + CLUSTER_EVENT_WINDOW_MS);
    c->next_flush_ms = now_ms() + CLUSTER_FLUSH_MS;
    rows = json_array();
    for (size_t i = 0; i < c->npeers; i++) {
        struct peer *pe = &c->peers[i];
        if (!pe->st.dirty)
            continue;
        json_array_append_new(rows, s_state_json(pe));
        s_state_clear(&pe->st);
    }
    if (json_array_size(rows) == 0 && !events) {
        json_decref(rows);
        return;
    }
    f = xcalloc(1, sizeof *f);
    f->c = c;
    f->rows = json_array_size(rows) > 0 ? json_dumps(rows, JSON_COMPACT) : NULL;
    json_decref(rows);
    if (events) {
        f->events = c->events;
        f->nevents = c->nevents;
        c->events = NULL;
        c->nevents = c->capevents = 0;
    }
    if (!dbthread_post(c->writer, s_flush_run, s_flush_done, f)) {
        log_err("children's state not queued (the writer is stopping)");
        free(f->rows);
        free(f->events);
        free(f);
        return;
    }
    c->writing = true;
}

/* --- configuration snapshots -------------------------------------------------------------- */

/* Rebuilds the cached snapshot if the database has a newer version; true if it changed. */
static bool s_snapshot_refresh(cluster_t *c)
{
    char err[512];
    settings_t *s;
    Portcullis__ConfigSnapshot snap = PORTCULLIS__CONFIG_SNAPSHOT__INIT;
    Portcullis__Setting items[SETTING__COUNT], *ptrs[SETTING__COUNT];
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    if (!s_db_ok(c))
        return false;
    if ((s = admin_settings_effective(c->db, err, sizeof err)) == NULL) {
        log_err("configuration not loaded: %s", err);
        return false;
    }
    if (settings_version(s) == c->config_version) {
        settings_free(&s);
        return false;
    }
    for (size_t i = 0; i < SETTING__COUNT; i++) {
        const struct setting_def *d = settings_def((enum setting_id)i);
        portcullis__setting__init(&items[i]);
        items[i].section = (char *)d->section;
        items[i].name = (char *)d->name;
        items[i].value = (char *)settings_str(s, d->id);
        ptrs[i] = &items[i];
    }
    snap.version = settings_version(s);
    snap.n_settings = SETTING__COUNT;
    snap.settings = ptrs;
    /* Rules and areas (R5.1), read after the settings: never older than this version. */
    if (admin_snapshot_fill(c->db, &snap, err, sizeof err) != 0) {
        log_err("configuration not loaded: %s", err);
        settings_free(&s);
        return false;
    }
    env.body_case = PORTCULLIS__ENVELOPE__BODY_CONFIG;
    env.config = &snap;
    free(c->snapshot);
    c->snapshot = wire_pack(&env, &c->snapshot_len);
    admin_snapshot_clear(&snap);
    c->config_version = snap.version;
    settings_free(&s);
    log_info("configuration version=%" PRIu64 " loaded", c->config_version);
    return true;
}

static void s_push_config_all(cluster_t *c)
{
    unsigned n = 0;

    for (size_t i = 0; i < c->npeers; i++) {
        if (c->peers[i].up) {
            s_peer_send_raw(c, &c->peers[i], c->snapshot, c->snapshot_len);
            n++;
        }
    }
    log_info("configuration version=%" PRIu64 " pushed to %u children", c->config_version, n);
}

static void s_db_input(cluster_t *c)
{
    PGnotify *n;
    bool any = false, commands = false, keys = false;

    if (PQconsumeInput(c->db) == 0) {
        log_err("database connection lost: %s", PQerrorMessage(c->db));
        db_close(&c->db);
        return;
    }
    while ((n = PQnotifies(c->db)) != NULL) {
        if (strcmp(n->relname, ADMIN_NOTIFY_COMMAND) == 0)
            commands = true;
        else if (strcmp(n->relname, ADMIN_NOTIFY_CHILDREN) == 0)
            keys = true;
        else
            any = true;
        PQfreemem(n);
    }
    if (keys)
        s_keys_reload(c);
    if (any && s_snapshot_refresh(c))
        s_push_config_all(c);
    if (commands && s_db_ok(c))
        cmdroute_dispatch(c->cmds, c->db);
}

/* --- enrolled keys (R10.1, R10.2) ----------------------------------------------------------- */

struct keys_job {
    cluster_t *c;
    keytab_t *t;
    char err[256];
};

static bool s_keys_run(PGconn *db, void *arg)
{
    struct keys_job *j = arg;

    j->t = keytab_load(db, j->err, sizeof j->err);
    return j->t != NULL;
}

/* Peers no longer in the keys are cut off: nothing they send is taken and they get no
 * heartbeats, so their link dies and their next handshake is refused. */
static void s_peers_match_keys(cluster_t *c)
{
    for (size_t i = 0; i < c->npeers; i++) {
        struct peer *pe = &c->peers[i];
        const struct keytab_entry *e = keytab_by_id(c->keys, pe->id);

        if (e == NULL && !pe->gone) {
            log_warn("child %s (id=%" PRId64 ") is no longer enrolled; its link is cut", pe->name,
                     pe->id);
            pe->gone = true;
            pe->up = false;
            s_state_clear(&pe->st); /* its row is gone, or no longer its own */
        } else if (e != NULL) {
            pe->gone = false;
            strlcpy_p(pe->name, e->name, sizeof pe->name);
        }
    }
}

static void s_keys_done(void *arg, bool ok)
{
    struct keys_job *j = arg;
    cluster_t *c = j->c;

    c->keys_loading = false;
    if (!ok) {
        log_err("enrolled keys not reloaded (%s); the last ones stay in force, retrying",
                j->err[0] != '\0' ? j->err : "database unavailable");
        c->keys_next_ms = now_ms() + CLUSTER_DB_RETRY_MS;
    } else {
        for (size_t i = 0; i < c->nrecent; i++) /* enrolled while it was loading */
            if (keytab_by_id(j->t, c->recent[i].id) == NULL)
                keytab_put(j->t, c->recent[i].id, c->recent[i].key, c->recent[i].name);
        keytab_free(&c->keys);
        c->keys = j->t;
        c->keys_next_ms = now_ms() + CLUSTER_KEYS_REFRESH_MS;
        log_debug("enrolled keys loaded: %zu", keytab_count(c->keys));
        s_peers_match_keys(c);
    }
    c->nrecent = 0;
    free(j);
    if (c->keys_again)
        s_keys_reload(c);
}

/* Loads the keys again on the look-ups thread: one load at a time, a wish for another while
 * it runs is remembered (a storm of enrolments makes two loads, not thousands). */
static void s_keys_reload(cluster_t *c)
{
    struct keys_job *j;

    if (c->lookups == NULL)
        return; /* starting: cluster_new loads them itself */
    if (c->keys_loading) {
        c->keys_again = true;
        return;
    }
    j = xcalloc(1, sizeof *j);
    j->c = c;
    if (!dbthread_post(c->lookups, s_keys_run, s_keys_done, j)) {
        free(j);
        c->keys_next_ms = now_ms() + CLUSTER_TICK_MS; /* the queue is full: at the next tick */
        return;
    }
    c->keys_loading = true;
    c->keys_again = false;
    c->nrecent = 0;
}

/* A key an enrolment has just written: at once in the table, and kept for the load in flight. */
static void s_keys_learn(cluster_t *c, int64_t id, const char *key, const char *name)
{
    keytab_put(c->keys, id, key, name);
    if (!c->keys_loading)
        return;
    if (c->nrecent == c->caprecent) {
        c->caprecent = c->caprecent ? 2 * c->caprecent : 16;
        c->recent = xrealloc(c->recent, c->caprecent * sizeof *c->recent);
    }
    c->recent[c->nrecent].id = id;
    strlcpy_p(c->recent[c->nrecent].key, key, sizeof c->recent[0].key);
    strlcpy_p(c->recent[c->nrecent].name, name, sizeof c->recent[0].name);
    c->nrecent++;
}

/* --- ZAP: who may connect ------------------------------------------------------------------ */

/* At most max per second. */
static bool s_per_second_allowed(struct per_second *w, unsigned max)
{
    uint64_t now = now_ms();

    if (now - w->window_ms >= 1000) {
        w->window_ms = now;
        w->count = 0;
    }
    return ++w->count <= max;
}

static void s_zap_reply(void *zap, const char *reqid, size_t reqidlen, const char *code,
                        const char *text, const char *user)
{
    zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(zap, reqid, reqidlen, ZMQ_SNDMORE);
    zmq_send(zap, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(zap, "", 0, 0);
}

static void s_zap_handle(cluster_t *c)
{
    /* Frames: version, request id, domain, address, routing id, mechanism, credentials… */
    char frames[7][256];
    size_t lens[7] = { 0 };
    int nf = 0, more = 1;
    size_t moresz = sizeof more;
    char key[KEYS_Z85_LEN + 1] = "", address[64];

    while (more) {
        char buf[256];
        int n = zmq_recv(c->zap, buf, sizeof buf, 0);
        if (n < 0)
            return;
        if (nf < 7) {
            lens[nf] = (size_t)n < sizeof buf ? (size_t)n : sizeof buf;
            memcpy(frames[nf], buf, lens[nf]);
            nf++;
        }
        zmq_getsockopt(c->zap, ZMQ_RCVMORE, &more, &moresz);
    }
    if (nf < 7 || lens[5] != 5 || memcmp(frames[5], "CURVE", 5) != 0 || lens[6] != 32) {
        if (nf >= 2)
            s_zap_reply(c->zap, frames[1], lens[1], "400", "CURVE required", "");
        return;
    }
    zmq_z85_encode(key, (const uint8_t *)frames[6], 32);
    snprintf(address, sizeof address, "%.*s", (int)lens[3], frames[3]);

    if (lens[2] == strlen(LINK_ZAP_ENROL) && memcmp(frames[2], LINK_ZAP_ENROL, lens[2]) == 0) {
        /* Anyone may ask to enrol; the request itself is judged by enrol_handle. */
        s_zap_reply(c->zap, frames[1], lens[1], "200", "OK", key);
        return;
    }
    {
        /* From memory (R10.1): a storm of handshakes costs no database round trip. While
         * PostgreSQL is away the keys last loaded stay in force; a removal made meanwhile
         * takes effect at the load that follows the reconnection. */
        const struct keytab_entry *e = keytab_by_key(c->keys, key);
        char idtxt[32];

        if (e != NULL) {
            snprintf(idtxt, sizeof idtxt, "%" PRId64, e->id);
            s_zap_reply(c->zap, frames[1], lens[1], "200", "OK", idtxt);
            return;
        }
        /* Not in memory: enrolled a moment ago by someone who wrote the row (an operator's
         * SQL, a restore) before its notification came? libzmq does not retry a refused
         * handshake, so the database is asked — a few times a second at most, whatever a
         * flood of strangers' keys costs (R8.8). */
        if (s_per_second_allowed(&c->zap_misses, CLUSTER_ZAP_MISS_LOOKUPS_PER_S) && s_db_ok(c)) {
            const char *p[] = { key };
            char err[256];
            PGresult *r = db_query(c->db, "SELECT id, name FROM children WHERE public_key = $1 "
                                          "AND enrolment = 'enrolled'", 1, p, err, sizeof err);
            int64_t id;
            if (r != NULL && PQntuples(r) == 1 && parse_int64(PQgetvalue(r, 0, 0), &id) == 0) {
                s_keys_learn(c, id, key, PQgetvalue(r, 0, 1));
                s_zap_reply(c->zap, frames[1], lens[1], "200", "OK", PQgetvalue(r, 0, 0));
                PQclear(r);
                return;
            }
            if (r == NULL)
                log_err("zap lookup: %s", err);
            PQclear(r);
        }
    }
    if (s_per_second_allowed(&c->refusal_logs, CLUSTER_REFUSAL_LOG_PER_S))
        log_warn("zap refused unenrolled key=%.8s… address=%s domain=%s", key, address,
                 LINK_ZAP_CLUSTER);
    s_zap_reply(c->zap, frames[1], lens[1], "400", "key not enrolled", "");
}

/* --- messages from children ----------------------------------------------------------------- */

/* Receives [routing id][payload] from a ROUTER; the payload's metadata says who sent it. */
static int s_recv(void *sock, uint8_t *rid, size_t *ridlen, zmq_msg_t *payload)
{
    int more = 0;
    size_t moresz = sizeof more;
    int n = zmq_recv(sock, rid, CLUSTER_RID_MAX, ZMQ_DONTWAIT);

    if (n < 0)
        return -1;
    *ridlen = (size_t)n < CLUSTER_RID_MAX ? (size_t)n : CLUSTER_RID_MAX;
    zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &moresz);
    if (!more)
        return 1; /* a lone frame: nothing to do */
    zmq_msg_init(payload);
    if (zmq_msg_recv(payload, sock, 0) < 0) {
        zmq_msg_close(payload);
        return -1;
    }
    /* Drain anything past the payload: a well-behaved child never sends it. */
    while (zmq_msg_more(payload)) {
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        zmq_msg_recv(&extra, sock, 0);
        int m = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
        if (!m)
            break;
    }
    return 0;
}

static void s_meta(zmq_msg_t *m, const char *prop, char *out, size_t outlen)
{
    const char *v = zmq_msg_gets(m, prop);
    strlcpy_p(out, v != NULL ? v : "?", outlen);
}

#define CLUSTER_STORES_MAX 8 /* store entries kept from one Health: a child has 2 */

/* Quarantine and archive usage against quota (R5.12), flagged under 1 GB (R5.13). */
static json_t *s_stores_json(const Portcullis__Health *h)
{
    json_t *a = json_array();

    for (size_t i = 0; i < h->n_stores && i < CLUSTER_STORES_MAX; i++) {
        const Portcullis__StoreUsage *u = h->stores[i];
        json_t *o = json_object();

        json_object_set_new(o, "kind", json_string(u->kind != NULL ? u->kind : ""));
        json_object_set_new(o, "bytes", json_integer((json_int_t)(u->bytes & INT64_MAX)));
        json_object_set_new(o, "files", json_integer((json_int_t)(u->files & INT64_MAX)));
        json_object_set_new(o, "quota_bytes", json_integer((json_int_t)(u->quota_bytes & INT64_MAX)));
        json_object_set_new(o, "percent", json_real(u->quota_bytes ? 100.0 * (double)u->bytes /
                                                                         (double)u->quota_bytes
                                                                   : 0.0));
        json_object_set_new(o, "quota_under_1gb", json_boolean(u->quota_bytes < (1024ull << 20)));
        json_object_set_new(o, "last_check_ms", json_integer((json_int_t)(u->last_check_ms & INT64_MAX)));
        json_object_set_new(o, "last_purge_ms", json_integer((json_int_t)(u->last_purge_ms & INT64_MAX)));
        json_object_set_new(o, "last_drift_bytes", json_integer((json_int_t)u->last_drift_bytes));
        json_array_append_new(a, o);
    }
    return a;
}

/* The scan latency histogram (issue 6 point 3): per-bucket counts against
 * SCAN_LATENCY_BOUNDS_MS (common/scan_latency.h, the same in every build), and the sum. A
 * child sending more buckets than that has the surplus folded into the last ("above every
 * bound") bucket. */
static json_t *s_scan_ms_json(const Portcullis__ScanStats *s)
{
    json_t *b = json_array();
    uint64_t counts[SCAN_LATENCY_NBUCKETS] = { 0 };

    for (size_t i = 0; i < s->n_scan_ms_buckets; i++)
        counts[i < SCAN_LATENCY_NBUCKETS ? i : SCAN_LATENCY_NBUCKETS - 1] +=
            s->scan_ms_buckets[i];
    for (size_t i = 0; i < SCAN_LATENCY_NBUCKETS; i++)
        json_array_append_new(b, json_integer((json_int_t)(counts[i] & INT64_MAX)));
    return json_pack("{s:o, s:I}", "buckets", b, "sum_ms",
                     (json_int_t)(s->scan_ms_sum & INT64_MAX));
}

static json_t *s_health_json(const Portcullis__Health *h)
{
    json_t *o = json_object(), *pats = json_object();

    json_object_set_new(o, "state", json_string(h->state ? h->state : ""));
    json_object_set_new(o, "scan_service", json_string(h->scan_service ? h->scan_service : ""));
    json_object_set_new(o, "scan_method", json_string(h->scan_method ? h->scan_method : ""));
    json_object_set_new(o, "smart_scan_state",
                        json_string(h->smart_scan_state ? h->smart_scan_state : ""));
    json_object_set_new(o, "ers_state", json_string(h->ers_state ? h->ers_state : ""));
    json_object_set_new(o, "mta_state", json_string(h->mta_state ? h->mta_state : ""));
    json_object_set_new(o, "config_version", json_integer((json_int_t)h->config_version));
    for (size_t i = 0; i < h->n_patterns; i++)
        json_object_set_new(pats, h->patterns[i]->component, json_string(h->patterns[i]->version));
    json_object_set_new(o, "patterns", pats);
    json_object_set_new(o, "update_state", json_string(h->update_state ? h->update_state : ""));
    json_object_set_new(o, "messages_per_minute", json_integer(h->messages_per_minute));
    json_object_set_new(o, "scan_restarts", json_integer(h->scan_restarts));
    json_object_set_new(o, "uptime_s", json_integer((json_int_t)h->uptime_s));
    json_object_set_new(o, "spool_records", json_integer((json_int_t)h->spool_records));
    json_object_set_new(o, "spool_bytes", json_integer((json_int_t)h->spool_bytes));
    json_object_set_new(o, "stores", s_stores_json(h));
    if (h->stats != NULL) {
        const Portcullis__ScanStats *s = h->stats;
        json_t *st = json_object();
        json_object_set_new(st, "connections", json_integer((json_int_t)s->connections));
        json_object_set_new(st, "messages_relayed", json_integer((json_int_t)s->messages_relayed));
        json_object_set_new(st, "messages_tempfailed", json_integer((json_int_t)s->messages_tempfailed));
        json_object_set_new(st, "messages_rejected", json_integer((json_int_t)s->messages_rejected));
        json_object_set_new(st, "inflight", json_integer(s->inflight));
        json_object_set_new(st, "sessions", json_integer(s->sessions));
        json_object_set_new(st, "bytes_relayed", json_integer((json_int_t)s->bytes_relayed));
        json_object_set_new(st, "messages_quarantined",
                            json_integer((json_int_t)s->messages_quarantined));
        json_object_set_new(st, "messages_deleted", json_integer((json_int_t)s->messages_deleted));
        json_object_set_new(st, "viruses_found", json_integer((json_int_t)s->viruses_found));
        json_object_set_new(st, "scan_exceptions", json_integer((json_int_t)s->scan_exceptions));
        json_object_set_new(st, "engine_swaps", json_integer((json_int_t)s->engine_swaps));
        json_object_set_new(st, "signature_version",
                            json_string(s->signature_version != NULL ? s->signature_version : ""));
        json_object_set_new(st, "scan_ms", s_scan_ms_json(s));
        json_object_set_new(o, "stats", st);
    }
    return o;
}

/* A report batch on its way to the ingest thread (R7.3, R10.1): committed there, then
 * acknowledged from the loop; without the database nothing is acknowledged and the child
 * sends the batch again later. */
struct ingest_job {
    cluster_t *c;
    ingest_t *in;        /* its thread's */
    int64_t child_id;
    char name[64];
    uint8_t *raw;        /* the packed Envelope, unpacked in the ingest thread */
    size_t rawlen;
    envelope_t *env;
    uint64_t up_to;
    bool bad;            /* undecodable: dropped, never acknowledged */
    char err[512];
};

static bool s_ingest_run(PGconn *db, void *arg)
{
    struct ingest_job *j = arg;

    if (j->env == NULL && !j->bad) {
        j->env = wire_unpack(j->raw, j->rawlen);
        free(j->raw);
        j->raw = NULL;
        if (j->env == NULL || j->env->body_case != PORTCULLIS__ENVELOPE__BODY_REPORT_BATCH) {
            j->bad = true;
            snprintf(j->err, sizeof j->err, "undecodable report batch; dropped");
        }
    }
    if (j->bad)
        return true; /* nothing the database can do: answered in done */
    if (ingest_batch(j->in, db, j->child_id, j->name, j->env->report_batch, &j->up_to,
                     j->err, sizeof j->err) != 0) {
        j->up_to = 0;
        return false;
    }
    return true;
}

static void s_ingest_done(void *arg, bool ok)
{
    struct ingest_job *j = arg;
    struct peer *pe = s_peer_find(j->c, j->child_id);

    if (j->bad)
        log_warn("child %s: %s", j->name, j->err);
    else if (!ok)
        log_err("reports from child %s not stored (the child keeps them): %s", j->name,
                j->err[0] != '\0' ? j->err : "database unavailable");
    else if (j->up_to != 0 && pe != NULL && pe->up) {
        Portcullis__ReportAck a = PORTCULLIS__REPORT_ACK__INIT;
        envelope_t out = PORTCULLIS__ENVELOPE__INIT;
        a.spool_epoch = j->env->report_batch->spool_epoch;
        a.up_to_seq = j->up_to;
        out.body_case = PORTCULLIS__ENVELOPE__BODY_REPORT_ACK;
        out.report_ack = &a;
        s_peer_send(j->c, pe, &out);
    }
    wire_free(&j->env);
    free(j->raw);
    free(j);
}

/* A packed ReportBatch envelope to the ingest thread, which decodes it (the loop does not
 * spend its time on 500-record batches), if it has room. */
static void s_reports(cluster_t *c, struct peer *pe, const void *raw, size_t len)
{
    struct ingest_job *j = xcalloc(1, sizeof *j);

    j->c = c;
    j->child_id = pe->id;
    strlcpy_p(j->name, pe->name, sizeof j->name);
    j->raw = xmalloc(len);
    memcpy(j->raw, raw, len);
    j->rawlen = len;
    /* One thread per child: its batches are committed in the order they came */
    unsigned t = (unsigned)((uint64_t)pe->id % c->ningest);
    j->in = c->ingest[t];
    if (!dbthread_post(c->ingester[t], s_ingest_run, s_ingest_done, j)) {
        free(j->raw);
        free(j);
        c->ingest_refused++;
        if (now_ms() - c->ingest_refused_log_ms >= 10000) {
            log_warn("report batches not taken: %" PRIu64 " while %d wait for the database "
                     "on an ingest thread (their children send them again)", c->ingest_refused,
                     CLUSTER_INGEST_QUEUE_MAX);
            c->ingest_refused = 0;
            c->ingest_refused_log_ms = now_ms();
        }
        return;
    }
}

/* R2.3/R2.4: a child switched its scan method by itself. Recorded like an administrator's
 * change (new configuration version, pushed to every child: the policy shown says which
 * method is in force) plus a system event, the admin notification. */
static void s_child_message(cluster_t *c, struct peer *pe, const envelope_t *env)
{
    switch (env->body_case) {
    case PORTCULLIS__ENVELOPE__BODY_HELLO:
        log_info("hello from child name=%s version=%s config_version=%" PRIu64, pe->name,
                 env->hello->software_version, env->hello->config_version);
        pe->st.dirty = true;
        pe->st.applied = (int64_t)(env->hello->config_version & INT64_MAX);
        s_set_text(&pe->st.software_version, env->hello->software_version);
        s_peer_up(c, pe);
        /* Always answered (R10.1): the snapshot, or a heartbeat saying "current", so a
         * relinking child knows at once that its link is up. */
        if (env->hello->config_version != c->config_version && c->snapshot != NULL)
            s_peer_send_raw(c, pe, c->snapshot, c->snapshot_len);
        else
            s_peer_heartbeat(c, pe);
        break;
    case PORTCULLIS__ENVELOPE__BODY_CONFIG_APPLIED:
        pe->st.dirty = true;
        if (env->config_applied->ok) {
            log_info("child %s applied configuration version=%" PRIu64, pe->name,
                     env->config_applied->version);
            pe->st.applied = (int64_t)(env->config_applied->version & INT64_MAX);
            pe->st.error_set = true;
            s_set_text(&pe->st.error, NULL);
        } else {
            log_warn("child %s refused configuration version=%" PRIu64 ": %s", pe->name,
                     env->config_applied->refused_version, env->config_applied->error);
            pe->st.error_set = true;
            s_set_text(&pe->st.error, env->config_applied->error);
        }
        break;
    case PORTCULLIS__ENVELOPE__BODY_HEALTH: {
        json_decref(pe->st.health); /* a newer one replaces an unwritten one */
        pe->st.health = s_health_json(env->health);
        pe->st.dirty = true;
        break;
    }
    case PORTCULLIS__ENVELOPE__BODY_HEARTBEAT:
        break;
    case PORTCULLIS__ENVELOPE__BODY_SCAN_METHOD_CHANGED:
        /* R8.4: what a child says changes only that child's state; a switch of method is in
         * its Health and its own system event. (Children before 0.2 sent this to flip the
         * fleet's smart_scan.enabled: no more.) */
        log_info("child %s reports scan method %s; its Health shows it, the fleet setting "
                 "stays as the administrator set it", pe->name,
                 env->scan_method_changed->method);
        break;
    case PORTCULLIS__ENVELOPE__BODY_COMMAND_REPLY:
        if (s_db_ok(c))
            cmdroute_reply(c->cmds, c->db, pe->id, pe->name, env->command_reply);
        break;
    case PORTCULLIS__ENVELOPE__BODY_REPORT_BATCH: /* not unpacked here: see s_router_input */
        break;
    default:
        log_warn("child %s sent an unexpected %s message; ignored", pe->name, wire_body_name(env));
        break;
    }
}

static void s_router_input(cluster_t *c)
{
    uint8_t rid[CLUSTER_RID_MAX];
    size_t ridlen;
    zmq_msg_t payload;
    char user[32], address[64];
    int64_t id;
    struct peer *pe;
    envelope_t *env;
    bool batch;

    for (int budget = 0; budget < 1000; budget++) {
        int r = s_recv(c->router, rid, &ridlen, &payload);
        if (r < 0)
            return;
        if (r > 0)
            continue;
        s_meta(&payload, "User-Id", user, sizeof user);
        s_meta(&payload, "Peer-Address", address, sizeof address);
        batch = wire_peek_body(zmq_msg_data(&payload), zmq_msg_size(&payload)) ==
                PORTCULLIS__ENVELOPE__BODY_REPORT_BATCH;
        env = batch ? NULL : wire_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload));
        if (parse_int64(user, &id) != 0 || (env == NULL && !batch)) {
            log_warn("undecodable message from %s (user=%s); dropped", address, user);
            zmq_msg_close(&payload);
            wire_free(&env);
            continue;
        }
        pe = s_peer_find(c, id);
        if (pe == NULL)
            pe = s_peer_add(c, id);
        if (pe == NULL || pe->gone) {
            /* Removed after its handshake: nothing it says is taken, nothing is sent to it. */
            zmq_msg_close(&payload);
            wire_free(&env);
            continue;
        }
        memcpy(pe->rid, rid, ridlen);
        pe->ridlen = ridlen;
        strlcpy_p(pe->address, address, sizeof pe->address);
        pe->last_rx_ms = now_ms();
        if (!pe->up && (batch || env->body_case != PORTCULLIS__ENVELOPE__BODY_HELLO)) {
            /* Back after a silence without a Hello (link resumed): treat as up again and make
             * sure it runs the current configuration. */
            s_peer_up(c, pe);
            if (c->snapshot != NULL)
                s_peer_send_raw(c, pe, c->snapshot, c->snapshot_len);
        }
        if (pe->up && now_ms() - pe->last_seen_write_ms >= CLUSTER_SEEN_WRITE_MS) {
            pe->st.dirty = pe->st.seen = true;
            pe->st.connected = 1;
            pe->last_seen_write_ms = now_ms();
        }
        if (batch)
            s_reports(c, pe, zmq_msg_data(&payload), zmq_msg_size(&payload));
        else
            s_child_message(c, pe, env);
        zmq_msg_close(&payload);
        wire_free(&env);
    }
}

/* An enrolment request on its way to the look-ups thread (R8.3: tokens, pending requests). */
struct enrol_job {
    cluster_t *c;
    uint8_t rid[CLUSTER_RID_MAX];
    size_t ridlen;
    char key[KEYS_Z85_LEN + 1], address[64];
    envelope_t *env;
    Portcullis__EnrollReply reply;
    char msg[512];
    int64_t id;            /* enrolled: the child's row, for the keys */
    char name[KEYTAB_NAME_MAX];
};

static bool s_enrol_run(PGconn *db, void *arg)
{
    struct enrol_job *j = arg;
    const char *p[] = { j->key };
    char err[256];
    PGresult *r;

    enrol_handle(db, j->key, j->address, j->env->enroll_request, &j->reply, j->msg,
                 sizeof j->msg);
    if (j->reply.status != PORTCULLIS__ENROLL_REPLY__STATUS__ENROLLED)
        return PQstatus(db) == CONNECTION_OK;
    r = db_query(db, "SELECT id, name FROM children WHERE public_key = $1 "
                     "AND enrolment = 'enrolled'", 1, p, err, sizeof err);
    if (r != NULL && PQntuples(r) == 1 && parse_int64(PQgetvalue(r, 0, 0), &j->id) == 0)
        strlcpy_p(j->name, PQgetvalue(r, 0, 1), sizeof j->name);
    else
        j->id = 0; /* removed in between: the handshake will say so */
    PQclear(r);
    return true;
}

static void s_enrol_reply(cluster_t *c, const uint8_t *rid, size_t ridlen, const char *address,
                          Portcullis__EnrollReply *reply)
{
    envelope_t out = PORTCULLIS__ENVELOPE__INIT;

    out.body_case = PORTCULLIS__ENVELOPE__BODY_ENROLL_REPLY;
    out.enroll_reply = reply;
    if (wire_send_zmq(c->enrol, rid, ridlen, &out) != 0)
        log_debug("enrolment reply to %s not sent: %s", address, zmq_strerror(errno));
}

static void s_enrol_done(void *arg, bool ok)
{
    struct enrol_job *j = arg;

    if (!ok) {
        j->reply.status = PORTCULLIS__ENROLL_REPLY__STATUS__REFUSED;
        j->reply.message = "the parent's database is unavailable; try again later";
    } else if (j->reply.status == PORTCULLIS__ENROLL_REPLY__STATUS__ENROLLED && j->id > 0) {
        s_keys_learn(j->c, j->id, j->key, j->name); /* before the reply: its Hello comes next */
    }
    s_enrol_reply(j->c, j->rid, j->ridlen, j->address, &j->reply);
    wire_free(&j->env);
    free(j);
}

/* R10.2: an enrolled child asking again (it does after every lost link) is answered from the
 * keys at once; anything else goes to the look-ups thread, a bounded queue: in a storm the
 * surplus is dropped unanswered and those children ask again. */
static void s_enrol_input(cluster_t *c)
{
    uint8_t rid[CLUSTER_RID_MAX];
    size_t ridlen;
    zmq_msg_t payload;
    char key[64], address[64];
    envelope_t *env;

    for (int budget = 0; budget < 1000; budget++) {
        int r = s_recv(c->enrol, rid, &ridlen, &payload);
        const struct keytab_entry *e;
        struct enrol_job *j;

        if (r < 0)
            return;
        if (r > 0)
            continue;
        s_meta(&payload, "User-Id", key, sizeof key);
        s_meta(&payload, "Peer-Address", address, sizeof address);
        /* Only a small EnrollRequest is ever decoded here (R8.3): anyone may connect. */
        env = wire_is_enroll_request(zmq_msg_data(&payload), zmq_msg_size(&payload))
                  ? wire_unpack(zmq_msg_data(&payload), zmq_msg_size(&payload))
                  : NULL;
        zmq_msg_close(&payload);
        if (env == NULL || strlen(key) != KEYS_Z85_LEN) {
            if (s_per_second_allowed(&c->refusal_logs, CLUSTER_REFUSAL_LOG_PER_S))
                log_warn("enrolment socket: a message from %s is not an enrolment request; "
                         "dropped", address);
            wire_free(&env);
            continue;
        }
        e = keytab_by_key(c->keys, key);
        if (e != NULL && env->enroll_request->name != NULL &&
            strcmp(e->name, env->enroll_request->name) == 0) {
            Portcullis__EnrollReply reply = PORTCULLIS__ENROLL_REPLY__INIT;
            reply.status = PORTCULLIS__ENROLL_REPLY__STATUS__ENROLLED;
            reply.message = "enrolled";
            s_enrol_reply(c, rid, ridlen, address, &reply);
            wire_free(&env);
            continue;
        }
        j = xcalloc(1, sizeof *j);
        j->c = c;
        memcpy(j->rid, rid, ridlen);
        j->ridlen = ridlen;
        strlcpy_p(j->key, key, sizeof j->key);
        strlcpy_p(j->address, address, sizeof j->address);
        j->env = env;
        portcullis__enroll_reply__init(&j->reply);
        if (!dbthread_post(c->lookups, s_enrol_run, s_enrol_done, j)) {
            wire_free(&j->env);
            free(j);
            c->enrol_dropped++;
            if (now_ms() - c->enrol_dropped_log_ms >= 10000) {
                log_warn("enrolment requests not taken: %" PRIu64 " while %d wait for the "
                         "database (those children ask again)", c->enrol_dropped,
                         CLUSTER_LOOKUP_QUEUE_MAX);
                c->enrol_dropped = 0;
                c->enrol_dropped_log_ms = now_ms();
            }
        }
    }
}

/* --- housekeeping ------------------------------------------------------------------------- */

static void s_tick(cluster_t *c)
{
    uint64_t now = now_ms();

    /* NOTIFY is the fast path; this catches versions made while we were disconnected. */
    if (s_snapshot_refresh(c))
        s_push_config_all(c);
    if (s_db_ok(c)) {
        cmdroute_dispatch(c->cmds, c->db); /* a NOTIFY lost with a reconnect */
        cmdroute_tick(c->cmds, c->db);
    }
    if (!c->keys_loading && now >= c->keys_next_ms)
        s_keys_reload(c);
    for (size_t i = 0; i < c->npeers; i++) {
        struct peer *pe = &c->peers[i];
        if (!pe->up)
            continue;
        if (now - pe->last_rx_ms > (uint64_t)LINK_HEARTBEAT_MS * LINK_LIVENESS) {
            s_peer_down(c, pe, now - pe->last_rx_ms);
            continue;
        }
        if (now - pe->last_tx_ms >= LINK_HEARTBEAT_MS)
            s_peer_heartbeat(c, pe);
    }
}

/* --- life cycle ----------------------------------------------------------------------------- */

cluster_t *cluster_new(const struct cluster_options *opt, char *err, size_t errlen)
{
    cluster_t *c = xcalloc(1, sizeof *c);

    c->opt = opt;
    c->ctx = zmq_ctx_new();
    /* Two I/O threads: CURVE handshakes and per-message crypto of thousands of children
     * are spread over both cores, off this loop (R10.1). */
    zmq_ctx_set(c->ctx, ZMQ_IO_THREADS, CLUSTER_IO_THREADS);
    c->ningest = opt->ingest_threads >= 1 && opt->ingest_threads <= CLUSTER_INGEST_THREADS_MAX
                     ? opt->ingest_threads : 1;
    for (unsigned i = 0; i < c->ningest; i++)
        c->ingest[i] = ingest_new(); /* each used by its ingest thread only */
    c->cmds = cmdroute_new(s_command_send, c);
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq has no CURVE support; install a libzmq built with libsodium");
        goto fail;
    }
    c->db = db_connect(opt->dsn, err, errlen);
    if (c->db == NULL)
        goto fail;
    if (s_listen(c->db, err, errlen) != 0)
        goto fail;
    /* The keys first, before any socket binds: a child is judged from them (R10.1). */
    if ((c->keys = keytab_load(c->db, err, errlen)) == NULL)
        goto fail;
    c->keys_next_ms = now_ms() + CLUSTER_KEYS_REFRESH_MS;
    /* The ZAP handler must exist before any CURVE socket binds. */
    c->zap = zmq_socket(c->ctx, ZMQ_REP);
    if (c->zap == NULL || zmq_bind(c->zap, "inproc://zeromq.zap.01") != 0) {
        snprintf(err, errlen, "ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    c->router = link_server_socket(c->ctx, opt->keys, LINK_ZAP_CLUSTER, opt->cluster_endpoint,
                                   LINK_CLUSTER_MSG_MAX,
                                   err, errlen);
    if (c->router == NULL)
        goto fail;
    c->enrol = link_server_socket(c->ctx, opt->keys, LINK_ZAP_ENROL, opt->enrol_endpoint,
                                  LINK_ENROL_MSG_MAX, err,
                                  errlen);
    if (c->enrol == NULL)
        goto fail;
    s_snapshot_refresh(c);
    if ((c->reconcile = reconcile_sched_start(opt->dsn, err, errlen)) == NULL)
        goto fail;
    /* The writer retries a failed flush (the state waits in memory meanwhile); a failed
     * ingest is not retried there: the batch is not acknowledged and the child sends it again. */
    if ((c->writer = dbthread_start(opt->dsn, "cluster writer", 1, true, err, errlen)) == NULL)
        goto fail;
    /* Enrolment requests are not retried there: the child asks again. */
    if ((c->lookups = dbthread_start(opt->dsn, "cluster look-ups", CLUSTER_LOOKUP_QUEUE_MAX,
                                     false, err, errlen)) == NULL)
        goto fail;
    for (unsigned i = 0; i < c->ningest; i++) {
        char name[32];
        snprintf(name, sizeof name, "report ingest %u", i + 1);
        if ((c->ingester[i] = dbthread_start(opt->dsn, name, CLUSTER_INGEST_QUEUE_MAX, false, err,
                                             errlen)) == NULL)
            goto fail;
    }
    return c;
fail:
    cluster_free(&c);
    return NULL;
}

void cluster_run(cluster_t *c, volatile sig_atomic_t *stop)
{
    uint64_t next_tick = now_ms();

    while (!*stop) {
        zmq_pollitem_t items[6 + CLUSTER_INGEST_THREADS_MAX] = {
            { c->router, 0, ZMQ_POLLIN, 0 },
            { c->enrol, 0, ZMQ_POLLIN, 0 },
            { c->zap, 0, ZMQ_POLLIN, 0 },
            { NULL, dbthread_fd(c->writer), ZMQ_POLLIN, 0 },
            { NULL, dbthread_fd(c->lookups), ZMQ_POLLIN, 0 },
        };
        int idb = 5 + (int)c->ningest; /* the notification connection's, last: it may be gone */
        int nitems = c->db != NULL ? idb + 1 : idb;
        uint64_t now = now_ms();
        uint64_t wake = next_tick < c->next_flush_ms || c->writing ? next_tick : c->next_flush_ms;
        long timeout = wake > now ? (long)(wake - now) : 0;

        for (unsigned i = 0; i < c->ningest; i++)
            items[5 + i] = (zmq_pollitem_t){ NULL, dbthread_fd(c->ingester[i]), ZMQ_POLLIN, 0 };
        if (c->db != NULL)
            items[idb] = (zmq_pollitem_t){ NULL, PQsocket(c->db), ZMQ_POLLIN, 0 };
        if (zmq_poll(items, nitems, timeout) < 0) {
            if (errno == EINTR)
                continue;
            log_err("zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        uint64_t t0 = now_ms(), t_msgs, t_db, t_end;
        if (items[2].revents & ZMQ_POLLIN)
            s_zap_handle(c);
        if (items[1].revents & ZMQ_POLLIN)
            s_enrol_input(c);
        if (items[0].revents & ZMQ_POLLIN)
            s_router_input(c);
        t_msgs = now_ms();
        if (items[3].revents & ZMQ_POLLIN)
            dbthread_complete(c->writer);
        if (items[4].revents & ZMQ_POLLIN)
            dbthread_complete(c->lookups);
        for (unsigned i = 0; i < c->ningest; i++)
            if (items[5 + i].revents & ZMQ_POLLIN)
                dbthread_complete(c->ingester[i]);
        if (nitems > idb && (items[idb].revents & ZMQ_POLLIN))
            s_db_input(c);
        t_db = now_ms();
        s_flush(c, false);
        if (now_ms() >= next_tick) {
            s_tick(c);
            next_tick = now_ms() + CLUSTER_TICK_MS;
        }
        t_end = now_ms();
        /* What would starve the heartbeats, said with where the time went. */
        if (t_end - t0 > CLUSTER_SLOW_ROUND_MS && t_end - c->slow_log_ms >= 10000) {
            log_warn("cluster loop round took %" PRIu64 " ms: children's messages %" PRIu64
                     " ms, database results %" PRIu64 " ms, flush and housekeeping %" PRIu64
                     " ms (%zu children known)", t_end - t0, t_msgs - t0, t_db - t_msgs,
                     t_end - t_db, c->npeers);
            c->slow_log_ms = t_end;
        }
    }
}

void cluster_free(cluster_t **cp)
{
    cluster_t *c;

    if (cp == NULL || (c = *cp) == NULL)
        return;
    reconcile_sched_stop(&c->reconcile); /* first: its commands need this loop no longer */
    dbthread_stop(&c->lookups); /* its last enrolment replies go out before the sockets close */
    /* What was received is written before the children are marked disconnected. */
    for (unsigned i = 0; i < c->ningest; i++)
        dbthread_stop(&c->ingester[i]);
    if (c->writer != NULL) {
        for (int round = 0; round < 2; round++) { /* the flush in progress, then the rest */
            while (c->writing) {
                struct pollfd pfd = { .fd = dbthread_fd(c->writer), .events = POLLIN };
                if (poll(&pfd, 1, CLUSTER_STOP_WAIT_MS) <= 0)
                    break; /* the database is away: the stop fails what is left */
                dbthread_complete(c->writer);
            }
            s_flush(c, true);
        }
        dbthread_stop(&c->writer);
    }
    if (c->db != NULL) {
        /* A clean stop: children will be judged by their silence, but say so now. */
        char err[256];
        if (db_exec(c->db, "UPDATE children SET connected = false WHERE connected", 0, NULL, err,
                    sizeof err) != 0)
            log_warn("%s", err);
    }
    link_close(&c->router);
    link_close(&c->enrol);
    link_close(&c->zap);
    if (c->ctx != NULL)
        zmq_ctx_term(c->ctx);
    db_close(&c->db);
    for (unsigned i = 0; i < c->ningest; i++)
        ingest_free(&c->ingest[i]);
    cmdroute_free(&c->cmds);
    for (size_t i = 0; i < c->npeers; i++)
        s_state_clear(&c->peers[i].st);
    free(c->peers);
    free(c->slots);
    keytab_free(&c->keys);
    free(c->recent);
    free(c->events);
    free(c->snapshot);
    free(c);
    *cp = NULL;
}
