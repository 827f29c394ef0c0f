/* admin: the administrator's operations on the cluster's state in PostgreSQL. One
 * implementation serves the `portcullis` CLI and the parent daemon (and later the REST API).
 * Every function returns 0 / a result on success, -1 / NULL with err filled on failure;
 * err is written for the administrator: it says what is wrong and what to do. */
#ifndef PORTCULLIS_ADMIN_H
#define PORTCULLIS_ADMIN_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "portcullis.pb-c.h"
#include "settings.h"
#include "wire.h"

#define ADMIN_NOTIFY_CONFIG "portcullis_config" /* LISTEN channel: a new config version */
#define ADMIN_NOTIFY_CHILDREN "portcullis_children" /* children enrolled, re-keyed or removed
                                                    * (a trigger on the table, migration 016) */
#define ADMIN_TOKEN_TTL_HOURS 24
#define ADMIN_TOKEN_BYTES 24                      /* random bytes in an enrolment token */
#define ADMIN_TOKEN_HEX (2 * ADMIN_TOKEN_BYTES)

/* --- settings and configuration versions (R6) ------------------------------------------- */
/* Effective settings (defaults overridden by the rows of `settings`) at the current version. */
settings_t *admin_settings_effective(PGconn *c, char *err, size_t errlen);
/* Validates, stores, makes a new configuration version and wakes the parent. */
int admin_settings_set(PGconn *c, const char *key, const char *value, uint64_t *version,
                       char *err, size_t errlen);
/* Every setting (or the one named by key) with value, default, range, unit, description. */
json_t *admin_settings_describe(PGconn *c, const char *key, char *err, size_t errlen);
int admin_config_version(PGconn *c, uint64_t *version, char *err, size_t errlen);
/* Inside the caller's transaction: a new configuration version for reason and NOTIFY (delivered
 * at commit, so the parent never sees a version before its rows). 0 ok, -1 with err filled. */
int admin_config_bump(PGconn *c, const char *reason, uint64_t *version, char *err, size_t errlen);
/* The same, then COMMIT; rolled back on any failure. */
int admin_config_commit(PGconn *c, const char *reason, uint64_t *version, char *err,
                        size_t errlen);
/* The upstream MTA's retry settings (mta.*) of a settings set (R4). */
struct mta_retry;
void admin_mta_retry(const settings_t *s, struct mta_retry *r);
/* The retry timetable (R4.3) of the mta.* settings in force for a message deferred at
 * failure_at (seconds after midnight) with the first queue run first_run seconds later:
 * {config_version, failure_at_s, first_queue_run_after_s, settings: {queue_run_delay, …},
 *  retries: [{retry, after_failure_s, backoff_s, bounce_if_failed}]}. NULL with err filled
 * (first_run past mta.queue_run_delay says so). */
json_t *admin_mta_timetable(PGconn *c, int64_t failure_at, int64_t first_run, char *err,
                            size_t errlen);

/* --- children and enrolment (R7.1) ------------------------------------------------------- */
/* Makes a one-time token for NAME, valid ADMIN_TOKEN_TTL_HOURS; token gets ADMIN_TOKEN_HEX+1. */
int admin_enroll_token(PGconn *c, const char *name, char *token, char *err, size_t errlen);
/* Approves the pending child NAME if fingerprint (required) is that of its key (R8.3). */
int admin_child_approve(PGconn *c, const char *name, const char *fingerprint, char *err,
                        size_t errlen);
int admin_child_remove(PGconn *c, const char *name, char *err, size_t errlen);
bool admin_child_name_valid(const char *name);
/* admin_enroll_token plus what a new child's child.conf needs, from the parent's parent.conf
 * (its public endpoints or listen addresses) and its public key in state_dir:
 * {name, token, expires_hours, parent_cluster, parent_enrol, parent_public_key}. The CLI's
 * `child enroll-token` and the API's POST /children print the same. NULL with err filled. */
struct conf;
json_t *admin_enroll_offer(PGconn *c, const struct conf *conf, const char *name, char *err,
                           size_t errlen);

