/* policy: see policy.h. Compiles the parent's ordered rules and areas once per configuration
 * into a read-only form that many scan threads evaluate at once, and evaluates one message.
 *
 * Evaluation (R5.1). Rules are taken in order; a disabled rule is skipped. A rule applies when
 *  - its scope matches: "any"; "inbound": some recipient's domain is one of `domains`;
 *    "outbound": the envelope sender's domain is one of them (exact domain, case-insensitive;
 *    the null sender has no domain), and
 *  - its conditions match: "all" of them or "any" of them (a rule without conditions applies
 *    to every message in its scope); `negate` flips one condition's result.
 * Every applying rule adds its name to `matched` and its non-terminal actions to the decision:
 * archive (each area once, at most POLICY_ARCHIVES_MAX), tag_subject (the first one wins),
 * add_header, notify (in order, up to their limits). The first applying rule with a terminal
 * action (deliver, delete, quarantine) decides the fate and ends evaluation: its own
 * non-terminal actions still count, later rules are not looked at. No terminal action: deliver.
 *
 * Conditions: virus_found (glob on the virus name, empty = any virus); attachment_name (regex
 * on each part's filename); attachment_extension (comma list, case-insensitive, against the
 * last extension of the filename once trailing dots and spaces are stripped, as Windows does);
 * attachment_type (glob on each part's detected type, or its declared type when undetected);
 * attachment_size_over (some part's decoded size > N); header_regex ("Name: regex": the name
 * case-insensitive, the regex on each top-level header of that name); body_regex (on the
 * decoded text bodies, POLICY_BODY_SCAN_MAX bytes at most, ^ and $ at line ends);
 * message_size_over (bytes as received > N); sender (regex on the envelope sender, "" for the
 * null sender); recipient (regex, any recipient); scan_exception (comma list of
 * policy_exception_name()s, empty = any exception); ers_listed (the client address is on an
 * email-reputation block list with that listing name, case-insensitive; empty = any listing);
 * web_reputation (the highest rating of the message's URLs is at least the value, 1..100,
 * POLICY_WRS_LEVEL_DEFAULT when empty; a rating that was skipped is no rating: no match);
 * spam_score (the message's spam score is at least the value, a decimal, 5 when empty).
 * Sizes take a K, M or G suffix (x1024).
 *
 * Anti-spam rules (R5.1) are compiled beside the policy: each is a name, one condition of kind
 * header_regex, body_regex, ers_listed or web_reputation (same values and matchers as the
 * policy conditions, so the same limits) or header_missing (a header name: true when the
 * message has no such top-level header), and a score (-100..100). policy_eval adds up the
 * scores of the matching ones once per message; see policy_eval.c.
 *
 * Regexes are PCRE2 with PCRE2_UTF | PCRE2_MATCH_INVALID_UTF (a body that is not valid UTF-8
 * is still searched; invalid bytes match nothing) and PCRE2_CASELESS (mail is matched without
 * regard to case; write (?-i) for a case-sensitive pattern), JIT-compiled when the platform
 * allows. Every match runs under match, depth and heap limits; a match that hits one gives up,
 * counts as "no match", is counted and logged (rate-limited). Exponential backtracking is
 * stopped by those limits; polynomial backtracking is bounded by POLICY_BODY_SCAN_MAX. The
 * compiled code is shared; match data is made per evaluation, so policy_eval is thread-safe. */
