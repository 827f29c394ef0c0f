/* conf: see conf.h. */
#include "conf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "util.h"

struct conf_entry {
    const char *name;
    char *value;
};

struct conf {
    const struct conf_key *keys;
    size_t nkeys;
    char **values; /* parallel to keys; NULL = default */
};

static char *s_trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int s_parse_line(conf_t *c, const char *path, int lineno, char *line, char *err,
                        size_t errlen)
{
    char *eq, *key, *val;
    size_t i, vlen;

    line = s_trim(line);
    if (*line == '\0' || *line == '#')
        return 0;
    eq = strchr(line, '=');
    if (eq == NULL) {
        snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
        return -1;
    }
    *eq = '\0';
    key = s_trim(line);
    val = s_trim(eq + 1);
    vlen = strlen(val);
    if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
        val[vlen - 1] = '\0';
        val++;
    } else {
        char *hash = strstr(val, " #");
        if (hash != NULL) {
            *hash = '\0';
            val = s_trim(val);
        }
    }
    for (i = 0; i < c->nkeys; i++) {
        if (strcmp(c->keys[i].name, key) == 0) {
            if (c->values[i] != NULL) {
                snprintf(err, errlen, "%s:%d: '%.64s' is set twice", path, lineno, key);
                return -1;
            }
            c->values[i] = xstrdup(val);
            return 0;
        }
    }
    snprintf(err, errlen, "%s:%d: unknown key '%.64s'", path, lineno, key);
    return -1;
}

conf_t *conf_load(const char *path, const struct conf_key *keys, size_t nkeys, char *err,
                  size_t errlen)
{
    conf_t *c;
    char *data = NULL, *line, *save = NULL;
    size_t len;
    int lineno = 0;

    if (fs_read_file(path, CONF_FILE_MAX, &data, &len, err, errlen) != 0)
        return NULL;
    c = xcalloc(1, sizeof *c);
    c->keys = keys;
    c->nkeys = nkeys;
    c->values = xcalloc(nkeys, sizeof *c->values);
    /* strtok_r skips empty lines, so count them by hand for honest line numbers. */
    for (line = data; line != NULL; line = save) {
        save = strchr(line, '\n');
        if (save != NULL)
            *save++ = '\0';
        lineno++;
        if (strlen(line) >= CONF_LINE_MAX) {
            snprintf(err, errlen, "%s:%d: line longer than %d bytes", path, lineno,
                     CONF_LINE_MAX);
            goto fail;
        }
        if (s_parse_line(c, path, lineno, line, err, errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < nkeys; i++) {
        if (c->values[i] == NULL && keys[i].default_value == NULL) {
            snprintf(err, errlen, "%s: required key '%s' is missing (%s)", path, keys[i].name,
                     keys[i].description);
            goto fail;
        }
    }
    free(data);
    return c;
fail:
    free(data);
    conf_free(&c);
    return NULL;
}

void conf_free(conf_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    for (size_t i = 0; i < (*cp)->nkeys; i++)
        free((*cp)->values[i]);
    free((*cp)->values);
    free(*cp);
    *cp = NULL;
}

const char *conf_get(const conf_t *c, const char *name)
{
    for (size_t i = 0; i < c->nkeys; i++)
        if (strcmp(c->keys[i].name, name) == 0)
            return c->values[i] != NULL ? c->values[i] : c->keys[i].default_value;
    return NULL;
}

int conf_get_int(const conf_t *c, const char *name, long min, long max, long *out, char *err,
                 size_t errlen)
{
    const char *v = conf_get(c, name);
    int64_t n;

    if (v == NULL || parse_int64(v, &n) != 0 || n < min || n > max) {
        snprintf(err, errlen, "%s: '%s' is not valid: an integer from %ld to %ld is required",
                 name, v ? v : "", min, max);
        return -1;
    }
    *out = (long)n;
    return 0;
}
