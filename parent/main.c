/* portcullis-parent: owns the cluster's state in PostgreSQL and serves the children over
 * ZeroMQ. Start-up: read parent.conf, apply migrations, load or make the CURVE keypair, bind,
 * then serve until SIGTERM/SIGINT. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "db/db.h"
#include "keys.h"
#include "log.h"
#include "parent_conf.h"
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
    fprintf(f, "usage: portcullis-parent [-c parent.conf]\n"
               "  -c FILE   configuration (default $" PARENT_CONF_ENV " or " PARENT_CONF_DEFAULT ")\n");
}

int main(int argc, char **argv)
{
    const char *path = getenv(PARENT_CONF_ENV);
    char err[1024];
    struct curve_keypair kp;
    enum log_level level;
    conf_t *conf;
    PGconn *db;
    cluster_t *cluster;
    int opt;
    struct sigaction sa;

    log_init("portcullis-parent", LOG_LEVEL_INFO);
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
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

    if (keys_load_or_create(conf_get(conf, "state_dir"), "parent", &kp, err, sizeof err) != 0)
        fatal("%s", err);
    db = db_connect(conf_get(conf, "db"), err, sizeof err);
    if (db == NULL)
        fatal("%s", err);
    if (db_migrate(db) != 0)
        fatal("database migrations failed; the parent does not start on a partial schema");
    db_close(&db);

    struct cluster_options copt = {
        .dsn = conf_get(conf, "db"),
        .cluster_endpoint = conf_get(conf, "cluster_listen"),
        .enrol_endpoint = conf_get(conf, "enrol_listen"),
        .keys = &kp,
    };
    cluster = cluster_new(&copt, err, sizeof err);
    if (cluster == NULL)
        fatal("%s", err);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_info("parent ready cluster=%s enrol=%s public_key=%s version=%s", copt.cluster_endpoint,
             copt.enrol_endpoint, kp.public_z85, PORTCULLIS_VERSION);
    cluster_run(cluster, &s_stop);
    log_info("parent stopping");
    cluster_free(&cluster);
    sodium_memzero(kp.secret_z85, sizeof kp.secret_z85);
    conf_free(&conf);
    return 0;
}
