/* conf: the per-host bootstrap files (/etc/portcullis/parent.conf, child.conf).
 * Format: "key = value" lines, '#' starts a comment, a value may be "double quoted".
 * Unknown keys are errors, so that a typo never silently leaves a default in force. */
#ifndef PORTCULLIS_CONF_H
#define PORTCULLIS_CONF_H

#include <stddef.h>

#define CONF_FILE_MAX (64 * 1024) /* bytes: a bootstrap file is a few lines */
#define CONF_LINE_MAX 4096

struct conf_key {
    const char *name;
    const char *default_value; /* NULL: required */
    const char *description;
};

typedef struct conf conf_t;

/* Loads path and checks every key against keys[0..nkeys). NULL on failure, with a message
 * naming the file, the line and the problem written to err. */
conf_t *conf_load(const char *path, const struct conf_key *keys, size_t nkeys, char *err,
                  size_t errlen);
void conf_free(conf_t **cp);
/* Value of a declared key (its default when absent); borrowed. */
const char *conf_get(const conf_t *c, const char *name);
int conf_get_int(const conf_t *c, const char *name, long min, long max, long *out, char *err,
                 size_t errlen);

#endif
