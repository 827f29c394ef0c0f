/* settings: see settings.h. Values are kept in text form (what travels and is stored) and,
 * for INT and BOOL, decoded once at set time so that readers never parse. */
#include "settings.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ers_zones.h"
#include "mailaddr.h"
#include "mta_adapter.h"
#include "netmatch.h"
#include "util.h"

/* Strings with a format of their own: checked after the length. 0 ok, -1 with err filled. */
typedef int setting_check_fn(const char *value, char *err, size_t errlen);

static int s_check_ers_zones(const char *value, char *err, size_t errlen)
{
    char why[256];

    if (ers_zones_parse(value, NULL, why, sizeof why) == 0)
        return 0;
    snprintf(err, errlen, "%s; the format is %s", why, ERS_ZONES_FORMAT);
    return -1;
}

static int s_check_addresses(const char *value, char *err, size_t errlen)
{
    char addrs[MAILADDR_LIST_MAX][MAILADDR_MAX + 1];
    size_t n;

    return mailaddr_list_split(value, addrs, MAILADDR_LIST_MAX, &n, err, errlen);
}

static int s_check_address(const char *value, char *err, size_t errlen)
{
    if (mailaddr_valid(value, strlen(value)))
        return 0;
    snprintf(err, errlen, "a plain address (local@domain) is required");
    return -1;
}

static int s_check_smtp_url(const char *value, char *err, size_t errlen)
{
    if ((strncmp(value, "smtp://", 7) == 0 && value[7] != '\0') ||
        (strncmp(value, "smtps://", 8) == 0 && value[8] != '\0'))
        return 0;
    snprintf(err, errlen, "smtp://HOST[:PORT] or smtps://HOST[:PORT] is required");
    return -1;
}

/* R8.7: the children's look-ups go to a Portcullis look-up service over HTTPS pinned to the
 * parent's key; a plain-http address would send digests and URLs unauthenticated. */
static int s_check_lookup_url(const char *value, char *err, size_t errlen)
{
    if (value[0] == '\0' || (strncmp(value, "https://", 8) == 0 && value[8] != '\0' &&
                              value[8] != '/'))
        return 0;
    snprintf(err, errlen, "https://HOST:PORT/PATH of a Portcullis look-up service is required "
                          "(the parent's https_listen or a --sps-only replica; R8.7)");
    return -1;
}

/* The third-party rating service the parent's look-up service asks: any http(s) address. */
static int s_check_http_url(const char *value, char *err, size_t errlen)
{
    if (value[0] == '\0' || (strncmp(value, "https://", 8) == 0 && value[8] != '\0') ||
        (strncmp(value, "http://", 7) == 0 && value[7] != '\0'))
        return 0;
    snprintf(err, errlen, "http://HOST[:PORT]/PATH or https://… is required");
    return -1;
}

/* A local time of day, HH:MM on the 24-hour clock (retention.purge_time, R5.5). */
static int s_check_hhmm(const char *v, char *err, size_t errlen)
{
    if (strlen(v) == 5 && v[0] >= '0' && v[0] <= '2' && v[1] >= '0' && v[1] <= '9' &&
        v[2] == ':' && v[3] >= '0' && v[3] <= '5' && v[4] >= '0' && v[4] <= '9' &&
        (v[0] - '0') * 10 + (v[1] - '0') < 24)
        return 0;
    snprintf(err, errlen, "HH:MM from 00:00 to 23:59 is required");
    return -1;
}

static int s_check_bare_newline(const char *v, char *err, size_t errlen)
{
    if (strcmp(v, "reject") == 0 || strcmp(v, "normalize") == 0)
        return 0;
    snprintf(err, errlen, "reject or normalize is required");
    return -1;
}

static int s_check_networks(const char *v, char *err, size_t errlen)
{
    struct netmatch m;

    return netmatch_parse(v, &m, err, errlen);
}

static int s_check_mta_adapter(const char *v, char *err, size_t errlen)
{
    struct mta_adapter a;

    return mta_adapter_parse(v, &a, err, errlen);
}

