/* config_cache: the last configuration received from the parent, kept on disk
 * (STATE_DIR/config/current.pb, a packed ConfigSnapshot, replaced atomically) so that a child
 * starts scanning with it when the parent cannot be reached (R0.3). */
#ifndef PORTCULLIS_CONFIG_CACHE_H
#define PORTCULLIS_CONFIG_CACHE_H

#include <stddef.h>

#include "settings.h"
#include "wire.h"

/* Path of the cache file under state_dir; buf must hold PATH_MAX. */
void config_cache_path(const char *state_dir, char *buf, size_t len);
/* Loads and validates the cache; NULL if absent (err empty) or invalid (err says why). */
settings_t *config_cache_load(const char *path, char *err, size_t errlen);
/* Stores a validated snapshot durably. 0 ok, -1 with err filled. */
int config_cache_store(const char *path, const Portcullis__ConfigSnapshot *snap, char *err,
                       size_t errlen);

#endif
