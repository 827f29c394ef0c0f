/* parent_conf: the keys of /etc/portcullis/parent.conf, shared by the daemon and the CLI. */
#ifndef PORTCULLIS_PARENT_CONF_H
#define PORTCULLIS_PARENT_CONF_H

#include "conf.h"

#define PARENT_CONF_DEFAULT "/etc/portcullis/parent.conf"
#define PARENT_CONF_ENV "PORTCULLIS_PARENT_CONF"

static const struct conf_key parent_conf_keys[] = {
    { "db", "dbname=portcullis", "libpq connection string of the parent's database" },
    { "cluster_listen", "tcp://0.0.0.0:7710", "ZeroMQ endpoint for enrolled children" },
    { "enrol_listen", "tcp://0.0.0.0:7711", "ZeroMQ endpoint for enrolment requests" },
    { "cluster_public_endpoint", "", "cluster endpoint as children reach it (shown by enroll-token)" },
    { "enrol_public_endpoint", "", "enrolment endpoint as children reach it" },
    { "state_dir", "/var/lib/portcullis-parent", "directory of the parent's CURVE keypair" },
    { "log_level", "info", "error, warning, info or debug" },
    { "ingest_threads", "2", "threads (each with its own database connection) storing the children's reports, 1-8" },
    { "sps_listen", "", "HOST:PORT of a second HTTPS listener serving only the children's look-ups (and what --sps-only serves); empty: the look-ups are on https_listen only" },
    { "https_listen", "0.0.0.0:7713", "HOST:PORT of the parent's HTTPS server (REST API, console, metrics, component downloads); empty: off" },
    { "https_public_url", "", "https://HOST:PORT as children reach https_listen; empty: derived from it" },
    { "https_cert", "", "PEM certificate (chain) of the HTTPS server; empty: self-signed in state_dir" },
    { "https_key", "", "PEM private key of https_cert (mode 0600); empty: self-signed in state_dir" },
    { "web_root", "/usr/share/portcullis/web", "directory of the web console's static files; empty: no console" },
    { "user", "portcullis", "system user the parent runs as once started as root and bound (R8.1)" },
};

#endif
