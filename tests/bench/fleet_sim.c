/* fleet_sim: K simulated children against a real parent (issue 12 point 4, R10.1, R10.2).
 * Each speaks the real protocol over its own CURVE DEALER socket: Hello, ConfigApplied for
 * every snapshot, heartbeats, Health, and — with --reports — ReportBatches of tracking records
 * sent as fast as the parent's ReportAcks allow, one batch in flight per child as a real
 * child does. The children are enrolled by writing their keys straight into the parent's
 * database, or — with --enrol-endpoint — as real children are: each asks the enrolment socket
 * with a one-time token written here, then links. With --storm-at S every child loses its
 * link S seconds into the run at the same moment and comes back as a real child does (a wait
 * drawn from the upper half of its backoff, enrolment request, new link, Hello), so that a
 * reconnect storm of the whole fleet can be measured (R10.2). A child silent past the
 * liveness relinks the same way. Prints one line of key=value results;
 * tests/bench/fleet_bench.sh turns runs into the table of docs/BENCHMARKS.md.
 *   fleet_sim --endpoint tcp://H:P --server-key Z85 --dsn DSN -k K [--seconds S]
 *             [--reports] [--batch R] [--prefix NAME] [--enrol-endpoint tcp://H:P]
 *             [--storm-at S] */
#include <getopt.h>
#include <sodium.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"
#include "link.h"
#include "util.h"
#include "wire.h"

#define SIM_HEALTH_MS 10000   /* a Health this often per child (a real child: health_interval_s) */
#define SIM_K_MAX 20000

enum sim_state { SIM_ENROL, SIM_LINKING, SIM_UP, SIM_BACKOFF };

struct sim_child {
    char name[64];
    char token[2 * 24 + 1];   /* with --enrol-endpoint: its one-time enrolment token */
    struct curve_keypair kp;
    void *sock;               /* the enrolment socket while enrolling, then the cluster's */
    enum sim_state state;
    uint64_t until;           /* enrolment resend, or end of the backoff */
    uint64_t backoff;
    uint64_t enrol_at;        /* the first enrolment request */
    bool storm_back;          /* heard from the parent since the storm */
    uint64_t last_rx, last_tx, last_health, hello_at, config_at;
    uint64_t hello_next;      /* while linking: the next Hello */
    uint64_t config_version;
    bool down;                /* silent past the liveness: counted once per silence */
    char epoch[17];
    uint64_t seq, inflight_to;
    uint64_t sent_at;
};

static struct {
    const char *endpoint, *server_key, *dsn, *prefix, *enrol_endpoint;
    int k, seconds, batch, storm_at;
    bool reports;
} A = { .prefix = "sim", .seconds = 20, .batch = 500 };

static uint64_t s_drops, s_acked, s_batches, s_configs, s_enrol_refused, s_storm_drops;
static double *s_cfg_ms, *s_enrol_ms;
static size_t s_ncfg, s_nenrol, s_storm_back;
static uint64_t s_storm_ms, s_storm_settled_ms;
static void *s_ctx;

static void s_die(const char *m)
{
    fprintf(stderr, "fleet_sim: %s\n", m);
    exit(1);
}

static PGresult *s_sql(PGconn *db, const char *sql, int n, const char *const *p)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "fleet_sim: %s: %s", sql, PQerrorMessage(db));
        exit(1);
    }
    return r;
}

/* The K children as enrolled rows: keys made here, written in one statement. */
static void s_enrol(PGconn *db, struct sim_child *ch)
{
    json_t *rows = json_array();
    char *text;
    const char *p[1];

    for (int i = 0; i < A.k; i++) {
        char pub[41], sec[41];
        zmq_curve_keypair(pub, sec);
        strlcpy_p(ch[i].kp.public_z85, pub, sizeof ch[i].kp.public_z85);
        strlcpy_p(ch[i].kp.secret_z85, sec, sizeof ch[i].kp.secret_z85);
        snprintf(ch[i].name, sizeof ch[i].name, "%s-%05d", A.prefix, i);
        json_array_append_new(rows, json_pack("{s:s,s:s}", "name", ch[i].name, "key", pub));
        random_hex(ch[i].epoch, 8);
        random_hex(ch[i].token, 24);
        json_object_set_new(json_array_get(rows, (size_t)i), "token", json_string(ch[i].token));
    }
    text = json_dumps(rows, JSON_COMPACT);
    p[0] = text;
    PQclear(s_sql(db, "DELETE FROM children WHERE name LIKE $1 || '-%'", 1, &A.prefix));
    if (A.enrol_endpoint != NULL) /* tokens as `portcullis child enroll-token` makes them */
        PQclear(s_sql(db, "INSERT INTO enrol_tokens (child_name, token_hash, expires_at) "
                          "SELECT name, sha256(convert_to(token, 'UTF8')), now() + '1 hour' "
                          "FROM jsonb_to_recordset($1::jsonb) AS v(name text, token text)", 1, p));
    else
        PQclear(s_sql(db, "INSERT INTO children (name, public_key, enrolment, enrolled_at) "
                          "SELECT name, key, 'enrolled', now() FROM jsonb_to_recordset($1::jsonb) "
                          "AS v(name text, key text)", 1, p));
    free(text);
    json_decref(rows);
}

