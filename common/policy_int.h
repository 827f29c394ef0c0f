/* policy_int: the compiled form of a policy, shared by policy.c (compiling, validation) and
 * policy_eval.c (evaluation). Read-only once compiled, except the atomic limit counter. */
#ifndef PORTCULLIS_POLICY_INT_H
#define PORTCULLIS_POLICY_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>

#include "policy.h"

#define POLICY_EXT_LEN_MAX 32          /* bytes of one attachment extension */
#define POLICY_BODY_SCAN_MAX (256u * 1024) /* bytes of decoded text searched per message: bounds
                                            * the time of a regex that backtracks polynomially */

enum cond_kind {
    C_VIRUS, C_ATT_NAME, C_ATT_EXT, C_ATT_TYPE, C_ATT_SIZE, C_HEADER, C_BODY, C_MSG_SIZE,
    C_SENDER, C_RCPT, C_EXCEPTION, C_ERS, C_WRS, C_SPAM, C__COUNT
};

enum act_kind { A_DELIVER, A_DELETE, A_QUARANTINE, A_ARCHIVE, A_TAG, A_HEADER, A_NOTIFY, A__COUNT };

enum scope { SCOPE_ANY, SCOPE_INBOUND, SCOPE_OUTBOUND };

struct cond {
    enum cond_kind kind;
    bool negate;
    pcre2_code *re;          /* regex kinds */
    char *text;              /* glob (virus_found, attachment_type), header name, ERS listing
                              * name; NULL = any */
    char **exts;             /* attachment_extension: lowercase, without the dot */
    size_t nexts;
    uint64_t num;            /* size kinds; web_reputation: the minimum level */
    unsigned exc;            /* scan_exception: POLICY_EXC_* bits, 0 = any */
    double threshold;        /* spam_score: matches when the score is at least this */
};

struct act {
    enum act_kind kind;
    char *arg;
};

struct rule {
    char *name;
    bool enabled, match_any, terminal;
    enum scope scope;
    char **domains;
    size_t ndomains;
    struct cond *conds;
    size_t nconds;
    struct act *acts;
    size_t nacts;
};

/* An anti-spam rule: one condition (header_regex, body_regex, ers_listed, web_reputation)
 * and the score it adds when it matches. */
struct spam_rule {
    char *name;
    double score;
    struct cond cond;
};

struct policy {
    struct rule *rules;
    size_t nrules;
    struct spam_rule *spam;
    size_t nspam;
    pcre2_match_context *mctx;   /* limits; read-only once compiled, shared by all threads */
    atomic_ulong limit_hits;     /* matches that gave up on a limit since compile */
};

/* R8.9: true when r names every verdict of f that the policy floor guards (virus_found for a
 * virus, scan_exception covering its exceptions), not negated, so that its deliver stands. */
bool policy_rule_delivers_verdicts(const struct rule *r, const struct policy_facts *f);

extern const char *const policy_cond_names[C__COUNT]; /* "virus_found", …: for messages, logs */

#endif