#include "policy_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define POLICY_NAME_MAX 127            /* bytes of a rule or area name (decision fields: 128) */
#define POLICY_VALUE_MAX 4096          /* bytes of a condition value (regex, glob, list) */
#define POLICY_AREAS_MAX 256           /* areas in one configuration */
#define POLICY_DOMAINS_MAX 256         /* domains in one rule's scope */
#define POLICY_DOMAIN_LEN_MAX 253      /* bytes of a domain name (RFC 1035) */
#define POLICY_HEADER_NAME_MAX 76      /* bytes of a header field name */
#define POLICY_EXTS_MAX 256            /* extensions in one attachment_extension list */
#define POLICY_LISTING_MAX 63          /* bytes of an ers_listed listing name */
#define POLICY_WRS_LEVEL_DEFAULT 50    /* web_reputation with no value: rating >= 50 */
#define POLICY_WRS_LEVEL_MAX 100       /* ratings are 1..100 */
#define POLICY_RETENTION_MIN 1         /* days an area keeps messages (R5.2) */
#define POLICY_RETENTION_MAX 60
#define POLICY_MATCH_LIMIT 1000000u    /* PCRE2 backtracking steps per match (PCRE2: 10M) */
#define POLICY_DEPTH_LIMIT 100000u     /* PCRE2 nested backtracking frames per match */
#define POLICY_HEAP_LIMIT_KIB 16384u   /* PCRE2 heap for backtracking frames per match */
#define POLICY_SPAM_SCORE_MAX 100.0    /* |score| of one anti-spam rule */
#define POLICY_SPAM_THRESHOLD_MAX 100000.0 /* |threshold| of spam_score: the most rules can add */
#define POLICY_DECIMAL_LEN_MAX 16      /* characters of a score or threshold */

const char *const policy_cond_names[C__COUNT] = {
    "virus_found", "attachment_name", "attachment_extension", "attachment_type",
    "attachment_size_over", "header_regex", "body_regex", "message_size_over", "sender",
    "recipient", "scan_exception", "ers_listed", "web_reputation", "spam_score",
};

static const char *const s_act_names[A__COUNT] = {
    "deliver", "delete", "quarantine", "archive", "tag_subject", "add_header", "notify",
};

static const char *const s_exc_names[] = {
    "mime_depth", "mime_parts", "mime_size", "mime_headers", "mime_header_length",
    "mime_malformed", "av_error", "av_limits", "av_encrypted", "av_timeout", "mime_ambiguous",
};

/* --- scan exceptions ------------------------------------------------------------------- */

const char *policy_exception_name(unsigned bit)
{
    for (size_t i = 0; i < ARRAY_LEN(s_exc_names); i++)
        if (bit == 1u << i)
            return s_exc_names[i];
    return NULL;
}

int policy_exception_parse(const char *name, unsigned *bit)
{
    for (size_t i = 0; i < ARRAY_LEN(s_exc_names); i++) {
        if (strcmp(name, s_exc_names[i]) == 0) {
            *bit = 1u << i;
            return 0;
        }
    }
    return -1;
}

/* --- compiling ---------------------------------------------------------------------------- */

static const char *s_str(const char *s) { return s != NULL ? s : ""; }

/* The context of an error message: `rule "NAME": condition 2 (body_regex): `. */
struct where {
    char *err;
    size_t errlen;
    char prefix[POLICY_NAME_MAX + 96];
};

static void __attribute__((format(printf, 2, 3))) s_fail(struct where *w, const char *fmt, ...)
{
    char msg[POLICY_VALUE_MAX / 4];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(w->err, w->errlen, "%s%s", w->prefix, msg);
}

/* No control characters (tab allowed); 1..max bytes unless empty is allowed. */
static bool s_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return false;
    return true;
}

static int s_check_name(struct where *w, const char *what, const char *name)
{
    if (*name == '\0') {
        s_fail(w, "%s needs a name", what);
        return -1;
    }
    if (strlen(name) > POLICY_NAME_MAX || !s_text_ok(name, POLICY_NAME_MAX)) {
        s_fail(w, "%s name must be 1 to %d bytes without control characters", what,
               POLICY_NAME_MAX);
        return -1;
    }
    return 0;
}

static bool s_header_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > POLICY_HEADER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126 || s[i] == ':')
            return false;
    return true;
}

/* "1048576", "10K", "5M", "1G" (x1024). */
static int s_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0, mul = 1;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    switch (*p) {
    case '\0': break;
    case 'k': case 'K': mul = 1024; p++; break;
    case 'm': case 'M': mul = 1024 * 1024; p++; break;
    case 'g': case 'G': mul = 1024 * 1024 * 1024; p++; break;
    default: return -1;
    }
    if (*p != '\0' || v > UINT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

static int s_regex_compile(struct where *w, const char *pattern, uint32_t extra, pcre2_code **re)
{
    int code;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[256];

    *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                        PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_CASELESS |
                        PCRE2_NEVER_BACKSLASH_C | extra, &code, &off, NULL);
    if (*re == NULL) {
        pcre2_get_error_message(code, msg, sizeof msg);
        s_fail(w, "bad regular expression at offset %zu: %s", (size_t)off, (const char *)msg);
        return -1;
    }
    /* Without JIT (a hardened kernel may refuse executable memory) the interpreter runs. */
    (void)pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE);
    return 0;
}

