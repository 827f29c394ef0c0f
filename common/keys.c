/* keys: see keys.h. */
#include "keys.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "fs.h"
#include "log.h"
#include "util.h"

int keys_fingerprint(const char *z85, char out[KEYS_FP_LEN + 1])
{
    uint8_t bin[32], h[crypto_hash_sha256_BYTES];
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (strlen(z85) != KEYS_Z85_LEN || zmq_z85_decode(bin, z85) == NULL)
        return -1;
    crypto_hash_sha256(h, bin, sizeof bin);
    for (size_t i = 0; i < 16; i++) {
        if (i > 0 && i % 2 == 0)
            out[n++] = ':';
        out[n++] = hex[h[i] >> 4];
        out[n++] = hex[h[i] & 15];
    }
    out[n] = '\0';
    return 0;
}

int keys_fingerprint_equal(const char *typed, const char *canonical)
{
    const char *a = typed, *b = canonical;

    for (;;) {
        while (*a == ':')
            a++;
        while (*b == ':')
            b++;
        if (*a == '\0' || *b == '\0')
            return *a == '\0' && *b == '\0';
        if (tolower((unsigned char)*a) != *b)
            return 0;
        a++;
        b++;
    }
}

int keys_z85_valid(const char *s)
{
    uint8_t bin[32];

    return s != NULL && strlen(s) == KEYS_Z85_LEN && zmq_z85_decode(bin, s) != NULL;
}

static int s_read_key(const char *path, char out[KEYS_Z85_LEN + 1], char *err, size_t errlen)
{
    char *data;
    size_t len;

    if (fs_read_file(path, 256, &data, &len, err, errlen) != 0)
        return -1;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        data[--len] = '\0';
    if (!keys_z85_valid(data)) {
        snprintf(err, errlen, "%s: not a Z85 CURVE key", path);
        free(data);
        return -1;
    }
    memcpy(out, data, KEYS_Z85_LEN + 1);
    free(data);
    return 0;
}

int keys_load_public(const char *dir, const char *name, char out[KEYS_Z85_LEN + 1], char *err,
                     size_t errlen)
{
    char path[4096];

    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    return s_read_key(path, out, err, errlen);
}

int keys_load_or_create(const char *dir, const char *name, struct curve_keypair *kp, char *err,
                        size_t errlen)
{
    char spath[4096], ppath[4096], line[KEYS_Z85_LEN + 2];
    struct stat st;

    snprintf(spath, sizeof spath, "%s/%s.key", dir, name);
    snprintf(ppath, sizeof ppath, "%s/%s.pub", dir, name);
    if (stat(spath, &st) == 0) {
        if ((st.st_mode & 077) != 0) {
            snprintf(err, errlen, "%s: secret key is readable by others (mode %04o); chmod 600",
                     spath, (unsigned)(st.st_mode & 07777));
            return -1;
        }
        if (s_read_key(spath, kp->secret_z85, err, errlen) != 0)
            return -1;
        /* The public key is derived, so a lost or edited .pub cannot mismatch the secret. */
        if (zmq_curve_public(kp->public_z85, kp->secret_z85) != 0) {
            snprintf(err, errlen, "%s: cannot derive public key: %s", spath, zmq_strerror(errno));
            return -1;
        }
    } else if (errno == ENOENT) {
        if (fs_mkdir_p(dir, 0700, err, errlen) != 0)
            return -1;
        if (zmq_curve_keypair(kp->public_z85, kp->secret_z85) != 0) {
            snprintf(err, errlen, "cannot make a CURVE keypair: %s (libzmq without CURVE?)",
                     zmq_strerror(errno));
            return -1;
        }
        snprintf(line, sizeof line, "%s\n", kp->secret_z85);
        if (fs_write_atomic(spath, line, strlen(line), 0600, err, errlen) != 0)
            return -1;
        log_info("made a new CURVE keypair secret=%s public=%s", spath, ppath);
    } else {
        snprintf(err, errlen, "%s: %s", spath, strerror(errno));
        return -1;
    }
    snprintf(line, sizeof line, "%s\n", kp->public_z85);
    return fs_write_atomic(ppath, line, strlen(line), 0644, err, errlen);
}
