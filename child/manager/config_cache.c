/* config_cache: see config_cache.h. */
#include "manager/config_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "util.h"

void config_cache_path(const char *state_dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s/config/current.pb", state_dir);
}

settings_t *config_cache_load(const char *path, char *err, size_t errlen)
{
    struct stat st;
    char *data;
    size_t len;
    Portcullis__ConfigSnapshot *snap;
    settings_t *s;

    err[0] = '\0';
    if (stat(path, &st) != 0 && errno == ENOENT)
        return NULL;
    if (fs_read_file(path, WIRE_MSG_MAX, &data, &len, err, errlen) != 0)
        return NULL;
    snap = portcullis__config_snapshot__unpack(NULL, len, (const uint8_t *)data);
    free(data);
    if (snap == NULL || snap->n_settings > WIRE_SETTINGS_MAX) {
        snprintf(err, errlen, "%s: not a configuration snapshot", path);
        if (snap != NULL)
            portcullis__config_snapshot__free_unpacked(snap, NULL);
        return NULL;
    }
    s = wire_settings_from_snapshot(snap, err, errlen);
    portcullis__config_snapshot__free_unpacked(snap, NULL);
    return s;
}

int config_cache_store(const char *path, const Portcullis__ConfigSnapshot *snap, char *err,
                       size_t errlen)
{
    size_t len = portcullis__config_snapshot__get_packed_size(snap);
    uint8_t *buf = xmalloc(len);
    char dir[4096];
    int r;

    portcullis__config_snapshot__pack(snap, buf);
    strlcpy_p(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        if (fs_mkdir_p(dir, 0750, err, errlen) != 0) { /* the scan service reads it */
            free(buf);
            return -1;
        }
    }
    r = fs_write_atomic(path, buf, len, 0640, err, errlen);
    free(buf);
    return r;
}