/* Parses a comma list into trimmed items; each is checked by the caller. */
static char **s_split_list(const char *s, size_t *n)
{
    char **items = NULL;
    const char *p = s;

    *n = 0;
    for (;;) {
        const char *end = strchr(p, ','), *a = p, *b = end != NULL ? end : p + strlen(p);
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        items = xrealloc(items, (*n + 1) * sizeof *items);
        items[(*n)++] = xstrndup(a, (size_t)(b - a));
        if (end == NULL)
            break;
        p = end + 1;
    }
    return items;
}

static void s_free_list(char ***items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((*items)[i]);
    free(*items);
    *items = NULL;
}

static int s_cond_exts(struct where *w, struct cond *c, const char *value)
{
    c->exts = s_split_list(value, &c->nexts);
    if (c->nexts > POLICY_EXTS_MAX) {
        s_fail(w, "%zu extensions; at most %d are allowed", c->nexts, POLICY_EXTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < c->nexts; i++) {
        char *e = c->exts[i];
        if (*e == '.')
            memmove(e, e + 1, strlen(e));
        if (*e == '\0' || strlen(e) > POLICY_EXT_LEN_MAX ||
            strpbrk(e, ". /\\\t") != NULL || !s_text_ok(e, POLICY_EXT_LEN_MAX)) {
            s_fail(w, "\"%.64s\" is not a file extension: give a comma list such as "
                      "\"exe,scr,js\"", c->exts[i]);
            return -1;
        }
        for (char *q = e; *q; q++)
            *q = (char)tolower((unsigned char)*q);
    }
    return 0;
}

static int s_cond_exceptions(struct where *w, struct cond *c, const char *value)
{
    size_t n;
    char **items;
    int rc = 0;

    if (*value == '\0')
        return 0; /* any exception */
    items = s_split_list(value, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned bit = 0;
        if (policy_exception_parse(items[i], &bit) != 0) {
            s_fail(w, "unknown scan exception \"%.64s\"; use mime_depth, mime_parts, mime_size, "
                      "mime_headers, mime_header_length, mime_malformed, av_error, av_limits, "
                      "av_encrypted, av_timeout or mime_ambiguous (or nothing for any)", items[i]);
            rc = -1;
        }
        c->exc |= bit;
    }
    s_free_list(&items, n);
    return rc;
}

/* ers_listed: a listing name as ers.zones gives them (letters, digits, '_', '-'), or empty. */
static int s_cond_ers(struct where *w, struct cond *c, const char *value)
{
    size_t n = strlen(value);

    if (n == 0)
        return 0; /* any listing */
    for (const char *p = value; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            n = POLICY_LISTING_MAX + 1;
    if (n > POLICY_LISTING_MAX) {
        s_fail(w, "\"%.64s\" is not a listing name: up to %d letters, digits, '_' or '-' (as "
                  "in ers.zones), or nothing for any listing", value, POLICY_LISTING_MAX);
        return -1;
    }
    c->text = xstrdup(value);
    return 0;
}

int policy_parse_decimal(const char *s, double *out)
{
    const char *p = s;
    bool digits = false;
    char *end;

    if (strlen(s) > POLICY_DECIMAL_LEN_MAX)
        return -1;
    if (*p == '-' || *p == '+')
        p++;
    for (; isdigit((unsigned char)*p); p++)
        digits = true;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            digits = true;
    if (!digits || *p != '\0')
        return -1;
    *out = strtod(s, &end);
    return *end == '\0' ? 0 : -1;
}

/* spam_score: a threshold, or empty for POLICY_SPAM_THRESHOLD_DEFAULT. */
static int s_cond_spam(struct where *w, struct cond *c, const char *value)
{
    if (*value == '\0') {
        c->threshold = POLICY_SPAM_THRESHOLD_DEFAULT;
        return 0;
    }
    if (policy_parse_decimal(value, &c->threshold) != 0 || c->threshold < -POLICY_SPAM_THRESHOLD_MAX ||
        c->threshold > POLICY_SPAM_THRESHOLD_MAX) {
        s_fail(w, "\"%.64s\" is not a score: a decimal such as 5 or 7.5 (from %g to %g), or "
                  "nothing for %g", value, -POLICY_SPAM_THRESHOLD_MAX, POLICY_SPAM_THRESHOLD_MAX,
               POLICY_SPAM_THRESHOLD_DEFAULT);
        return -1;
    }
    return 0;
}

void policy_score_format(double score, char *buf, size_t len)
{
    /* 6 significant digits: sums of scores like 0.1 + 0.2 show as 0.3 */
    snprintf(buf, len, "%.6g", score == 0.0 ? 0.0 : score); /* no "-0" */
}

/* web_reputation: a minimum level 1..100, or empty for POLICY_WRS_LEVEL_DEFAULT. */
static int s_cond_wrs(struct where *w, struct cond *c, const char *value)
{
    unsigned long v = 0;
    const char *p = value;

    if (*value == '\0') {
        c->num = POLICY_WRS_LEVEL_DEFAULT;
        return 0;
    }
    for (; isdigit((unsigned char)*p) && v <= POLICY_WRS_LEVEL_MAX; p++)
        v = v * 10 + (unsigned long)(*p - '0');
    if (p == value || *p != '\0' || v < 1 || v > POLICY_WRS_LEVEL_MAX) {
        s_fail(w, "\"%.64s\" is not a level: a number from 1 to %d, or nothing for %d", value,
               POLICY_WRS_LEVEL_MAX, POLICY_WRS_LEVEL_DEFAULT);
        return -1;
    }
    c->num = v;
    return 0;
}

static int s_cond_header(struct where *w, struct cond *c, const char *value)
{
    const char *colon = strchr(value, ':'), *re;
    size_t nlen;

    if (colon == NULL) {
        s_fail(w, "needs \"Header-Name: regex\", e.g. \"Subject: ^\\[SPAM\\]\"");
        return -1;
    }
    nlen = (size_t)(colon - value);
    while (nlen > 0 && isspace((unsigned char)value[nlen - 1]))
        nlen--;
    if (!s_header_name_ok(value, nlen)) {
        s_fail(w, "\"%.*s\" is not a header name (printable characters, no spaces or ':')",
               (int)(nlen < 80 ? nlen : 80), value);
        return -1;
    }
    c->text = xstrndup(value, nlen);
    for (re = colon + 1; *re == ' ' || *re == '\t'; re++)
        ;
    if (*re == '\0') {
        s_fail(w, "no regular expression after \"%s:\" (use \"%s: ^\" to test that the header "
                  "is present)", c->text, c->text);
        return -1;
    }
    return s_regex_compile(w, re, 0, &c->re);
}

static int s_cond_compile(struct where *w, struct cond *c, const Portcullis__Condition *pc)
{
    const char *kind = s_str(pc->kind), *value = s_str(pc->value);
    size_t k;

    for (k = 0; k < C__COUNT && strcmp(kind, policy_cond_names[k]) != 0; k++)
        ;
    if (k == C__COUNT) {
        s_fail(w, "unknown condition; use one of virus_found, attachment_name, "
                  "attachment_extension, attachment_type, attachment_size_over, header_regex, "
                  "body_regex, message_size_over, sender, recipient, scan_exception, ers_listed, "
                  "web_reputation, spam_score");
        return -1;
    }
    c->kind = (enum cond_kind)k;
    c->negate = pc->negate;
    if (strlen(value) > POLICY_VALUE_MAX || !s_text_ok(value, POLICY_VALUE_MAX)) {
        s_fail(w, "value must be at most %d bytes without control characters", POLICY_VALUE_MAX);
        return -1;
    }
    if (*value == '\0' && c->kind != C_VIRUS && c->kind != C_EXCEPTION && c->kind != C_ERS &&
        c->kind != C_WRS && c->kind != C_SPAM) {
        s_fail(w, "needs a value");
        return -1;
    }
    switch (c->kind) {
    case C_VIRUS:
    case C_ATT_TYPE:
        c->text = *value ? xstrdup(value) : NULL;
        return 0;
    case C_ERS:
        return s_cond_ers(w, c, value);
    case C_WRS:
        return s_cond_wrs(w, c, value);
    case C_SPAM:
        return s_cond_spam(w, c, value);
    case C_ATT_NAME:
    case C_SENDER:
    case C_RCPT:
        return s_regex_compile(w, value, 0, &c->re);
    case C_BODY:
        return s_regex_compile(w, value, PCRE2_MULTILINE, &c->re);
    case C_HEADER:
        return s_cond_header(w, c, value);
    case C_ATT_EXT:
        return s_cond_exts(w, c, value);
    case C_ATT_SIZE:
    case C_MSG_SIZE:
        if (s_parse_size(value, &c->num) != 0) {
            s_fail(w, "\"%.64s\" is not a number of bytes: digits, optionally followed by K, "
                      "M or G", value);
            return -1;
        }
        return 0;
    case C_EXCEPTION:
        return s_cond_exceptions(w, c, value);
    case C__COUNT:
        break;
    }
    return -1;
}

static const Portcullis__Area *s_area_find(Portcullis__Area *const *areas, size_t nareas,
                                          const char *name)
{
    for (size_t i = 0; i < nareas; i++)
        if (strcmp(s_str(areas[i]->name), name) == 0)
            return areas[i];
    return NULL;
}

static int s_act_compile(struct where *w, struct act *a, const Portcullis__Action *pa,
                         Portcullis__Area *const *areas, size_t nareas)
{
    const char *kind = s_str(pa->kind), *arg = s_str(pa->arg), *colon;
    const Portcullis__Area *area;
    size_t k;

    for (k = 0; k < A__COUNT && strcmp(kind, s_act_names[k]) != 0; k++)
        ;
    if (k == A__COUNT) {
        s_fail(w, "unknown action; use one of deliver, delete, quarantine, archive, "
                  "tag_subject, add_header, notify");
        return -1;
    }
    a->kind = (enum act_kind)k;
    a->arg = xstrdup(arg);
    switch (a->kind) {
    case A_DELIVER:
    case A_DELETE:
        if (*arg != '\0') {
            s_fail(w, "takes no argument");
            return -1;
        }
        return 0;
    case A_QUARANTINE:
    case A_ARCHIVE:
        if (*arg == '\0') {
            s_fail(w, "needs an area, e.g. \"%s\"", a->kind == A_QUARANTINE ?
                   "Default quarantine" : "Default archive");
            return -1;
        }
        if ((area = s_area_find(areas, nareas, arg)) == NULL) {
            s_fail(w, "no area is named \"%.127s\"; add it first or use an existing %s area",
                   arg, kind);
            return -1;
        }
        if (strcmp(s_str(area->kind), kind) != 0) {
            s_fail(w, "area \"%.127s\" is %s area; %s needs %s area", arg,
                   a->kind == A_QUARANTINE ? "an archive" : "a quarantine", kind,
                   a->kind == A_QUARANTINE ? "a quarantine" : "an archive");
            return -1;
        }
        return 0;
    case A_HEADER:
        colon = strchr(arg, ':');
        if (colon == NULL || !s_header_name_ok(arg, (size_t)(colon - arg))) {
            s_fail(w, "needs \"Header-Name: value\", e.g. \"X-Portcullis-Rule: exe\"");
            return -1;
        }
        /* fall through - the whole line is also a text */
    case A_TAG:
    case A_NOTIFY:
        if (*arg == '\0' || strlen(arg) > POLICY_TEXT_MAX || !s_text_ok(arg, POLICY_TEXT_MAX)) {
            s_fail(w, "needs a text of 1 to %d bytes without control characters",
                   POLICY_TEXT_MAX);
            return -1;
        }
        return 0;
    case A__COUNT:
        break;
    }
    return -1;
}

static int s_scope_compile(struct where *w, struct rule *r, const Portcullis__PolicyRule *pr)
{
    const char *scope = s_str(pr->scope), *match = s_str(pr->match);

    if (*scope == '\0' || strcmp(scope, "any") == 0)
        r->scope = SCOPE_ANY;
    else if (strcmp(scope, "inbound") == 0)
        r->scope = SCOPE_INBOUND;
    else if (strcmp(scope, "outbound") == 0)
        r->scope = SCOPE_OUTBOUND;
    else {
        s_fail(w, "unknown scope \"%.32s\"; use any, inbound or outbound", scope);
        return -1;
    }
    if (*match == '\0' || strcmp(match, "all") == 0)
        r->match_any = false;
    else if (strcmp(match, "any") == 0)
        r->match_any = true;
    else {
        s_fail(w, "unknown match \"%.32s\"; use all or any", match);
        return -1;
    }
    if (r->scope == SCOPE_ANY && pr->n_domains > 0) {
        s_fail(w, "domains are only used with scope inbound or outbound");
        return -1;
    }
    if (r->scope != SCOPE_ANY && pr->n_domains == 0) {
        s_fail(w, "scope %s needs at least one domain", scope);
        return -1;
    }
    if (pr->n_domains > POLICY_DOMAINS_MAX) {
        s_fail(w, "%zu domains; at most %d are allowed", pr->n_domains, POLICY_DOMAINS_MAX);
        return -1;
    }
    r->domains = xcalloc(pr->n_domains, sizeof *r->domains);
    for (size_t i = 0; i < pr->n_domains; i++) {
        const char *d = s_str(pr->domains[i]);
        size_t n = strlen(d);
        bool ok = n > 0 && n <= POLICY_DOMAIN_LEN_MAX && d[0] != '.' && d[n - 1] != '.';
        for (size_t j = 0; ok && j < n; j++)
            ok = isalnum((unsigned char)d[j]) || d[j] == '-' || d[j] == '.' || d[j] == '_' ||
                 (unsigned char)d[j] >= 0x80;
        if (!ok) {
            s_fail(w, "\"%.64s\" is not a domain name (give domains such as example.com, "
                      "without '@')", d);
            return -1;
        }
        r->domains[r->ndomains++] = xstrdup(d);
    }
    return 0;
}

static int s_rule_compile(struct where *w, struct rule *r, const Portcullis__PolicyRule *pr,
                          Portcullis__Area *const *areas, size_t nareas)
{
    const char *rname = s_str(pr->name);
    size_t terminal_at = 0;
    size_t base;

    if (s_check_name(w, "the rule", rname) != 0)
        return -1;
    r->name = xstrdup(rname);
    r->enabled = pr->enabled;
    base = (size_t)snprintf(w->prefix, sizeof w->prefix, "rule \"%s\": ", rname);
    if (s_scope_compile(w, r, pr) != 0)
        return -1;
    if (pr->n_conditions > POLICY_CONDITIONS_MAX) {
        s_fail(w, "%zu conditions; at most %d are allowed", pr->n_conditions,
               POLICY_CONDITIONS_MAX);
        return -1;
    }
    if (pr->n_actions == 0 || pr->n_actions > POLICY_ACTIONS_MAX) {
        s_fail(w, "needs 1 to %d actions (it has %zu)", POLICY_ACTIONS_MAX, pr->n_actions);
        return -1;
    }
    r->conds = xcalloc(pr->n_conditions, sizeof *r->conds);
    for (size_t i = 0; i < pr->n_conditions; i++) {
        snprintf(w->prefix + base, sizeof w->prefix - base, "condition %zu (%.32s): ", i + 1,
                 s_str(pr->conditions[i]->kind));
        r->nconds++;
        if (s_cond_compile(w, &r->conds[i], pr->conditions[i]) != 0)
            return -1;
    }
    r->acts = xcalloc(pr->n_actions, sizeof *r->acts);
    for (size_t i = 0; i < pr->n_actions; i++) {
        snprintf(w->prefix + base, sizeof w->prefix - base, "action %zu (%.32s): ", i + 1,
                 s_str(pr->actions[i]->kind));
        r->nacts++;
        if (s_act_compile(w, &r->acts[i], pr->actions[i], areas, nareas) != 0)
            return -1;
        if (r->acts[i].kind == A_DELIVER || r->acts[i].kind == A_DELETE ||
            r->acts[i].kind == A_QUARANTINE) {
            if (terminal_at != 0) {
                s_fail(w, "the rule already decides the message with action %zu (%s); keep "
                          "one of deliver, delete, quarantine", terminal_at,
                       s_act_names[r->acts[terminal_at - 1].kind]);
                return -1;
            }
            terminal_at = i + 1;
        }
    }
    r->terminal = terminal_at != 0;
    return 0;
}

static int s_areas_check(struct where *w, Portcullis__Area *const *areas, size_t nareas)
{
    if (nareas > POLICY_AREAS_MAX) {
        s_fail(w, "%zu areas; at most %d are allowed", nareas, POLICY_AREAS_MAX);
        return -1;
    }
    for (size_t i = 0; i < nareas; i++) {
        const Portcullis__Area *a = areas[i];
        const char *name = s_str(a->name), *kind = s_str(a->kind);
        if (s_check_name(w, "an area", name) != 0)
            return -1;
        snprintf(w->prefix, sizeof w->prefix, "area \"%s\": ", name);
        if (strcmp(kind, "quarantine") != 0 && strcmp(kind, "archive") != 0) {
            s_fail(w, "unknown kind \"%.32s\"; use quarantine or archive", kind);
            return -1;
        }
        if (a->retention_days < POLICY_RETENTION_MIN || a->retention_days > POLICY_RETENTION_MAX) {
            s_fail(w, "retention_days %u is out of range: from %d to %d days", a->retention_days,
                   POLICY_RETENTION_MIN, POLICY_RETENTION_MAX);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s_str(areas[j]->name), name) == 0) {
                s_fail(w, "two areas have this name; area names are unique");
                return -1;
            }
        }
        w->prefix[0] = '\0';
    }
    return 0;
}

