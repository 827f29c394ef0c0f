/* admin_users: the people who administer the cluster (issue 6) — users with one role each,
 * argon2id passwords (libsodium crypto_pwhash_str), and their credentials: console sessions
 * and bearer tokens for scripts, of which only a SHA-256 is stored (011). Shared by the CLI
 * (`portcullis user …`) and the REST API (parent/api). */
#ifndef PORTCULLIS_ADMIN_USERS_H
#define PORTCULLIS_ADMIN_USERS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_USER_NAME_MAX 64
#define ADMIN_ROLE_MAX 16
#define ADMIN_PASSWORD_MIN 10               /* characters of a new password */
#define ADMIN_PASSWORD_MAX 1024
#define ADMIN_SESSION_TTL_S (8 * 3600)      /* a console session lasts this long */
#define ADMIN_API_TOKEN_TTL_DEFAULT_S (90 * 86400)
#define ADMIN_API_TOKEN_TTL_MAX_S (366 * 86400)
#define ADMIN_API_LABEL_MAX 100
#define ADMIN_CRED_SECRET_BYTES 32
#define ADMIN_CRED_SECRET_HEX (2 * ADMIN_CRED_SECRET_BYTES)
#define ADMIN_CRED_PER_USER_MAX 1000        /* live credentials per user; more refused */

bool admin_user_name_valid(const char *name);
/* role: "admin", "operator" or "viewer". */
int admin_user_add(PGconn *c, const char *name, const char *role, const char *password,
                   char *err, size_t errlen);
/* NULL / -1 fields are kept. Refuses to leave no enabled admin. A new password or disabling
 * ends the user's sessions and tokens. */
int admin_user_update(PGconn *c, const char *name, const char *role, const char *password,
                      int disabled, char *err, size_t errlen);
/* Refuses to remove the last enabled admin. */
int admin_user_remove(PGconn *c, const char *name, char *err, size_t errlen);
/* {"users": [{name, role, disabled, created_at, last_login}]} by name. */
json_t *admin_user_list(PGconn *c, char *err, size_t errlen);

/* 0: the password is right for an enabled user (id and role filled, last_login set);
 * 1: wrong name or password or disabled (err says only that, in the same time either way);
 * -1: database failure (err). */
int admin_user_check_password(PGconn *c, const char *name, const char *password, int64_t *id,
                              char role[ADMIN_ROLE_MAX], char *err, size_t errlen);

/* A new credential of kind "session" or "token" for the user, valid ttl_s seconds; secret gets
 * ADMIN_CRED_SECRET_HEX+1 chars (shown once, never stored), expires_at the ISO time, id the
 * row. 0 ok, -1 with err. */
int admin_credential_create(PGconn *c, int64_t user_id, const char *kind, const char *label,
                            int64_t ttl_s, char secret[ADMIN_CRED_SECRET_HEX + 1],
                            char expires_at[40], int64_t *id, char *err, size_t errlen);
/* The credential behind secret: 0 valid (fields filled, last_used refreshed at most once a
 * minute); 1 unknown, expired or its user disabled; -1 database failure (err). */
int admin_credential_lookup(PGconn *c, const char *secret, int64_t *cred_id, int64_t *user_id,
                            char name[ADMIN_USER_NAME_MAX + 1], char role[ADMIN_ROLE_MAX],
                            char kind[ADMIN_ROLE_MAX], char *err, size_t errlen);
/* Ends credential cred_id; user_id 0: whoever owns it, else only if that user does.
 * 0 ok, -1 with err ("no such token" when there is none). */
int admin_credential_revoke(PGconn *c, int64_t user_id, int64_t cred_id, char *err,
                            size_t errlen);
/* {"tokens": [{id, user, kind, label, created_at, expires_at, last_used}]} — live
 * credentials of user_id (0: everyone's), kind NULL for both. */
json_t *admin_credential_list(PGconn *c, int64_t user_id, const char *kind, char *err,
                              size_t errlen);
/* The user's id by name: 0 ok, 1 none, -1 database failure. */
int admin_user_id(PGconn *c, const char *name, int64_t *id, char *err, size_t errlen);

#endif
