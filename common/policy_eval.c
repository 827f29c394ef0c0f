/* policy_eval: one message's facts against a compiled policy (the semantics are described at
 * the top of policy.c). Called from many scan threads at once on the same policy: everything
 * written during an evaluation is its own, except the atomic count of regex limit hits.
 *
 * Spam score (R5.1): with facts->spam_enabled and at least one anti-spam rule, every rule's
 * condition is tested once, before the policy rules, and the scores of those that match are
 * added up (a rule that matches adds its score once, however often its pattern occurs). The
 * matchers are the policy's own, so an ers_listed or web_reputation rule whose look-up was
 * skipped adds nothing (R3.1, R3.2) and a regex that hits a limit counts as no match. The sum
 * is what the spam_score condition compares with its threshold; without a score (spam off or
 * no spam rules) spam_score never matches. */
#include "policy_int.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

static const char *s_str(const char *s) { return s != NULL ? s : ""; }

struct eval {
    policy_t *p;                   /* limit_hits is the only thing written */
    const struct policy_facts *f;
    const char *what, *name;       /* "policy rule" or "spam rule", and its name: for logs */
    size_t cond_index;
    pcre2_match_data *md;          /* this evaluation's own: made on first use */
    bool scored;                   /* the spam score below is known */
    double score;
};

static void s_limit_hit(struct eval *e, const struct cond *c, int rc)
{
    unsigned long n = atomic_fetch_add(&e->p->limit_hits, 1) + 1;
    PCRE2_UCHAR msg[128];

    /* Rate-limited: the 1st, 2nd, 4th, 8th, … time for this configuration. */
    if ((n & (n - 1)) != 0)
        return;
    pcre2_get_error_message(rc, msg, sizeof msg);
    log_warn("%s=\"%s\" condition=%zu (%s) regex gave up: %s; counted as no match "
             "limit_hits=%lu", e->what, e->name, e->cond_index + 1, policy_cond_names[c->kind],
             (const char *)msg, n);
}

