/* http_updates: the component download route of the parent's HTTPS listener (R3.7). */
#ifndef PORTCULLIS_HTTP_UPDATES_H
#define PORTCULLIS_HTTP_UPDATES_H

#include <libpq-fe.h>
#include <stddef.h>

#include "conf.h"
#include "http/https.h"

/* Mounts GET /v1/updates/<component>/<version>. 0 ok, -1 no room for the route. */
int http_updates_mount(https_t *h);

/* At the parent's start: loads or makes the update key; with parent.conf https_listen set,
 * makes the HTTPS server (https_cert / https_key or the self-signed pair) with this route
 * (*out, NULL when off; the caller mounts the rest and calls https_start); records the public
 * key, pin and download address (https_public_url, or derived from https_listen) in the
 * database. 0 ok, -1 with err filled. */
int http_updates_start(const conf_t *conf, PGconn *db, https_t **out, char *err, size_t errlen);

#endif
