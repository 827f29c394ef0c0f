/* settings: the registry of cluster-wide settings (types, defaults, ranges) and a validated
 * set of values. The table itself is in settings_table.h. A settings_t is immutable once
 * built: reload builds a new one, validates it whole, then swaps the pointer. */
#ifndef PORTCULLIS_SETTINGS_H
#define PORTCULLIS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settings_table.h"

enum setting_type { SETTING_INT, SETTING_BOOL, SETTING_STRING };

enum setting_id {
#define X(id, sec, name, type, def, min, max, unit, desc) SETTING_##id,
    PORTCULLIS_SETTINGS(X)
#undef X
    SETTING__COUNT
};

struct setting_def {
    enum setting_id id;
    const char *section;
    const char *name;
    enum setting_type type;
    const char *default_value;
    int64_t min, max;
    const char *unit;
    const char *description;
};

#define SETTINGS_KEY_MAX 128   /* bytes of "section.name" */
#define SETTINGS_VALUE_MAX 4096 /* bytes of a value's text form */

const struct setting_def *settings_def(enum setting_id id);
const struct setting_def *settings_find(const char *section, const char *name);
/* "section.name" → definition; NULL if unknown or malformed. */
const struct setting_def *settings_find_key(const char *key);
const char *settings_type_name(enum setting_type t);

/* R8.8: settings that may carry a secret (a password in a URL, a token). Shown masked to every
 * role but admin, and in audit details. */
bool settings_is_secret(enum setting_id id);
/* The value with its secret part hidden: a URL's password and query ("smtps://u:****@h/"),
 * anything else whole ("****"); "" stays "". */
void settings_mask(const char *value, char *out, size_t n);

/* Checks a value's text form against the definition. On success writes the canonical text
 * form (e.g. "on" → "true", "+5" → "5") into canon (if not NULL) and returns 0; on failure
 * writes a message naming the setting and the allowed range into err and returns -1. */
int settings_validate(const struct setting_def *d, const char *value, char *canon,
                      size_t canonlen, char *err, size_t errlen);

typedef struct settings settings_t;

settings_t *settings_new_defaults(void);
settings_t *settings_dup(const settings_t *s);
void settings_free(settings_t **sp);
/* 0 ok, -1 with err filled (unknown setting or bad value); s unchanged on error. */
int settings_set(settings_t *s, const char *section, const char *name, const char *value,
                 char *err, size_t errlen);
int64_t settings_int(const settings_t *s, enum setting_id id);
bool settings_bool(const settings_t *s, enum setting_id id);
const char *settings_str(const settings_t *s, enum setting_id id); /* borrowed; text form */
uint64_t settings_version(const settings_t *s);
void settings_set_version(settings_t *s, uint64_t version);

#endif
