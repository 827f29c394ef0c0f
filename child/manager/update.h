/* update: signed component updates on a child (R3.7, R1.4). The configuration names each
 * component's current version; when it differs from what is installed, a worker thread
 * downloads the package over HTTPS (libcurl: the parent's key pinned, bearer token, size
 * bounded by the announced size), checks size, SHA-256 and the Ed25519 signature, extracts it
 * into a fresh directory under state_dir/updates/<component>/ and swaps the component's
 * directory (signature_dir, light_signature_dir) to it with one atomic symlink rename. The
 * manager's loop then asks the scan service to reload: a hot swap, nothing deferred. A
 * failure changes nothing and is retried with backoff; a newer version supersedes at once.
 * The manager's thread owns this module; the worker reports through a pipe (update_fd). */
#ifndef PORTCULLIS_UPDATE_H
#define PORTCULLIS_UPDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "manager/mreport.h"
#include "portcullis.pb-c.h"

#define UPDATE_RETRY_MIN_MS 5000               /* first retry after a failure … */
#define UPDATE_RETRY_MAX_MS (15u * 60 * 1000)  /* … doubling up to this */
#define UPDATE_COMPONENTS 2                    /* clamav, light */

typedef struct update update_t;

struct update_dirs {
    const char *state_dir;  /* packages and installed sets go to state_dir/updates */
    const char *clamav_dir; /* child.conf signature_dir */
    const char *light_dir;  /* child.conf light_signature_dir (or state_dir/light) */
};

/* NULL with err filled. mrep records failures and installs (category "update"). */
update_t *update_new(const struct update_dirs *d, mreport_t *mrep, char *err, size_t errlen);
/* Cancels a running download and waits for its thread. NULL-safe; sets *up = NULL. */
void update_free(update_t **up);

/* Takes the update fields of a configuration snapshot (validated or not: bad entries are
 * refused here, logged, and keep what is installed). */
void update_config(update_t *u, const Portcullis__ConfigSnapshot *snap);
/* The same from the cached snapshot file at start (absent: nothing to do). */
void update_config_file(update_t *u, const char *path);

/* Readable when a worker has finished: call update_on_result. -1: none. */
int update_fd(const update_t *u);
/* Collects a finished job. True when a component was installed: the caller tells the scan
 * service to reload (reason gets e.g. "update clamav 2026112301"). */
bool update_on_result(update_t *u, char *reason, size_t reasonlen);
/* Starts a download that is due. Call from the loop's timers. */
void update_tick(update_t *u);

/* Installed versions as PatternVersion entries (storage: the caller's arrays of at least
 * UPDATE_COMPONENTS). Returns how many. */
size_t update_patterns(const update_t *u, Portcullis__PatternVersion *pv,
                       Portcullis__PatternVersion **ptrs);
/* "ok", or the last failure still in force (component, version, reason, next retry). */
const char *update_state(const update_t *u);

#endif
