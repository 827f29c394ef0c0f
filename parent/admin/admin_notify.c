/* admin_notify: see admin_notify.h. */
#include "admin/admin_notify.h"

#include <stdio.h>
#include <stdlib.h>

#include "db/db.h"

json_t *admin_notify_list(PGconn *c, size_t limit, char *err, size_t errlen)
{
    char lim[24];
    const char *p[] = { lim };
    PGresult *r;
    json_t *arr;

    snprintf(lim, sizeof lim, "%zu", limit > ADMIN_NOTIFY_LIST_MAX ? ADMIN_NOTIFY_LIST_MAX : limit);
    r = db_query(c,
                 "SELECT n.id, to_char(n.created_at AT TIME ZONE 'UTC', "
                 " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), n.state, n.attempts, n.subject, "
                 " coalesce(n.recipients, ''), coalesce(to_char(n.sent_at AT TIME ZONE 'UTC', "
                 " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), coalesce(n.last_error, ''), "
                 " coalesce(c.name, '') "
                 "FROM notifications n LEFT JOIN children c ON c.id = n.child_id "
                 "ORDER BY n.id DESC LIMIT $1::int", 1, p, err, errlen);
    if (r == NULL)
        return NULL;
    arr = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(strtoll(PQgetvalue(r, i, 0), NULL, 10)));
        json_object_set_new(o, "created", json_string(PQgetvalue(r, i, 1)));
        json_object_set_new(o, "state", json_string(PQgetvalue(r, i, 2)));
        json_object_set_new(o, "attempts", json_integer(strtoll(PQgetvalue(r, i, 3), NULL, 10)));
        json_object_set_new(o, "subject", json_string(PQgetvalue(r, i, 4)));
        json_object_set_new(o, "recipients", json_string(PQgetvalue(r, i, 5)));
        json_object_set_new(o, "sent", json_string(PQgetvalue(r, i, 6)));
        json_object_set_new(o, "last_error", json_string(PQgetvalue(r, i, 7)));
        json_object_set_new(o, "child", json_string(PQgetvalue(r, i, 8)));
        json_array_append_new(arr, o);
    }
    PQclear(r);
    return arr;
}

int admin_notify_test(PGconn *c, const char *actor, long long *id, char *err, size_t errlen)
{
    char msg[512];
    const char *p[] = { msg };
    PGresult *r;

    snprintf(msg, sizeof msg,
             "Test notification requested by %.100s (`portcullis notify test` or the console). "
             "If you read this, notification mail works.", actor);
    r = db_query(c, "WITH ev AS (INSERT INTO events (category, severity, message) "
                    "  VALUES ('system', 'info', $1) RETURNING id), "
                    "n AS (INSERT INTO notifications (event_id, subject, body) "
                    "  SELECT id, 'Portcullis test notification', $1 FROM ev RETURNING id) "
                    "SELECT id, pg_notify('portcullis_notify', '') FROM n", 1, p, err, errlen);
    if (r == NULL)
        return -1;
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}
