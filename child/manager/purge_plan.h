/* purge_plan: the decisions of the quota and retention purges (R5.5, R5.8) as pure functions
 * of their inputs — which stored files go, oldest first, down to the low-water mark; whether a
 * bucket hour is past an area's retention; when the daily purge is due — so that unit tests
 * can check them without files or clocks. quota.c does the I/O. */
#ifndef PORTCULLIS_PURGE_PLAN_H
#define PORTCULLIS_PURGE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PURGE_SECONDS_PER_DAY 86400

/* One stored file as the purge sees it. */
struct purge_item {
    uint32_t hour;          /* its bucket, YYYYMMDDHH as a number (UTC) */
    int64_t mtime_ns;       /* when it was written: order within a bucket */
    uint64_t size;          /* bytes, as counted by the usage counters */
    uint32_t idx;           /* caller's index (name table); last tie-break: a total order */
};

/* Sorts oldest first: bucket hour, then write time, then idx. Hours with no files simply do
 * not appear, so they cannot widen what is deleted (the model's 24-lists flaw). */
void purge_sort(struct purge_item *items, size_t n);
/* How many of the oldest sorted items must go for usage to be at or below target: the fewest
 * that suffice (exactly down to the low-water mark, never "a day's worth"). *freed gets their
 * bytes. n when all of them are not enough. 0 when usage <= target already. */
size_t purge_select(const struct purge_item *sorted, size_t n, uint64_t usage, uint64_t target,
                    uint64_t *freed);
/* The low-water mark in bytes: quota * percent / 100, without overflow. */
uint64_t purge_target(uint64_t quota_bytes, unsigned low_water_percent);

/* "YYYYMMDDHH" (storepath_bucket_valid) → its number and the UTC start of the hour. -1 for
 * anything else. */
int purge_bucket_parse(const char *name, uint32_t *hour, time_t *start);
/* A bucket is past retention when every message it can hold (received before the end of its
 * hour) is older than days: start + 1 h <= now - days. Nothing younger is ever removed. */
bool purge_retention_expired(time_t bucket_start, time_t now, unsigned days);

/* "HH:MM" (retention.purge_time) → hour and minute; -1 when malformed. */
int purge_time_parse(const char *s, int *hh, int *mm);
/* The most recent local time HH:MM at or before now. */
time_t purge_scheduled_before(time_t now, int hh, int mm);
/* The daily purge is due when a scheduled time has passed since the last run — also one that
 * passed while the manager was down (caught up once at start, not once per missed day). */
bool purge_retention_due(time_t now, time_t last_run, int hh, int mm);

#endif
