/* api_util: small helpers for the API's handlers (see api.h): role names, error and success
 * replies, query fields and typed, checked fields of the JSON body, and the mapping of an
 * admin_* error message to an HTTP status. */
#include "api/api.h"

#include <stdarg.h>
#include <string.h>

#include "util.h"

static const char *const s_role_names[] = { "none", "viewer", "operator", "admin" };

const char *api_role_name(enum api_role r)
{
    return (unsigned)r < ARRAY_LEN(s_role_names) ? s_role_names[r] : "none";
}

int api_role_parse(const char *s, enum api_role *out)
{
    for (size_t i = API_ROLE_VIEWER; s != NULL && i < ARRAY_LEN(s_role_names); i++)
        if (strcmp(s, s_role_names[i]) == 0) {
            *out = (enum api_role)i;
            return 0;
        }
    return -1;
}

void api_fail(struct api_resp *rs, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rs->error, sizeof rs->error, fmt, ap);
    va_end(ap);
    rs->status = status;
    json_decref(rs->json); /* a half-built answer never goes out with an error */
    rs->json = NULL;
}

void api_ok(struct api_resp *rs, json_t *json)
{
    if (json == NULL) {
        api_fail(rs, 500, "out of memory");
        return;
    }
    json_decref(rs->json);
    rs->json = json;
    rs->status = 200;
}

const char *api_query(const struct api_req *rq, const char *key)
{
    for (size_t i = 0; i < rq->nquery; i++)
        if (strcmp(rq->query[i].key, key) == 0)
            return rq->query[i].value;
    return NULL;
}

/* The field's value, NULL when absent (or no body); a JSON null counts as absent. */
static json_t *s_field(const struct api_req *rq, const char *key)
{
    json_t *v = rq->body != NULL ? json_object_get(rq->body, key) : NULL;

    return v != NULL && !json_is_null(v) ? v : NULL;
}

static int s_missing(struct api_resp *rs, const char *key, bool required)
{
    if (!required)
        return 1;
    api_fail(rs, 400, "field \"%s\" is required", key);
    return -1;
}

int api_body_string(const struct api_req *rq, struct api_resp *rs, const char *key,
                    bool required, const char **out)
{
    json_t *v = s_field(rq, key);

    if (v == NULL)
        return s_missing(rs, key, required);
    if (!json_is_string(v)) {
        api_fail(rs, 400, "field \"%s\" must be a string", key);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        api_fail(rs, 400, "field \"%s\" must not contain NUL characters", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int api_body_int(const struct api_req *rq, struct api_resp *rs, const char *key, bool required,
                 int64_t min, int64_t max, int64_t *out)
{
    json_t *v = s_field(rq, key);
    json_int_t n;

    if (v == NULL)
        return s_missing(rs, key, required);
    if (!json_is_integer(v)) {
        api_fail(rs, 400, "field \"%s\" must be a whole number", key);
        return -1;
    }
    n = json_integer_value(v);
    if (n < min || n > max) {
        api_fail(rs, 400, "field \"%s\" must be between %lld and %lld", key, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = (int64_t)n;
    return 0;
}

int api_body_bool(const struct api_req *rq, struct api_resp *rs, const char *key,
                  bool required, bool *out)
{
    json_t *v = s_field(rq, key);

    if (v == NULL)
        return s_missing(rs, key, required);
    if (!json_is_boolean(v)) {
        api_fail(rs, 400, "field \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int api_body_only(const struct api_req *rq, struct api_resp *rs, const char *const *allowed)
{
    const char *key;
    json_t *v;

    if (rq->body == NULL)
        return 0;
    json_object_foreach(rq->body, key, v) {
        size_t i;
        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], key) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            api_fail(rs, 400, "unknown field \"%.64s\"", key);
            return -1;
        }
    }
    return 0;
}

static bool s_says(const char *err, const char *const *words)
{
    for (size_t i = 0; words[i] != NULL; i++)
        if (strstr(err, words[i]) != NULL)
            return true;
    return false;
}

void api_fail_admin(struct api_resp *rs, const char *err)
{
    static const char *const notfound[] = { "unknown", "no such", "not found", "is not known",
                                            "is named", NULL };
    static const char *const conflict[] = { "refused", "in use", "already", NULL };
    static const char *const down[] = { "down", "did not answer", "no answer", "database",
                                        NULL };
    const char *e = err != NULL && *err != '\0' ? err : "the operation failed";
    int status = 400;

    if (s_says(e, notfound))
        status = 404;
    else if (s_says(e, conflict))
        status = 409;
    else if (s_says(e, down))
        status = 503;
    api_fail(rs, status, "%s", e);
}
