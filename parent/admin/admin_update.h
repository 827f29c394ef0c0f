/* admin_update: signed component updates on the parent (R3.7): the update key (Ed25519, in
 * the parent's state_dir), the `components` table (packages, digests, signatures, which
 * version is current), the `update_server` row (public key, HTTPS pin and address, download
 * token) and the snapshot's update fields. Every change of what the children must fetch or
 * trust makes a new configuration version with its NOTIFY, like admin_settings_set. */
#ifndef PORTCULLIS_ADMIN_UPDATE_H
#define PORTCULLIS_ADMIN_UPDATE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "portcullis.pb-c.h"
#include "update_pkg.h"

#define ADMIN_UPDATE_KEY_FILE "update.key"   /* hex Ed25519 seed, 0600 */
#define ADMIN_UPDATE_PUB_FILE "update.pub"   /* hex public key, 0644 */
#define ADMIN_UPDATE_TOKEN_BYTES 32          /* random bytes of the download bearer token */
#define ADMIN_UPDATE_URL_MAX 512             /* bytes of the HTTPS base address */

struct admin_update_key {
    uint8_t pk[UPDATE_PK_LEN];
    uint8_t sk[UPDATE_SK_LEN];
};

/* Loads state_dir/update.key (refused if group or others may read it) or makes the pair on
 * first use (a second process making it at the same time loses the race and loads the
 * winner's). 0 ok, -1 with err filled. */
int admin_update_key_load_or_create(const char *state_dir, struct admin_update_key *k,
                                    char *err, size_t errlen);

/* Records what the children need: public key, and (when not NULL) the HTTPS key pin and
 * base address. The download token is made the first time. When anything changed while a
 * component version is current, a new configuration version goes out. */
int admin_update_server_publish(PGconn *c, const uint8_t pk[UPDATE_PK_LEN], const char *tls_pin,
                                const char *base_url, char *err, size_t errlen);

/* Stores a package: checks the archive (update_pkg_extract_mem), digests and signs it with
 * k, and with make_current makes it the component's current version (new configuration
 * version, NOTIFY; config_version gets it, else 0). Refused if (component, version) exists. */
int admin_update_import(PGconn *c, const struct admin_update_key *k, const char *component,
                        const char *version, const void *data, size_t len, bool make_current,
                        uint64_t *config_version, size_t *nfiles, char *err, size_t errlen);
/* Makes an imported version current (also an older one: a rollback). */
int admin_update_use(PGconn *c, const char *component, const char *version,
                     uint64_t *config_version, char *err, size_t errlen);
/* {"components": [{component, version, sha256, size, files, current, imported_at}…]}
 * newest first per component. */
json_t *admin_update_list(PGconn *c, char *err, size_t errlen);

/* ConfigSnapshot fields 6..9 from the database; owned by snap until
 * admin_update_snapshot_clear(). */
int admin_update_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err,
                               size_t errlen);
void admin_update_snapshot_clear(Portcullis__ConfigSnapshot *snap);

#endif
