/* libFuzzer target (R8.6): what the REST API does with a request body before any database
 * work — the JSON parse as the server makes it (duplicates refused), the field checks every
 * handler starts with (api_body_only, _string, _int, _bool), and the value checks behind them
 * (child and user names, web-reputation entries, log cursors and limits, stored-file refs). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_log.h"
#include "admin/admin_quarantine.h"
#include "admin/admin_users.h"
#include "api/api.h"

static void s_check_text(const char *v)
{
    char pattern[512];
    const char *why = NULL;
    int64_t n;

    (void)admin_child_name_valid(v);
    (void)admin_user_name_valid(v);
    (void)admin_log_cursor_valid(v);
    (void)admin_log_limit_parse(v, &n);
    (void)admin_stored_ref_valid(v);
    if (strlen(v) < sizeof pattern) {
        strcpy(pattern, v);
        if (admin_wrs_entry_check("domain", pattern, 50, "phishing", &why) != 0 && why == NULL)
            abort();
        strcpy(pattern, v);
        (void)admin_wrs_entry_check("url", pattern, 50, v, &why);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const fields[][4] = {
        { "name", NULL }, { "value", NULL }, { "fingerprint", NULL },
        { "name", "role", "password", NULL }, { "enabled", "position", NULL },
    };
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    struct api_req rq = { .method = "POST", .path = "/api/v1/fuzz", .user = "", .peer = "fuzz" };
    const char *key;
    json_t *v;

    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    rq.body = body;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        struct api_resp rs = { 0 };
        const char *s = NULL;
        int64_t n;
        bool b;
        (void)api_body_only(&rq, &rs, fields[i]);
        json_decref(rs.json);
        memset(&rs, 0, sizeof rs);
        if (api_body_string(&rq, &rs, fields[i][0], false, &s) == 0 && s != NULL)
            s_check_text(s);
        json_decref(rs.json);
        memset(&rs, 0, sizeof rs);
        (void)api_body_int(&rq, &rs, fields[i][0], false, 0, 1000, &n);
        json_decref(rs.json);
        memset(&rs, 0, sizeof rs);
        (void)api_body_bool(&rq, &rs, fields[i][0], false, &b);
        json_decref(rs.json);
    }
    json_object_foreach(body, key, v) {
        s_check_text(key);
        if (json_is_string(v))
            s_check_text(json_string_value(v));
    }
    json_decref(body);
    return 0;
}