static setting_check_fn *const s_checks[SETTING__COUNT] = {
    [SETTING_RETENTION_PURGE_TIME] = s_check_hhmm,
    [SETTING_ERS_ZONES] = s_check_ers_zones,
    [SETTING_NOTIFY_ADMIN_ADDRESS] = s_check_addresses,
    [SETTING_NOTIFY_FROM] = s_check_address,
    [SETTING_NOTIFY_SMTP_URL] = s_check_smtp_url,
    [SETTING_SMTP_BARE_NEWLINE] = s_check_bare_newline,
    [SETTING_MTA_ADAPTER] = s_check_mta_adapter,
    [SETTING_SMTP_XFORWARD_HOSTS] = s_check_networks,
    [SETTING_SMART_SCAN_URL] = s_check_lookup_url,
    [SETTING_WRS_URL] = s_check_lookup_url,
    [SETTING_WRS_SERVICE_URL] = s_check_http_url,
};

static const struct setting_def s_defs[SETTING__COUNT] = {
#define X(ident, sec, nm, ty, def, mn, mx, un, desc)                                            \
    [SETTING_##ident] = { .id = SETTING_##ident, .section = sec, .name = nm, .type = SETTING_##ty,     \
                       .default_value = def, .min = mn, .max = mx, .unit = un,                  \
                       .description = desc },
    PORTCULLIS_SETTINGS(X)
#undef X
};

struct settings {
    uint64_t version;
    char *text[SETTING__COUNT];
    int64_t num[SETTING__COUNT]; /* INT value, or BOOL as 0/1 */
};

const struct setting_def *settings_def(enum setting_id id)
{
    return (unsigned)id < SETTING__COUNT ? &s_defs[id] : NULL;
}

const struct setting_def *settings_find(const char *section, const char *name)
{
    for (size_t i = 0; i < SETTING__COUNT; i++)
        if (strcmp(s_defs[i].section, section) == 0 && strcmp(s_defs[i].name, name) == 0)
            return &s_defs[i];
    return NULL;
}

const struct setting_def *settings_find_key(const char *key)
{
    const char *dot = strchr(key, '.');
    char section[SETTINGS_KEY_MAX];

    if (dot == NULL || (size_t)(dot - key) >= sizeof section)
        return NULL;
    memcpy(section, key, (size_t)(dot - key));
    section[dot - key] = '\0';
    return settings_find(section, dot + 1);
}

const char *settings_type_name(enum setting_type t)
{
    switch (t) {
    case SETTING_INT: return "integer";
    case SETTING_BOOL: return "boolean";
    case SETTING_STRING: return "string";
    }
    return "?";
}

bool settings_is_secret(enum setting_id id)
{
    return id == SETTING_NOTIFY_SMTP_URL || id == SETTING_SMART_SCAN_URL ||
           id == SETTING_WRS_URL || id == SETTING_WRS_SERVICE_URL;
}

void settings_mask(const char *value, char *out, size_t n)
{
    const char *scheme = strstr(value, "://"), *host, *at, *colon, *q;
    size_t len;

    if (value[0] == '\0') {
        snprintf(out, n, "%s", "");
        return;
    }
    if (scheme == NULL) {
        snprintf(out, n, "****");
        return;
    }
    host = scheme + 3;
    len = strcspn(host, "/?#");
    at = memrchr(host, '@', len);
    colon = at != NULL ? memchr(host, ':', (size_t)(at - host)) : NULL;
    q = strpbrk(host, "?#");
    if (colon != NULL) /* scheme://user:****@host…, the rest up to any query kept */
        snprintf(out, n, "%.*s:****%.*s%s", (int)(colon - value), value,
                 (int)((q != NULL ? q : host + strlen(host)) - at), at, q != NULL ? "?****" : "");
    else
        snprintf(out, n, "%.*s%s", (int)((q != NULL ? q : value + strlen(value)) - value), value,
                 q != NULL ? "?****" : "");
}