static bool s_re_match(struct eval *e, const struct cond *c, const char *s, size_t len)
{
    int rc;

    if (s == NULL)
        s = "";
    if (e->md == NULL && (e->md = pcre2_match_data_create(1, NULL)) == NULL)
        abort(); /* out of memory */
    rc = pcre2_match(c->re, (PCRE2_SPTR)s, len, 0, 0, e->md, e->p->mctx);
    /* The JIT's 32 KiB stack is small for long subjects; the interpreter's frames are bounded
     * by the heap and depth limits instead. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(c->re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_JIT, e->md, e->p->mctx);
    if (rc >= 0)
        return true;
    if (rc != PCRE2_ERROR_NOMATCH)
        s_limit_hit(e, c, rc);
    return false;
}

/* The last extension of a filename, as Windows sees it: trailing dots and spaces do not
 * count ("a.exe. " is an .exe). 0 and ext filled, -1 if there is none. */
static int s_extension(const char *name, char *ext, size_t extlen)
{
    size_t n = strlen(name);
    const char *dot;

    while (n > 0 && (name[n - 1] == '.' || name[n - 1] == ' '))
        n--;
    for (dot = name + n; dot > name && dot[-1] != '.' && dot[-1] != '/' && dot[-1] != '\\'; dot--)
        ;
    if (dot == name || dot[-1] != '.' || (size_t)(name + n - dot) >= extlen || dot == name + n)
        return -1;
    memcpy(ext, dot, (size_t)(name + n - dot));
    ext[name + n - dot] = '\0';
    return 0;
}

static bool s_ext_match(const struct cond *c, const char *filename)
{
    char ext[POLICY_EXT_LEN_MAX + 1];

    if (filename == NULL || s_extension(filename, ext, sizeof ext) != 0)
        return false;
    for (size_t i = 0; i < c->nexts; i++)
        if (strcasecmp(ext, c->exts[i]) == 0)
            return true;
    return false;
}

static bool s_parts_match(struct eval *e, const struct cond *c)
{
    const struct policy_facts *f = e->f;

    for (size_t i = 0; i < f->nparts; i++) {
        const struct policy_part *pt = &f->parts[i];
        const char *type = pt->detected_type != NULL ? pt->detected_type : pt->declared_type;
        bool hit = false;
        switch (c->kind) {
        case C_ATT_NAME:
            hit = pt->filename != NULL && s_re_match(e, c, pt->filename, strlen(pt->filename));
            break;
        case C_ATT_EXT:
            hit = s_ext_match(c, pt->filename);
            break;
        case C_ATT_TYPE:
            hit = type != NULL && fnmatch(c->text != NULL ? c->text : "*", type,
                                          FNM_CASEFOLD) == 0;
            break;
        case C_ATT_SIZE:
            hit = pt->size > c->num;
            break;
        default:
            break;
        }
        if (hit)
            return true;
    }
    return false;
}

static bool s_body_match(struct eval *e, const struct cond *c)
{
    const struct policy_facts *f = e->f;
    size_t budget = POLICY_BODY_SCAN_MAX;

    for (size_t i = 0; i < f->ntexts && budget > 0; i++) {
        const char *t = f->texts[i];
        size_t n;
        if (t == NULL)
            continue;
        n = f->text_lens != NULL ? f->text_lens[i] : strlen(t);
        if (n > budget)
            n = budget;
        budget -= n;
        if (s_re_match(e, c, t, n))
            return true;
    }
    return false;
}

static bool s_cond_true(struct eval *e, const struct cond *c)
{
    const struct policy_facts *f = e->f;

    switch (c->kind) {
    case C_VIRUS:
        return f->virus != NULL &&
               (c->text == NULL || fnmatch(c->text, f->virus, FNM_CASEFOLD) == 0);
    case C_ATT_NAME:
    case C_ATT_EXT:
    case C_ATT_TYPE:
    case C_ATT_SIZE:
        return s_parts_match(e, c);
    case C_HEADER:
        for (size_t i = 0; i < f->nheaders; i++) {
            const struct policy_header *h = &f->headers[i];
            if (h->name != NULL && strcasecmp(h->name, c->text) == 0 &&
                s_re_match(e, c, h->value, h->value != NULL ? strlen(h->value) : 0))
                return true;
        }
        return false;
    case C_BODY:
        return s_body_match(e, c);
    case C_MSG_SIZE:
        return f->size > c->num;
    case C_SENDER:
        return s_re_match(e, c, s_str(f->sender), strlen(s_str(f->sender)));
    case C_RCPT:
        for (size_t i = 0; i < f->nrecipients; i++)
            if (s_re_match(e, c, s_str(f->recipients[i]), strlen(s_str(f->recipients[i]))))
                return true;
        return false;
    case C_EXCEPTION:
        return c->exc == 0 ? f->exceptions != 0 : (f->exceptions & c->exc) != 0;
    case C_ERS:
        for (size_t i = 0; i < f->ners_listings; i++)
            if (c->text == NULL || strcasecmp(c->text, s_str(f->ers_listings[i])) == 0)
                return true;
        return false;
    case C_WRS:
        return f->wrs_level > 0 && f->wrs_level >= c->num;
    case C_SPAM:
        return e->scored && e->score >= c->threshold;
    case C__COUNT:
        break;
    }
    return false;
}

static bool s_domain_in(const struct rule *r, const char *addr)
{
    const char *at = addr != NULL ? strrchr(addr, '@') : NULL;

    if (at == NULL || at[1] == '\0')
        return false;
    for (size_t i = 0; i < r->ndomains; i++)
        if (strcasecmp(at + 1, r->domains[i]) == 0)
            return true;
    return false;
}

static bool s_scope_match(const struct rule *r, const struct policy_facts *f)
{
    switch (r->scope) {
    case SCOPE_ANY:
        return true;
    case SCOPE_INBOUND:
        for (size_t i = 0; i < f->nrecipients; i++)
            if (s_domain_in(r, f->recipients[i]))
                return true;
        return false;
    case SCOPE_OUTBOUND:
        return s_domain_in(r, f->sender);
    }
    return false;
}

static bool s_rule_applies(struct eval *e, const struct rule *r)
{
    if (!s_scope_match(r, e->f))
        return false;
    if (r->nconds == 0)
        return true;
    e->what = "policy rule";
    e->name = r->name;
    for (size_t i = 0; i < r->nconds; i++) {
        bool t;
        e->cond_index = i;
        t = s_cond_true(e, &r->conds[i]) != r->conds[i].negate;
        if (t && r->match_any)
            return true;
        if (!t && !r->match_any)
            return false;
    }
    return !r->match_any;
}

static void s_matched_add(struct policy_decision *out, const char *name)
{
    size_t used = strlen(out->matched), need = strlen(name) + (used > 0 ? 1 : 0);

    if (used + need + 1 <= sizeof out->matched)
        snprintf(out->matched + used, sizeof out->matched - used, "%s%s", used > 0 ? "," : "",
                 name);
}

static void s_act_apply(const struct rule *r, const struct act *a, struct policy_decision *out)
{
    switch (a->kind) {
    case A_QUARANTINE:
        strlcpy_p(out->quarantine_area, a->arg, sizeof out->quarantine_area);
        /* fall through */
    case A_DELIVER:
    case A_DELETE:
        out->fate = a->kind == A_DELIVER ? POLICY_DELIVER :
                    a->kind == A_DELETE ? POLICY_DELETE : POLICY_QUARANTINE;
        strlcpy_p(out->rule, r->name, sizeof out->rule);
        break;
    case A_ARCHIVE:
        for (size_t i = 0; i < out->narchives; i++)
            if (strcmp(out->archives[i], a->arg) == 0)
                return;
        if (out->narchives < POLICY_ARCHIVES_MAX)
            strlcpy_p(out->archives[out->narchives++], a->arg, sizeof out->archives[0]);
        break;
    case A_TAG:
        if (out->subject_tag[0] == '\0')
            strlcpy_p(out->subject_tag, a->arg, sizeof out->subject_tag);
        break;
    case A_HEADER:
        if (out->nadd_headers < POLICY_ADD_HEADERS_MAX)
            strlcpy_p(out->add_headers[out->nadd_headers++], a->arg, sizeof out->add_headers[0]);
        break;
    case A_NOTIFY:
        if (out->nnotify < POLICY_NOTIFY_MAX)
            strlcpy_p(out->notify[out->nnotify++], a->arg, sizeof out->notify[0]);
        break;
    case A__COUNT:
        break;
    }
}

/* The spam score and the names of the rules that make it (R5.1). */
static void s_spam_score(struct eval *e, struct policy_decision *out)
{
    const policy_t *p = e->p;
    size_t used = 0;
    bool cut = false;

    e->what = "spam rule";
    e->cond_index = 0;
    for (size_t i = 0; i < p->nspam; i++) {
        const struct spam_rule *sr = &p->spam[i];
        e->name = sr->name;
        if (s_cond_true(e, &sr->cond) == sr->cond.negate)
            continue;
        e->score += sr->score;
        /* names past the field's end are left out, marked once with "…" (4 bytes kept) */
        if (!cut && used + strlen(sr->name) + 2 + 4 < sizeof out->spam_rules) {
            used += (size_t)snprintf(out->spam_rules + used, sizeof out->spam_rules - used,
                                     "%s%s", used > 0 ? "," : "", sr->name);
        } else if (!cut) {
            cut = true;
            snprintf(out->spam_rules + used, sizeof out->spam_rules - used, ",…");
        }
    }
    e->scored = true;
    out->spam_scored = true;
    out->spam_score = e->score;
}

void policy_eval(const policy_t *p, const struct policy_facts *facts,
                 struct policy_decision *out)
{
    /* The policy was allocated writable; only the atomic counter is written through this. */
    struct eval e = { .p = (policy_t *)p, .f = facts };
    const struct rule *decider = NULL; /* the last rule that set the fate */

    memset(out, 0, sizeof *out);
    out->fate = POLICY_DELIVER;
    if (p == NULL)
        return;
    if (facts->spam_enabled && p->nspam > 0)
        s_spam_score(&e, out);
    for (size_t i = 0; i < p->nrules; i++) {
        const struct rule *r = &p->rules[i];
        if (!r->enabled || !s_rule_applies(&e, r))
            continue;
        s_matched_add(out, r->name);
        for (size_t j = 0; j < r->nacts; j++) {
            s_act_apply(r, &r->acts[j], out);
            if (r->acts[j].kind == A_DELIVER || r->acts[j].kind == A_DELETE ||
                r->acts[j].kind == A_QUARANTINE)
                decider = r;
        }
        if (r->terminal)
            break;
    }
    pcre2_match_data_free(e.md);
    if (out->fate == POLICY_DELIVER && (facts->virus != NULL || facts->exceptions != 0) &&
        (decider == NULL || !policy_rule_delivers_verdicts(decider, facts))) {
        out->fate = POLICY_QUARANTINE;
        out->floor = true;
        strlcpy_p(out->quarantine_area, POLICY_FLOOR_AREA, sizeof out->quarantine_area);
        strlcpy_p(out->rule, POLICY_FLOOR_RULE, sizeof out->rule);
    }
}

bool policy_rule_delivers_verdicts(const struct rule *r, const struct policy_facts *f)
{
    bool virus_named = f->virus == NULL, exc_named = f->exceptions == 0;

    for (size_t i = 0; i < r->nconds; i++) {
        const struct cond *c = &r->conds[i];
        if (c->negate)
            continue;
        if (c->kind == C_VIRUS)
            virus_named = true;
        else if (c->kind == C_EXCEPTION && (c->exc == 0 || (f->exceptions & ~c->exc) == 0))
            exc_named = true;
    }
    return virus_named && exc_named;
}