static void s_cond_free(struct cond *c)
{
    pcre2_code_free(c->re);
    free(c->text);
    s_free_list(&c->exts, c->nexts);
}

static void s_rule_free(struct rule *r)
{
    free(r->name);
    s_free_list(&r->domains, r->ndomains);
    for (size_t i = 0; i < r->nconds; i++)
        s_cond_free(&r->conds[i]);
    free(r->conds);
    for (size_t i = 0; i < r->nacts; i++)
        free(r->acts[i].arg);
    free(r->acts);
}

void policy_free(policy_t **pp)
{
    policy_t *p;

    if (pp == NULL || *pp == NULL)
        return;
    p = *pp;
    for (size_t i = 0; i < p->nrules; i++)
        s_rule_free(&p->rules[i]);
    free(p->rules);
    for (size_t i = 0; i < p->nspam; i++) {
        free(p->spam[i].name);
        s_cond_free(&p->spam[i].cond);
    }
    free(p->spam);
    pcre2_match_context_free(p->mctx);
    free(p);
    *pp = NULL;
}

/* One anti-spam rule: a name unique among them, one condition of a scoring kind, a score. */
static int s_spam_compile(struct where *w, policy_t *p, const Portcullis__SpamRule *ps)
{
    struct spam_rule *sr = &p->spam[p->nspam];
    const char *name = s_str(ps->name), *kind = s_str(ps->kind);
    Portcullis__Condition pc = PORTCULLIS__CONDITION__INIT;
    char missing[POLICY_HEADER_NAME_MAX + 8];
    bool absent = strcmp(kind, "header_missing") == 0;

    if (s_check_name(w, "the spam rule", name) != 0)
        return -1;
    snprintf(w->prefix, sizeof w->prefix, "spam rule \"%s\": ", name);
    for (size_t j = 0; j < p->nspam; j++) {
        if (strcmp(p->spam[j].name, name) == 0) {
            s_fail(w, "spam rules %zu and %zu have this name; spam rule names are unique", j + 1,
                   p->nspam + 1);
            return -1;
        }
    }
    if (strcmp(kind, "header_regex") != 0 && strcmp(kind, "body_regex") != 0 &&
        strcmp(kind, "ers_listed") != 0 && strcmp(kind, "web_reputation") != 0 && !absent) {
        s_fail(w, "unknown kind \"%.32s\"; use header_regex, header_missing, body_regex, "
                  "ers_listed or web_reputation", kind);
        return -1;
    }
    if (!isfinite(ps->score) || ps->score < -POLICY_SPAM_SCORE_MAX ||
        ps->score > POLICY_SPAM_SCORE_MAX) {
        s_fail(w, "score %g is out of range: from %g to %g", ps->score, -POLICY_SPAM_SCORE_MAX,
               POLICY_SPAM_SCORE_MAX);
        return -1;
    }
    sr->name = xstrdup(name);
    sr->score = ps->score;
    p->nspam++; /* freed with the policy from here on, whatever the condition says */
    snprintf(w->prefix, sizeof w->prefix, "spam rule \"%s\" (%s): ", name, kind);
    pc.kind = (char *)kind;
    pc.value = ps->value;
    if (absent) { /* header_missing NAME = not header_regex "NAME: ^" */
        if (!s_header_name_ok(s_str(ps->value), strlen(s_str(ps->value)))) {
            s_fail(w, "\"%.80s\" is not a header name (printable characters, no spaces or ':')",
                   s_str(ps->value));
            return -1;
        }
        snprintf(missing, sizeof missing, "%s: ^", ps->value);
        pc.kind = "header_regex";
        pc.value = missing;
        pc.negate = true;
    }
    return s_cond_compile(w, &sr->cond, &pc);
}