static void s_send(struct sim_child *c, envelope_t *env)
{
    if (wire_send_zmq(c->sock, NULL, 0, env) == 0)
        c->last_tx = now_ms();
}

static void s_open(struct sim_child *c, const char *endpoint, int64_t max)
{
    char err[256];

    if (c->sock != NULL)
        zmq_close(c->sock);
    c->sock = link_client_socket(s_ctx, &c->kp, A.server_key, endpoint, max, err, sizeof err);
    if (c->sock == NULL)
        s_die(err);
}

static void s_send_enrol(struct sim_child *c)
{
    Portcullis__EnrollRequest r = PORTCULLIS__ENROLL_REQUEST__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    r.name = c->name;
    r.token = c->token;
    r.software_version = "fleet-sim";
    env.body_case = PORTCULLIS__ENVELOPE__BODY_ENROLL_REQUEST;
    env.enroll_request = &r;
    /* unsent (not connected yet): again soon, as the manager does */
    c->until = now_ms() + (wire_send_zmq(c->sock, NULL, 0, &env) == 0 ? 2000 : 200);
}

static void s_hello(struct sim_child *c)
{
    Portcullis__Hello h = PORTCULLIS__HELLO__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    h.name = c->name;
    h.software_version = "fleet-sim";
    h.config_version = c->config_version;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    c->hello_at = now_ms();
    /* unsent (not connected yet): again soon, as the manager does; else after a heartbeat */
    c->hello_next = now_ms() + (wire_send_zmq(c->sock, NULL, 0, &env) == 0 ? LINK_HEARTBEAT_MS
                                                                            : 200);
    c->last_tx = now_ms();
}

static void s_heartbeat(struct sim_child *c)
{
    Portcullis__Heartbeat hb = PORTCULLIS__HEARTBEAT__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    hb.sent_ms = wall_ms();
    env.body_case = PORTCULLIS__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_send(c, &env);
}

static void s_health(struct sim_child *c)
{
    Portcullis__Health h = PORTCULLIS__HEALTH__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;

    h.state = "up";
    h.scan_service = "running";
    h.scan_method = "conventional";
    h.config_version = c->config_version;
    h.uptime_s = 1;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_HEALTH;
    env.health = &h;
    c->last_health = now_ms();
    s_send(c, &env);
}

static void s_batch(struct sim_child *c)
{
    Portcullis__ReportBatch b = PORTCULLIS__REPORT_BATCH__INIT;
    envelope_t env = PORTCULLIS__ENVELOPE__INIT;
    Portcullis__Report *rp = calloc((size_t)A.batch, sizeof *rp);
    Portcullis__Report **pp = calloc((size_t)A.batch, sizeof *pp);
    Portcullis__TrackingRecord *tr = calloc((size_t)A.batch, sizeof *tr);
    char (*ids)[17] = calloc((size_t)A.batch, sizeof *ids);
    char *rcpt[1] = { "user@sim.test" };
    uint64_t now = wall_ms();

    for (int i = 0; i < A.batch; i++) {
        portcullis__report__init(&rp[i]);
        portcullis__tracking_record__init(&tr[i]);
        random_hex(ids[i], 8);
        tr[i].msg_id = ids[i];
        tr[i].message_id = "<sim@fleet.test>";
        tr[i].sender = "sender@sim.test";
        tr[i].n_recipients = 1;
        tr[i].recipients = rcpt;
        tr[i].size = 2048;
        tr[i].action = "delivered";
        tr[i].received_ms = now;
        tr[i].subject = "fleet simulator";
        tr[i].reply = "250 2.0.0 Ok";
        rp[i].seq = ++c->seq;
        rp[i].body_case = PORTCULLIS__REPORT__BODY_TRACKING;
        rp[i].tracking = &tr[i];
        pp[i] = &rp[i];
    }
    b.spool_epoch = c->epoch;
    b.n_reports = (size_t)A.batch;
    b.reports = pp;
    env.body_case = PORTCULLIS__ENVELOPE__BODY_REPORT_BATCH;
    env.report_batch = &b;
    c->inflight_to = c->seq;
    c->sent_at = now_ms();
    s_send(c, &env);
    s_batches++;
    free(rp);
    free(pp);
    free(tr);
    free(ids);
}