/* Which children a status lists (issue 12 point 3); all fields optional. */
struct admin_status_query {
    const char *state; /* "up", "down" or "pending"; NULL: any */
    const char *name;  /* part of the name; NULL: any */
    bool lagging;      /* only enrolled children not on the current configuration version */
    unsigned limit;    /* at most this many (0: all) … */
    const char *after; /* … whose names sort after this one (the previous page's "next") */
    bool full_health;  /* each child's whole Health; else the summary (no latency histogram) */
};
#define ADMIN_STATUS_PAGE_MAX 1000   /* children in one page of the API */

/* Fleet status (R6.2, R7.2, R7.5): {"config_version": N, "children": [...] (those q asks for;
 * NULL: all, whole Health), "matched": how many match, "next": the name to ask after for the
 * next page or null, "store_totals": {kind: {bytes, files, quota_bytes, children}}, "totals":
 * {children, children_up, …, sums of the children's last reported counters}} — totals always
 * over the whole fleet. */
json_t *admin_status(PGconn *c, const struct admin_status_query *q, char *err, size_t errlen);
/* {name, state, last_health_at, health}: a child's whole last Health; NULL with "no child
 * named …" when there is none. */
json_t *admin_child_health(PGconn *c, const char *name, char *err, size_t errlen);


/* --- policy rules and areas (R5.1, R5.2) ------------------------------------------------- */
/* Every change builds the whole rule set as it would be, refuses it unless policy_compile()
 * accepts it (so the parent refuses exactly what a child would), then stores it in one
 * transaction with a new configuration version and a NOTIFY. version gets the new version,
 * or 0 when nothing needed to change. */
#define ADMIN_AREA_DEFAULT_QUARANTINE "Default quarantine"
#define ADMIN_AREA_DEFAULT_ARCHIVE "Default archive"
#define ADMIN_AREA_RETENTION_DEFAULT 15 /* days an area keeps messages unless told (R5.2) */

/* {"config_version": N, "areas": [{name, kind, retention_days, used_by: [rule names]}]} */
json_t *admin_area_list(PGconn *c, char *err, size_t errlen);
/* kind: "quarantine" or "archive"; retention_days 1..60. */
int admin_area_add(PGconn *c, const char *name, const char *kind, unsigned retention_days,
                   uint64_t *version, char *err, size_t errlen);
int admin_area_set_retention(PGconn *c, const char *name, unsigned retention_days,
                             uint64_t *version, char *err, size_t errlen);
/* Refused while a rule sends messages to the area (the message names the rule). */
int admin_area_remove(PGconn *c, const char *name, uint64_t *version, char *err, size_t errlen);

/* {"config_version": N, "rules": [{position, name, enabled, scope, domains, match,
 *  conditions: [{kind, value, negate}], actions: [{kind, arg}]}]} in evaluation order. */
json_t *admin_policy_list(PGconn *c, char *err, size_t errlen);
/* A rule to fill for admin_policy_add (all strings owned; free with
 * portcullis__policy_rule__free_unpacked(r, NULL)). Scope "any", match "all", enabled. */
Portcullis__PolicyRule *admin_policy_rule_new(const char *name);
void admin_policy_rule_add_domain(Portcullis__PolicyRule *r, const char *domain);
void admin_policy_rule_add_condition(Portcullis__PolicyRule *r, const char *kind,
                                     const char *value, bool negate);
/* An action; quarantine or archive without arg (NULL or "") goes to the default area (R5.1). */
void admin_policy_rule_add_action(Portcullis__PolicyRule *r, const char *kind, const char *arg);
/* position 1..n+1 (0: last); the rules from there on move down one. */
int admin_policy_add(PGconn *c, const Portcullis__PolicyRule *rule, unsigned position,
                     uint64_t *version, char *err, size_t errlen);
int admin_policy_remove(PGconn *c, const char *name, uint64_t *version, char *err,
                        size_t errlen);
/* position 1..n: the rule takes it, the rules between shift by one. */
int admin_policy_move(PGconn *c, const char *name, unsigned position, uint64_t *version,
                      char *err, size_t errlen);
int admin_policy_set_enabled(PGconn *c, const char *name, bool enabled, uint64_t *version,
                             char *err, size_t errlen);
