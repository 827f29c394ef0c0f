/* policy: the parent's ordered rules compiled for evaluation (R5.1). The parent compiles to
 * validate what an administrator enters (a bad regex or an unknown area is refused with a clear
 * message); the scan service compiles each configuration it receives and evaluates every
 * message's facts against it. Knows nothing of MIME or ClamAV: the caller supplies facts. */
#ifndef PORTCULLIS_POLICY_H
#define PORTCULLIS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "portcullis.pb-c.h"

#define POLICY_RULES_MAX 1000        /* rules in one configuration */
#define POLICY_CONDITIONS_MAX 64     /* conditions per rule */
#define POLICY_ACTIONS_MAX 32        /* actions per rule */
#define POLICY_ARCHIVES_MAX 8        /* archive copies one message can get */
#define POLICY_ADD_HEADERS_MAX 16
#define POLICY_NOTIFY_MAX 8
#define POLICY_TEXT_MAX 998          /* bytes of a tag, header or notification text */
#define POLICY_SPAM_RULES_MAX 1000   /* anti-spam rules in one configuration (WIRE_SPAM_RULES_MAX) */
#define POLICY_SPAM_THRESHOLD_DEFAULT 5.0 /* spam_score with no value: score >= 5 */

/* Scan exceptions (R5.1: security-setting violations). A message can have several. */
enum policy_exception {
    POLICY_EXC_MIME_DEPTH = 1u << 0,
    POLICY_EXC_MIME_PARTS = 1u << 1,
    POLICY_EXC_MIME_SIZE = 1u << 2,
    POLICY_EXC_MIME_HEADERS = 1u << 3,
    POLICY_EXC_MIME_HEADER_LENGTH = 1u << 4,
    POLICY_EXC_MIME_MALFORMED = 1u << 5,
    POLICY_EXC_AV_ERROR = 1u << 6,
    POLICY_EXC_AV_LIMITS = 1u << 7,
    POLICY_EXC_AV_ENCRYPTED = 1u << 8,
    POLICY_EXC_AV_TIMEOUT = 1u << 9,
    POLICY_EXC_MIME_AMBIGUOUS = 1u << 10, /* a structure parsers may read differently (R8.5) */
};
#define POLICY_EXC_LAST POLICY_EXC_MIME_AMBIGUOUS /* the highest bit, for loops over them */
#define POLICY_EXC_AV_ALL (POLICY_EXC_AV_ERROR | POLICY_EXC_AV_LIMITS | POLICY_EXC_AV_ENCRYPTED | \
                           POLICY_EXC_AV_TIMEOUT)
/* "mime_depth", "av_limits", …: the names used in conditions, logs and verdicts. */
const char *policy_exception_name(unsigned bit);
int policy_exception_parse(const char *name, unsigned *bit); /* 0 ok, -1 unknown */

struct policy_part {
    const char *filename;       /* NULL if none */
    const char *declared_type;  /* Content-Type as declared, lowercase "type/subtype" */
    const char *detected_type;  /* from the content (magic), lowercase; NULL if unknown */
    uint64_t size;              /* decoded bytes */
    unsigned depth;
};

struct policy_header {
    const char *name;           /* as in the message */
    const char *value;          /* unfolded, decoded to UTF-8 where RFC 2047 applies */
};

/* Everything rules may look at, about one message. Borrowed by policy_eval. */
struct policy_facts {
    const char *sender;                 /* envelope, "" for the null sender */
    const char *const *recipients;
    size_t nrecipients;
    uint64_t size;                      /* message bytes as received */
    const struct policy_header *headers; /* top-level headers */
    size_t nheaders;
    const struct policy_part *parts;
    size_t nparts;
    const char *const *texts;           /* decoded text/plain and text/html bodies */
    const size_t *text_lens;
    size_t ntexts;
    const char *virus;                  /* name of the first virus found; NULL if none */
    unsigned exceptions;                /* POLICY_EXC_* bits */
    const char *const *ers_listings;    /* email reputation: listing names the client address
                                         * has (e.g. "spam"); none when not listed or skipped */
    size_t ners_listings;
    unsigned wrs_level;                 /* web reputation: highest rating of the message's
                                         * URLs, 1..100; 0 when none is rated or skipped */
    const char *wrs_category;           /* the category of that rating; NULL if none */
    bool spam_enabled;                  /* spam.enabled: score the message with the spam rules */
};

enum policy_fate { POLICY_DELIVER, POLICY_DELETE, POLICY_QUARANTINE };

/* R8.9, the policy floor: a message with a virus or a scan exception is never delivered as it
 * is unless the rule that decided "deliver" names that verdict (virus_found, scan_exception)
 * itself; otherwise it is quarantined here, whatever rules were disabled or reordered. */
#define POLICY_FLOOR_AREA "Default quarantine"
#define POLICY_FLOOR_RULE "policy floor (R8.9)"

struct policy_decision {
    enum policy_fate fate;
    char quarantine_area[128];          /* fate QUARANTINE */
    char rule[128];                     /* name of the rule that decided the fate ("" none) */
    bool floor;                         /* the policy floor quarantined it (rule is
                                         * POLICY_FLOOR_RULE) */
    size_t narchives;
    char archives[POLICY_ARCHIVES_MAX][128];
    char subject_tag[POLICY_TEXT_MAX + 1]; /* "" none; prepended to Subject */
    size_t nadd_headers;
    char add_headers[POLICY_ADD_HEADERS_MAX][POLICY_TEXT_MAX + 1]; /* "Name: value" */
    size_t nnotify;
    char notify[POLICY_NOTIFY_MAX][POLICY_TEXT_MAX + 1];
    char matched[512];                  /* names of every rule that matched, comma-separated */
    bool spam_scored;                   /* spam_enabled and there are spam rules */
    double spam_score;                  /* sum of the matching spam rules' scores */
    char spam_rules[512];               /* their names, comma-separated ("…" when cut) */
};

typedef struct policy policy_t;

/* Compiles rules, areas and anti-spam rules as they travel in a ConfigSnapshot. NULL with err
 * naming the rule (or spam rule), the condition or action, and what is wrong (bad regex with
 * its offset, unknown area, area of the wrong kind, unknown condition or action kind, …). */
policy_t *policy_compile(Portcullis__PolicyRule *const *rules, size_t nrules,
                         Portcullis__Area *const *areas, size_t nareas,
                         Portcullis__SpamRule *const *spam, size_t nspam, char *err,
                         size_t errlen);
/* "6.5", "-1", "12.25": a score as shown in verdicts and logs. */
void policy_score_format(double score, char *buf, size_t len);
void policy_free(policy_t **pp);
/* Thread-safe for concurrent calls on the same policy (scan threads share one). */
void policy_eval(const policy_t *p, const struct policy_facts *facts,
                 struct policy_decision *out);

/* A decimal such as "5", "-1.5", "0.25" (no exponent, no locale, at most 16 characters): a
 * score or threshold. 0 with *out set, -1. */
int policy_parse_decimal(const char *s, double *out);

#endif