static int s_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = { "true", "on", "yes", "1" };
    static const char *const no[] = { "false", "off", "no", "0" };

    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int settings_validate(const struct setting_def *d, const char *value, char *canon,
                      size_t canonlen, char *err, size_t errlen)
{
    int64_t n;
    bool b;
    size_t len = strlen(value);

    switch (d->type) {
    case SETTING_INT:
        if (parse_int64(value, &n) != 0 || n < d->min || n > d->max) {
            snprintf(err, errlen,
                     "%s.%s: '%.64s' is not valid: an integer from %" PRId64 " to %" PRId64
                     " (%s) is required",
                     d->section, d->name, value, d->min, d->max, d->unit);
            return -1;
        }
        if (canon)
            snprintf(canon, canonlen, "%" PRId64, n);
        return 0;
    case SETTING_BOOL:
        if (s_parse_bool(value, &b) != 0) {
            snprintf(err, errlen, "%s.%s: '%.64s' is not valid: true or false is required",
                     d->section, d->name, value);
            return -1;
        }
        if (canon)
            snprintf(canon, canonlen, "%s", b ? "true" : "false");
        return 0;
    case SETTING_STRING:
        if ((int64_t)len < d->min || (int64_t)len > d->max || len >= SETTINGS_VALUE_MAX) {
            snprintf(err, errlen,
                     "%s.%s: a text of %" PRId64 " to %" PRId64 " characters is required (got %zu)",
                     d->section, d->name, d->min, d->max, len);
            return -1;
        }
        if (s_checks[d->id] != NULL) {
            char why[768];
            if (s_checks[d->id](value, why, sizeof why) != 0) {
                snprintf(err, errlen, "%s.%s: '%.64s' is not valid: %s", d->section, d->name,
                         value, why);
                return -1;
            }
        }
        if (canon)
            snprintf(canon, canonlen, "%s", value);
        return 0;
    }
    snprintf(err, errlen, "%s.%s: unknown type", d->section, d->name);
    return -1;
}

static void s_store(settings_t *s, const struct setting_def *d, const char *canon)
{
    bool b = false;

    free(s->text[d->id]);
    s->text[d->id] = xstrdup(canon);
    if (d->type == SETTING_INT)
        (void)parse_int64(canon, &s->num[d->id]);
    else if (d->type == SETTING_BOOL)
        s->num[d->id] = s_parse_bool(canon, &b) == 0 && b;
}

settings_t *settings_new_defaults(void)
{
    settings_t *s = xcalloc(1, sizeof *s);
    char canon[SETTINGS_VALUE_MAX], err[256];

    for (size_t i = 0; i < SETTING__COUNT; i++) {
        if (settings_validate(&s_defs[i], s_defs[i].default_value, canon, sizeof canon, err,
                              sizeof err) != 0)
            abort(); /* a default outside its own range is a build-time bug */
        s_store(s, &s_defs[i], canon);
    }
    return s;
}

settings_t *settings_dup(const settings_t *src)
{
    settings_t *s = xcalloc(1, sizeof *s);

    s->version = src->version;
    for (size_t i = 0; i < SETTING__COUNT; i++) {
        s->text[i] = xstrdup(src->text[i]);
        s->num[i] = src->num[i];
    }
    return s;
}

void settings_free(settings_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    for (size_t i = 0; i < SETTING__COUNT; i++)
        free((*sp)->text[i]);
    free(*sp);
    *sp = NULL;
}

int settings_set(settings_t *s, const char *section, const char *name, const char *value,
                 char *err, size_t errlen)
{
    const struct setting_def *d = settings_find(section, name);
    char canon[SETTINGS_VALUE_MAX];

    if (d == NULL) {
        snprintf(err, errlen, "unknown setting %.64s.%.64s", section, name);
        return -1;
    }
    if (settings_validate(d, value, canon, sizeof canon, err, errlen) != 0)
        return -1;
    s_store(s, d, canon);
    return 0;
}

int64_t settings_int(const settings_t *s, enum setting_id id) { return s->num[id]; }
bool settings_bool(const settings_t *s, enum setting_id id) { return s->num[id] != 0; }
const char *settings_str(const settings_t *s, enum setting_id id) { return s->text[id]; }
uint64_t settings_version(const settings_t *s) { return s->version; }
void settings_set_version(settings_t *s, uint64_t version) { s->version = version; }