/* As the manager's s_enter_linking, s_enter_enrol and s_link_lost. */
static void s_enter_linking(struct sim_child *c)
{
    c->state = SIM_LINKING;
    s_open(c, A.endpoint, LINK_CLUSTER_MSG_MAX);
    c->last_rx = now_ms();
    c->down = false;
    s_hello(c);
}

static void s_enter_enrol(struct sim_child *c)
{
    if (A.enrol_endpoint == NULL) {
        s_enter_linking(c);
        return;
    }
    c->state = SIM_ENROL;
    s_open(c, A.enrol_endpoint, LINK_ENROL_MSG_MAX);
    if (c->enrol_at == 0)
        c->enrol_at = now_ms();
    s_send_enrol(c);
}

static void s_lost(struct sim_child *c)
{
    uint64_t wait = c->backoff / 2 + randombytes_uniform((uint32_t)(c->backoff / 2 + 1));

    zmq_close(c->sock);
    c->sock = NULL;
    c->state = SIM_BACKOFF;
    c->until = now_ms() + wait;
    c->backoff = 2 * c->backoff > LINK_RECONNECT_MAX_MS ? LINK_RECONNECT_MAX_MS : 2 * c->backoff;
    c->inflight_to = 0; /* a real child sends its unacknowledged records again */
}

static void s_enrol_input(struct sim_child *c, const envelope_t *env)
{
    if (env == NULL || env->body_case != PORTCULLIS__ENVELOPE__BODY_ENROLL_REPLY)
        return;
    if (env->enroll_reply->status != PORTCULLIS__ENROLL_REPLY__STATUS__ENROLLED) {
        s_enrol_refused++;
        if (getenv("FLEET_SIM_DEBUG") != NULL)
            fprintf(stderr, "fleet_sim: %s: enrolment answered %d: %s\n", c->name,
                    (int)env->enroll_reply->status, env->enroll_reply->message);
        c->until = now_ms() + 2000;
        return;
    }
    if (s_nenrol < (size_t)A.k && c->token[0] != '\0') {
        s_enrol_ms[s_nenrol++] = (double)(now_ms() - c->enrol_at);
        c->token[0] = '\0'; /* used: from now on it asks as an enrolled child does */
    }
    s_enter_linking(c);
}

