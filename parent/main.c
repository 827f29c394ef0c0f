/* portcullis-parent: owns the cluster's state in PostgreSQL and serves the children over
 * ZeroMQ. Start-up: read parent.conf, apply migrations, load or make the CURVE keypair, bind,
 * then serve until SIGTERM/SIGINT. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "db/db.h"
#include "http/http_lookup.h"
#include "http/http_updates.h"
#include "keys.h"
#include "log.h"
#include "parent_conf.h"
#include "sched/notify.h"
#include "privdrop.h"
#include "util.h"

#include <sodium.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: portcullis-parent [-c parent.conf] [--sps-only | --routes]\n"
               "  -c FILE     configuration (default $" PARENT_CONF_ENV " or " PARENT_CONF_DEFAULT ")\n"
               "  --sps-only  serve only the children's look-ups on sps_listen (a replica)\n"
               "  --routes    print the REST API's routes (METHOD PATTERN ROLE) and exit\n");
}

static void s_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* R8.1: started as root, the parent gives its state directory to its user and becomes that
 * user for good once its sockets are bound and its keys read. */
static void s_drop(const conf_t *conf)
{
    struct privuser u;
    char err[1024];

    if (!privdrop_needed()) {
        log_info("running as uid %ld: no root privileges to drop", (long)getuid());
        return;
    }
    if (privdrop_lookup(conf_get(conf, "user"), &u, err, sizeof err) != 0 ||
        privdrop_own_dir(conf_get(conf, "state_dir"), u.uid, u.gid, 0700, err, sizeof err) != 0 ||
        privdrop_to(&u, (gid_t)-1, err, sizeof err) != 0)
        fatal("%s", err);
    umask(077);
    log_info("running as %s (uid %ld)", u.name, (long)u.uid);
}

/* The look-up service (R2.1, R8.7) on its own HTTPS listener, sps_listen, with the same TLS
 * identity as https_listen (https_cert / https_key, or the pair in state_dir): children pin
 * one key for both. */
static https_t *s_lookup_listener(const conf_t *conf, char *err, size_t errlen)
{
    struct https_options o = { .dsn = conf_get(conf, "db"), .listen = conf_get(conf, "sps_listen"),
                               .state_dir = conf_get(conf, "state_dir"),
                               .cert = conf_get(conf, "https_cert"),
                               .key = conf_get(conf, "https_key") };
    https_t *h = https_new(&o, err, errlen);

    if (h != NULL && http_lookup_mount(h) != 0) {
        snprintf(err, errlen, "sps: cannot mount the look-up routes");
        https_free(&h);
    }
    if (h != NULL)
        log_info("sps ready listen=%s pin=%s", o.listen, https_pin(h));
    return h;
}

/* --sps-only: the look-up service alone. Migrations are applied when the database answers (under
 * their advisory lock, so replicas and the parent may start together); when it does not, the
 * service starts anyway, answers 503 and reconnects. */
