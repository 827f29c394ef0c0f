/* admin: the administrator's operations on the cluster's state in PostgreSQL. One
 * implementation serves the `portcullis` CLI and the parent daemon (and later the REST API).
 * Every function returns 0 / a result on success, -1 / NULL with err filled on failure;
 * err is written for the administrator: it says what is wrong and what to do. */
#ifndef PORTCULLIS_ADMIN_H
#define PORTCULLIS_ADMIN_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "settings.h"

#define ADMIN_NOTIFY_CONFIG "portcullis_config" /* LISTEN channel: a new config version */
#define ADMIN_TOKEN_TTL_HOURS 24
#define ADMIN_TOKEN_BYTES 24                      /* random bytes in an enrolment token */
#define ADMIN_TOKEN_HEX (2 * ADMIN_TOKEN_BYTES)

/* --- settings and configuration versions (R6) ------------------------------------------- */
/* Effective settings (defaults overridden by the rows of `settings`) at the current version. */
settings_t *admin_settings_effective(PGconn *c, char *err, size_t errlen);
/* Validates, stores, makes a new configuration version and wakes the parent. */
int admin_settings_set(PGconn *c, const char *key, const char *value, uint64_t *version,
                       char *err, size_t errlen);
/* Every setting (or the one named by key) with value, default, range, unit, description. */
json_t *admin_settings_describe(PGconn *c, const char *key, char *err, size_t errlen);
int admin_config_version(PGconn *c, uint64_t *version, char *err, size_t errlen);

/* --- children and enrolment (R7.1) ------------------------------------------------------- */
/* Makes a one-time token for NAME, valid ADMIN_TOKEN_TTL_HOURS; token gets ADMIN_TOKEN_HEX+1. */
int admin_enroll_token(PGconn *c, const char *name, char *token, char *err, size_t errlen);
int admin_child_approve(PGconn *c, const char *name, char *err, size_t errlen);
int admin_child_remove(PGconn *c, const char *name, char *err, size_t errlen);
bool admin_child_name_valid(const char *name);

/* Fleet status (R6.2, R7.2, R7.5): {"config_version": N, "children": [...]}. */
json_t *admin_status(PGconn *c, char *err, size_t errlen);

#endif