static void s_input(struct sim_child *c)
{
    zmq_msg_t m;

    zmq_msg_init(&m);
    while (c->sock != NULL && zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) >= 0) {
        envelope_t *env = wire_unpack(zmq_msg_data(&m), zmq_msg_size(&m));
        if (c->state == SIM_ENROL) {
            s_enrol_input(c, env);
            wire_free(&env);
            continue;
        }
        c->last_rx = now_ms();
        c->down = false;
        if (c->state == SIM_LINKING) {
            c->state = SIM_UP; /* any answer to the Hello: linked */
            c->backoff = LINK_RECONNECT_MIN_MS;
            if (s_storm_ms != 0 && !c->storm_back && ++s_storm_back == (size_t)A.k)
                s_storm_settled_ms = now_ms() - s_storm_ms;
            c->storm_back = s_storm_ms != 0;
        }
        if (env != NULL && env->body_case == PORTCULLIS__ENVELOPE__BODY_CONFIG) {
            Portcullis__ConfigApplied a = PORTCULLIS__CONFIG_APPLIED__INIT;
            envelope_t out = PORTCULLIS__ENVELOPE__INIT;
            if (c->config_at == 0 && s_ncfg < (size_t)A.k)
                s_cfg_ms[s_ncfg++] = (double)(now_ms() - c->hello_at);
            c->config_at = now_ms();
            c->config_version = env->config->version;
            a.version = c->config_version;
            a.ok = true;
            out.body_case = PORTCULLIS__ENVELOPE__BODY_CONFIG_APPLIED;
            out.config_applied = &a;
            s_send(c, &out);
            s_configs++;
        } else if (env != NULL && env->body_case == PORTCULLIS__ENVELOPE__BODY_REPORT_ACK) {
            if (env->report_ack->up_to_seq >= c->inflight_to && c->inflight_to != 0) {
                s_acked += (uint64_t)A.batch;
                c->inflight_to = 0;
            }
        }
        wire_free(&env);
    }
    zmq_msg_close(&m);
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_pct(double *v, size_t n, double p)
{
    if (n == 0)
        return -1;
    return v[(size_t)(p / 100.0 * (double)(n - 1) + 0.5)];
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "endpoint", required_argument, NULL, 'e' }, { "server-key", required_argument, NULL, 's' },
        { "dsn", required_argument, NULL, 'd' },      { "seconds", required_argument, NULL, 't' },
        { "reports", no_argument, NULL, 'r' },        { "batch", required_argument, NULL, 'b' },
        { "prefix", required_argument, NULL, 'p' },
        { "enrol-endpoint", required_argument, NULL, 'E' },
        { "storm-at", required_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    struct rlimit rl;
    struct sim_child *ch;
    zmq_pollitem_t *items;
    PGconn *db;
    void *ctx;
    int o, io = 2;
    uint64_t t0, end, all_cfg_ms = 0, ingest_t0 = 0;
    char ver[32];
    long long want_version, recorded_at_ms = -1;

    while ((o = getopt_long(argc, argv, "k:", lo, NULL)) != -1) {
        switch (o) {
        case 'e': A.endpoint = optarg; break;
        case 's': A.server_key = optarg; break;
        case 'd': A.dsn = optarg; break;
        case 'k': A.k = atoi(optarg); break;
        case 't': A.seconds = atoi(optarg); break;
        case 'r': A.reports = true; break;
        case 'b': A.batch = atoi(optarg); break;
        case 'p': A.prefix = optarg; break;
        case 'E': A.enrol_endpoint = optarg; break;
        case 'S': A.storm_at = atoi(optarg); break;
        default: s_die("usage: see the file's head");
        }
    }
    if (A.endpoint == NULL || A.server_key == NULL || A.dsn == NULL || A.k < 1 || A.k > SIM_K_MAX ||
        A.batch < 1 || A.batch > 500 || A.seconds < 1 || A.seconds > 3600 || A.storm_at < 0 ||
        A.storm_at >= A.seconds)
        s_die("--endpoint, --server-key, --dsn and -k 1..20000 are required; --batch 1..500, "
              "--seconds 1..3600, --storm-at below --seconds");
    if (sodium_init() < 0)
        s_die("libsodium");
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((db = PQconnectdb(A.dsn)) == NULL || PQstatus(db) != CONNECTION_OK)
        s_die("cannot connect to the database");
    ch = calloc((size_t)A.k, sizeof *ch);
    items = calloc((size_t)A.k, sizeof *items);
    s_cfg_ms = calloc((size_t)A.k, sizeof *s_cfg_ms);
    s_enrol_ms = calloc((size_t)A.k, sizeof *s_enrol_ms);
    s_enrol(db, ch);
    ctx = s_ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, io);
    /* a closed socket lingers in libzmq's reaper a moment: room for two per child */
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 3 * A.k + 64);
    t0 = now_ms();
    for (int i = 0; i < A.k; i++) {
        ch[i].backoff = LINK_RECONNECT_MIN_MS;
        s_enter_enrol(&ch[i]);
    }
    end = now_ms() + (uint64_t)A.seconds * 1000;
    while (now_ms() < end) {
        uint64_t now;
        for (int i = 0; i < A.k; i++) { /* a child in its backoff has no socket */
            items[i].socket = ch[i].sock;
            items[i].fd = -1;
            items[i].events = ch[i].sock != NULL ? ZMQ_POLLIN : 0;
        }
        if (zmq_poll(items, A.k, 50) < 0)
            break;
        now = now_ms();
        if (A.storm_at > 0 && s_storm_ms == 0 && now - t0 >= (uint64_t)A.storm_at * 1000) {
            s_storm_ms = now; /* the whole fleet loses its link at once */
            for (int i = 0; i < A.k; i++)
                if (ch[i].sock != NULL)
                    s_lost(&ch[i]);
        }
        for (int i = 0; i < A.k; i++) {
            struct sim_child *c = &ch[i];
            if (items[i].revents & ZMQ_POLLIN) {
                s_input(c);
                now = now_ms(); /* the input moved last_rx/last_tx past the loop's now */
            }
            if (c->state == SIM_ENROL || c->state == SIM_BACKOFF) {
                if (now >= c->until) {
                    if (c->state == SIM_ENROL)
                        s_send_enrol(c);
                    else
                        s_enter_enrol(c);
                }
                continue;
            }
            if (now - c->last_rx > (uint64_t)LINK_HEARTBEAT_MS * LINK_LIVENESS) {
                s_drops++; /* what a real child calls a lost link: it relinks */
                if (s_storm_ms != 0)
                    s_storm_drops++;
                if (getenv("FLEET_SIM_DEBUG") != NULL)
                    fprintf(stderr, "fleet_sim: %s silent for %" PRIu64 " ms at +%" PRIu64 " ms\n",
                            c->name, now - c->last_rx, now - t0);
                s_lost(c);
                continue;
            }
            if (c->state == SIM_LINKING) {
                if (now >= c->hello_next)
                    s_hello(c); /* as a real child does while linking */
                continue;
            }
            if (now - c->last_tx >= LINK_HEARTBEAT_MS)
                s_heartbeat(c);
            if (c->config_at != 0 && now - c->last_health >= SIM_HEALTH_MS)
                s_health(c);
            if (A.reports && c->config_at != 0) {
                if (ingest_t0 == 0)
                    ingest_t0 = now;
                if (c->inflight_to == 0 || now - c->sent_at > 10000)
                    s_batch(c);
            }
        }
        if (all_cfg_ms == 0 && s_ncfg == (size_t)A.k)
            all_cfg_ms = now - t0;
        if (recorded_at_ms < 0 && all_cfg_ms != 0) {
            static uint64_t last_check;
            if (now - last_check >= 100) {
                last_check = now;
                snprintf(ver, sizeof ver, "%" PRIu64, ch[0].config_version);
                const char *p[] = { A.prefix, ver };
                PGresult *r = s_sql(db, "SELECT count(*) FROM children WHERE name LIKE $1 || '-%' "
                                        "AND applied_config_version = $2::bigint", 2, p);
                want_version = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
                PQclear(r);
                if (want_version == A.k)
                    recorded_at_ms = (long long)(now - t0);
            }
        }
    }
    qsort(s_cfg_ms, s_ncfg, sizeof *s_cfg_ms, s_cmp);
    qsort(s_enrol_ms, s_nenrol, sizeof *s_enrol_ms, s_cmp);
    {
        double secs = (double)(now_ms() - (ingest_t0 ? ingest_t0 : t0)) / 1000.0;
        long long rows = 0, distinct = 0;
        if (A.reports) {
            /* batches still being committed when the run ended: wait until the count is still */
            long long prev = -1;
            for (int tries = 0; tries < 100 && rows != prev; tries++) {
                PGresult *r;
                prev = rows;
                if (tries > 0)
                    usleep(200 * 1000);
                r = s_sql(db, "SELECT count(*), count(DISTINCT (m.child_id, m.spool_epoch, m.seq)) "
                              "FROM message_log m JOIN children c ON c.id = m.child_id "
                              "WHERE c.name LIKE $1 || '-%'", 1, &A.prefix);
                rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
                distinct = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
                PQclear(r);
            }
        }
        printf("k=%d seconds=%d configs=%zu hello_to_snapshot_p50_ms=%.0f hello_to_snapshot_p99_ms=%.0f "
               "all_snapshots_ms=%" PRIu64 " all_recorded_ms=%lld links_dropped=%" PRIu64
               " batches=%" PRIu64 " acked_records=%" PRIu64 " acked_per_s=%.0f "
               "rows=%lld distinct=%lld enrolled=%zu enrol_p50_ms=%.0f enrol_p99_ms=%.0f "
               "enrol_refused=%" PRIu64 " storm_back=%zu storm_settle_ms=%lld "
               "storm_links_dropped=%" PRIu64 "\n",
               A.k, A.seconds, s_ncfg, s_pct(s_cfg_ms, s_ncfg, 50), s_pct(s_cfg_ms, s_ncfg, 99),
               all_cfg_ms, recorded_at_ms, s_drops, s_batches, s_acked,
               (double)s_acked / secs, rows, distinct, s_nenrol, s_pct(s_enrol_ms, s_nenrol, 50),
               s_pct(s_enrol_ms, s_nenrol, 99), s_enrol_refused, s_storm_back,
               s_storm_settled_ms != 0 ? (long long)s_storm_settled_ms : -1LL, s_storm_drops);
    }
    for (int i = 0; i < A.k; i++)
        if (ch[i].sock != NULL)
            zmq_close(ch[i].sock);
    zmq_ctx_term(ctx);
    PQfinish(db);
    free(ch);
    free(items);
    free(s_cfg_ms);
    free(s_enrol_ms);
    return 0;
}