static void s_sps_only(const conf_t *conf)
{
    char err[1024];
    PGconn *db;
    https_t *h;
    sigset_t block, old;

    if (*conf_get(conf, "sps_listen") == '\0')
        fatal("--sps-only needs sps_listen in parent.conf");
    db = db_connect(conf_get(conf, "db"), err, sizeof err);
    if (db == NULL)
        log_warn("sps starting without the database: %s", err);
    else if (db_migrate(db) != 0)
        fatal("database migrations failed; the look-up service does not start on a partial schema");
    db_close(&db);
    if ((h = s_lookup_listener(conf, err, sizeof err)) == NULL)
        fatal("%s", err);
    s_drop(conf);
    s_signals();
    /* The listener runs in its thread; this one waits for SIGTERM/SIGINT without a race
     * between the check and the wait. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    if (https_start(h, err, sizeof err) != 0)
        fatal("%s", err);
    while (!s_stop)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    log_info("sps stopping");
    https_free(&h);
}

int main(int argc, char **argv)
{
    const char *path = getenv(PARENT_CONF_ENV);
    char err[1024];
    struct curve_keypair kp;
    enum log_level level;
    long ingest_threads;
    conf_t *conf;
    PGconn *db;
    cluster_t *cluster;
    https_t *https = NULL, *sps = NULL;
    notifier_t *notifier = NULL;
    int opt, sps_only = 0;
    static const struct option longopts[] = {
        { "sps-only", no_argument, NULL, 'S' },
        { "routes", no_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };

    log_init("portcullis-parent", LOG_LEVEL_INFO);
    raise_nofile_limit();
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'S': sps_only = 1; break;
        case 'R': api_print_routes(stdout); return 0;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (path == NULL)
        path = PARENT_CONF_DEFAULT;
    conf = conf_load(path, parent_conf_keys, ARRAY_LEN(parent_conf_keys), err, sizeof err);
    if (conf == NULL)
        fatal("%s", err);
    if (log_level_parse(conf_get(conf, "log_level"), &level) != 0)
        fatal("%s: log_level must be error, warning, info or debug", path);
    log_set_level(level);
    if (conf_get_int(conf, "ingest_threads", 1, CLUSTER_INGEST_THREADS_MAX, &ingest_threads, err,
                     sizeof err) != 0)
        fatal("%s: %s", path, err);
    if (sps_only) {
        s_sps_only(conf);
        conf_free(&conf);
        return 0;
    }

    if (keys_load_or_create(conf_get(conf, "state_dir"), "parent", &kp, err, sizeof err) != 0)
        fatal("%s", err);
    db = db_connect(conf_get(conf, "db"), err, sizeof err);
    if (db == NULL)
        fatal("%s", err);
    if (db_migrate(db) != 0)
        fatal("database migrations failed; the parent does not start on a partial schema");
    /* The HTTPS server: component updates (R3.7: update key, what children need to fetch),
     * then the REST API, /metrics and the console (issue 6), then its thread. */
    if (http_updates_start(conf, db, &https, err, sizeof err) != 0)
        fatal("%s", err);
    db_close(&db);
    if (https != NULL) {
        api_children_set_conf(conf);
        if (http_lookup_mount(https) != 0)
            fatal("https: cannot mount the look-up routes");
        struct api_options ao = { .dsn = conf_get(conf, "db"),
                                  .web_root = conf_get(conf, "web_root") };
        if (api_mount(https, &ao, err, sizeof err) != 0 || https_start(https, err, sizeof err) != 0)
            fatal("%s", err);
    }

    struct cluster_options copt = {
        .ingest_threads = (unsigned)ingest_threads,
        .dsn = conf_get(conf, "db"),
        .cluster_endpoint = conf_get(conf, "cluster_listen"),
        .enrol_endpoint = conf_get(conf, "enrol_listen"),
        .keys = &kp,
    };
    cluster = cluster_new(&copt, err, sizeof err);
    if (cluster == NULL)
        fatal("%s", err);

    s_signals();
    if (*conf_get(conf, "sps_listen") != '\0') {
        sps = s_lookup_listener(conf, err, sizeof err);
        if (sps == NULL || https_start(sps, err, sizeof err) != 0)
            fatal("%s", err);
    }

    notifier = notifier_start(conf_get(conf, "db"), err, sizeof err);
    if (notifier == NULL)
        fatal("%s", err);

    s_drop(conf);
    log_info("parent ready cluster=%s enrol=%s public_key=%s version=%s", copt.cluster_endpoint,
             copt.enrol_endpoint, kp.public_z85, PORTCULLIS_VERSION);
    cluster_run(cluster, &s_stop);
    log_info("parent stopping");
    notifier_stop(&notifier);
    https_free(&sps);
    https_free(&https); /* closes the API's connections … */
    api_stop();         /* … then its workers finish and what is left is freed */
    cluster_free(&cluster);
    sodium_memzero(kp.secret_z85, sizeof kp.secret_z85);
    conf_free(&conf);
    return 0;
}