/* Both in one transaction: position 0 keeps the place, enabled -1 keeps the state. */
int admin_policy_change(PGconn *c, const char *name, unsigned position, int enabled,
                        uint64_t *version, char *err, size_t errlen);

/* --- web reputation (R3.2) ------------------------------------------------------------------ */
#define ADMIN_WRS_ENTRIES_MAX WIRE_WRS_MAX /* entries kept and pushed to the children */
#define ADMIN_WRS_LIST_DEFAULT 20          /* entries `wrs list` shows */

struct admin_wrs_entry {
    const char *kind;                      /* "domain" or "url" */
    const char *pattern;
    unsigned level;                        /* 1..100 */
    const char *category;
};
#define ADMIN_WRS_DOMAIN_MAX 253           /* bytes of a domain (RFC 1035) */
/* Checks one entry as an import takes it (the CLI's file, the API's JSON): kind "domain"
 * or "url", level 1..100, category 1..63 of [A-Za-z0-9_-]; a domain pattern is lower-cased
 * and loses trailing dots in place. 0 ok, -1 with *why set (static text). */
int admin_wrs_entry_check(const char *kind, char *pattern, long long level,
                          const char *category, const char **why);
/* Stores entries (checked by the caller with admin_wrs_entry_check) in one transaction: merged into the set (an entry
 * already there takes the new level and category) or, with replace, instead of it. Refused
 * past ADMIN_WRS_ENTRIES_MAX in all. Makes a new configuration version; total = entries now. */
int admin_wrs_import(PGconn *c, const struct admin_wrs_entry *e, size_t n, bool replace,
                     uint64_t *version, size_t *total, char *err, size_t errlen);
/* {"count": N, "entries": [{kind, pattern, level, category}…]} (the first limit, by kind and
 * pattern). */
json_t *admin_wrs_list(PGconn *c, size_t limit, char *err, size_t errlen);
/* The entries of the parent's snapshot (ConfigSnapshot.wrs), owned by snap until
 * admin_wrs_snapshot_clear() (which admin_snapshot_clear() calls). */
int admin_wrs_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err,
                            size_t errlen);
void admin_wrs_snapshot_clear(Portcullis__ConfigSnapshot *snap);

/* --- anti-spam rules (R5.1) ------------------------------------------------------------------ */
/* Changes as for policy rules: the whole set compiled (policy_compile) before any row changes,
 * then rows, a new configuration version and a NOTIFY in one transaction; version 0 when
 * nothing needed to change. */
/* {"config_version": N, "rules": [{position, name, kind, value, score, enabled}]} in order. */
json_t *admin_spam_list(PGconn *c, char *err, size_t errlen);
/* kind: header_regex, header_missing, body_regex, ers_listed, web_reputation; value as the
 * policy condition of that kind (header_missing: a header name); score -100..100; position
 * 1..n+1 (0: last). */
int admin_spam_add(PGconn *c, const char *name, const char *kind, const char *value,
                   double score, unsigned position, uint64_t *version, char *err,
                   size_t errlen);
int admin_spam_remove(PGconn *c, const char *name, uint64_t *version, char *err, size_t errlen);
int admin_spam_set_enabled(PGconn *c, const char *name, bool enabled, uint64_t *version,
                           char *err, size_t errlen);
/* The enabled rules of the parent's snapshot (ConfigSnapshot.spam_rules), in order, owned by
 * snap until admin_spam_snapshot_clear() (which admin_snapshot_clear() calls). */
int admin_spam_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err,
                             size_t errlen);
void admin_spam_snapshot_clear(Portcullis__ConfigSnapshot *snap);

/* The parent's snapshot: adds every rule (in order), area and web-reputation entry to snap, owned by snap until
 * admin_snapshot_clear(). Read in one transaction; a version made after the settings were
 * read can show here early, never late, so the next version check sends it again whole. */
int admin_snapshot_fill(PGconn *c, Portcullis__ConfigSnapshot *snap, char *err, size_t errlen);
void admin_snapshot_clear(Portcullis__ConfigSnapshot *snap);

#endif