policy_t *policy_compile(Portcullis__PolicyRule *const *rules, size_t nrules,
                         Portcullis__Area *const *areas, size_t nareas,
                         Portcullis__SpamRule *const *spam, size_t nspam, char *err,
                         size_t errlen)
{
    struct where w = { .err = err, .errlen = errlen };
    policy_t *p;

    if (nrules > POLICY_RULES_MAX) {
        s_fail(&w, "%zu rules; at most %d are allowed", nrules, POLICY_RULES_MAX);
        return NULL;
    }
    if (nspam > POLICY_SPAM_RULES_MAX) {
        s_fail(&w, "%zu spam rules; at most %d are allowed", nspam, POLICY_SPAM_RULES_MAX);
        return NULL;
    }
    if (s_areas_check(&w, areas, nareas) != 0)
        return NULL;
    p = xcalloc(1, sizeof *p);
    atomic_init(&p->limit_hits, 0);
    if ((p->mctx = pcre2_match_context_create(NULL)) == NULL)
        abort(); /* out of memory */
    pcre2_set_match_limit(p->mctx, POLICY_MATCH_LIMIT);
    pcre2_set_depth_limit(p->mctx, POLICY_DEPTH_LIMIT);
    pcre2_set_heap_limit(p->mctx, POLICY_HEAP_LIMIT_KIB);
    p->rules = xcalloc(nrules, sizeof *p->rules);
    for (size_t i = 0; i < nrules; i++) {
        snprintf(w.prefix, sizeof w.prefix, "rule %zu: ", i + 1);
        p->nrules++;
        if (s_rule_compile(&w, &p->rules[i], rules[i], areas, nareas) != 0) {
            policy_free(&p);
            return NULL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p->rules[j].name, p->rules[i].name) == 0) {
                snprintf(w.prefix, sizeof w.prefix, "rule \"%s\": ", p->rules[i].name);
                s_fail(&w, "rules %zu and %zu have this name; rule names are unique", j + 1,
                       i + 1);
                policy_free(&p);
                return NULL;
            }
        }
    }
    p->spam = xcalloc(nspam, sizeof *p->spam);
    for (size_t i = 0; i < nspam; i++) {
        snprintf(w.prefix, sizeof w.prefix, "spam rule %zu: ", i + 1);
        if (s_spam_compile(&w, p, spam[i]) != 0) {
            policy_free(&p);
            return NULL;
        }
    }
    return p;
}
