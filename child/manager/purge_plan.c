/* purge_plan: see purge_plan.h. */
#include "manager/purge_plan.h"

#include <stdlib.h>
#include <string.h>

#include "storepath.h"

static int s_cmp(const void *a, const void *b)
{
    const struct purge_item *x = a, *y = b;

    if (x->hour != y->hour)
        return x->hour < y->hour ? -1 : 1;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

void purge_sort(struct purge_item *items, size_t n)
{
    if (n > 1)
        qsort(items, n, sizeof *items, s_cmp);
}

size_t purge_select(const struct purge_item *sorted, size_t n, uint64_t usage, uint64_t target,
                    uint64_t *freed)
{
    uint64_t got = 0;
    size_t k = 0;

    while (k < n && usage - got > target) {
        /* a counter below the files' own sum (drift) must not wrap */
        got = sorted[k].size > usage - got ? usage : got + sorted[k].size;
        k++;
    }
    *freed = got;
    return k;
}

uint64_t purge_target(uint64_t quota_bytes, unsigned low_water_percent)
{
    if (low_water_percent >= 100)
        return quota_bytes;
    return quota_bytes / 100 * low_water_percent + quota_bytes % 100 * low_water_percent / 100;
}

int purge_bucket_parse(const char *name, uint32_t *hour, time_t *start)
{
    struct tm tm;
    uint32_t v = 0;

    if (!storepath_bucket_valid(name))
        return -1;
    for (int i = 0; i < STOREPATH_BUCKET_LEN; i++)
        v = v * 10 + (uint32_t)(name[i] - '0');
    memset(&tm, 0, sizeof tm);
    tm.tm_year = (int)(v / 1000000) - 1900;
    tm.tm_mon = (int)(v / 10000 % 100) - 1;
    tm.tm_mday = (int)(v / 100 % 100);
    tm.tm_hour = (int)(v % 100);
    *hour = v;
    *start = timegm(&tm);
    return 0;
}

bool purge_retention_expired(time_t bucket_start, time_t now, unsigned days)
{
    return bucket_start + 3600 <= now - (time_t)days * PURGE_SECONDS_PER_DAY;
}

int purge_time_parse(const char *s, int *hh, int *mm)
{
    if (s == NULL || strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' || s[1] < '0' ||
        s[1] > '9' || s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
        return -1;
    *hh = (s[0] - '0') * 10 + (s[1] - '0');
    *mm = (s[3] - '0') * 10 + (s[4] - '0');
    return *hh < 24 && *mm < 60 ? 0 : -1;
}

time_t purge_scheduled_before(time_t now, int hh, int mm)
{
    struct tm tm;
    time_t t;

    localtime_r(&now, &tm);
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = 0;
    tm.tm_isdst = -1; /* let mktime decide across a DST change */
    t = mktime(&tm);
    if (t > now) {
        localtime_r(&now, &tm);
        tm.tm_mday -= 1;
        tm.tm_hour = hh;
        tm.tm_min = mm;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    return t;
}

bool purge_retention_due(time_t now, time_t last_run, int hh, int mm)
{
    return last_run < purge_scheduled_before(now, hh, mm);
}
