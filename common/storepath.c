/* storepath: see storepath.h. */
#include "storepath.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bool s_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool storepath_file_id_valid(const char *s)
{
    return s != NULL && strlen(s) == STOREPATH_FILE_ID_LEN && s_hex_lower(s, STOREPATH_FILE_ID_LEN);
}

bool storepath_bucket_valid(const char *s)
{
    int month, day, hour;

    if (s == NULL || strlen(s) != STOREPATH_BUCKET_LEN ||
        strspn(s, "0123456789") != STOREPATH_BUCKET_LEN)
        return false;
    month = (s[4] - '0') * 10 + (s[5] - '0');
    day = (s[6] - '0') * 10 + (s[7] - '0');
    hour = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23;
}

bool storepath_area_dir_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n < 9 || n > STOREPATH_AREA_DIR_MAX || s[n - 9] != '-' || !s_hex_lower(s + n - 8, 8))
        return false;
    for (size_t i = 0; i < n - 9; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

bool storepath_file_name(const char *name, char *out)
{
    if (name == NULL || strlen(name) != STOREPATH_FILE_ID_LEN + 4 ||
        strcmp(name + STOREPATH_FILE_ID_LEN, ".eml") != 0 ||
        !s_hex_lower(name, STOREPATH_FILE_ID_LEN))
        return false;
    memcpy(out, name, STOREPATH_FILE_ID_LEN);
    out[STOREPATH_FILE_ID_LEN] = '\0';
    return true;
}

void storepath_area_dir(const char *area, char *out, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a of the exact name: distinct names stay distinct */
    size_t i = 0;

    for (const unsigned char *p = (const unsigned char *)area; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    for (const unsigned char *p = (const unsigned char *)area;
         *p != '\0' && i + 10 < n && i < STOREPATH_AREA_DIR_MAX - 10; p++)
        out[i++] = isalnum(*p) && *p < 0x80 ? (char)tolower(*p) : '_';
    snprintf(out + i, n - i, "-%08x", h);
}

int storepath_rel_parse(const char *rel, char *area_dir, char *bucket, char *file_id)
{
    const char *a = rel, *b, *f;
    size_t alen;

    if (rel == NULL || (b = strchr(a, '/')) == NULL || (f = strchr(b + 1, '/')) == NULL)
        return -1;
    alen = (size_t)(b - a);
    if (alen > STOREPATH_AREA_DIR_MAX || (size_t)(f - b - 1) != STOREPATH_BUCKET_LEN)
        return -1;
    memcpy(area_dir, a, alen);
    area_dir[alen] = '\0';
    memcpy(bucket, b + 1, STOREPATH_BUCKET_LEN);
    bucket[STOREPATH_BUCKET_LEN] = '\0';
    if (!storepath_area_dir_valid(area_dir) || !storepath_bucket_valid(bucket) ||
        !storepath_file_id_valid(f + 1))
        return -1;
    memcpy(file_id, f + 1, STOREPATH_FILE_ID_LEN + 1);
    return 0;
}
