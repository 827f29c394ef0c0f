/* test_policy: policy rules compiled and evaluated (R5.1, R5.2): every condition kind matching,
 * not matching and negated; every action; scopes; match all/any; rule order; disabled rules;
 * compile refusals and their messages; a backtracking regex on a long body stays bounded; the
 * policy floor (R8.9). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

/* --- building rules from short specs --------------------------------------------------------- */

#define SPEC_ITEMS_MAX 80

/* Conditions "kind=value" ("!kind=value" negated); actions "kind=arg". */
struct rspec {
    const char *name, *scope, *domains, *match;
    const char *conds[SPEC_ITEMS_MAX];
    const char *acts[SPEC_ITEMS_MAX];
    bool disabled;
};

static char *s_dup(const char *s) { return strdup(s); }

static void s_split(const char *spec, char **kind, char **value)
{
    const char *eq = strchr(spec, '=');

    *kind = eq != NULL ? strndup(spec, (size_t)(eq - spec)) : strdup(spec);
    *value = strdup(eq != NULL ? eq + 1 : "");
}

static Portcullis__PolicyRule *s_rule(const struct rspec *rs)
{
    Portcullis__PolicyRule *r = calloc(1, sizeof *r);
    size_t n;

    portcullis__policy_rule__init(r);
    r->name = s_dup(rs->name);
    r->scope = s_dup(rs->scope != NULL ? rs->scope : "any");
    r->match = s_dup(rs->match != NULL ? rs->match : "all");
    r->enabled = !rs->disabled;
    if (rs->domains != NULL) {
        char *d = strdup(rs->domains), *save = NULL;
        for (char *t = strtok_r(d, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            r->domains = realloc(r->domains, (r->n_domains + 1) * sizeof *r->domains);
            r->domains[r->n_domains++] = strdup(t);
        }
        free(d);
    }
    for (n = 0; n < SPEC_ITEMS_MAX && rs->conds[n] != NULL; n++)
        ;
    r->n_conditions = n;
    r->conditions = calloc(n + 1, sizeof *r->conditions);
    for (size_t i = 0; i < n; i++) {
        Portcullis__Condition *c = calloc(1, sizeof *c);
        const char *spec = rs->conds[i];
        portcullis__condition__init(c);
        c->negate = spec[0] == '!';
        s_split(spec + (c->negate ? 1 : 0), &c->kind, &c->value);
        r->conditions[i] = c;
    }
    for (n = 0; n < SPEC_ITEMS_MAX && rs->acts[n] != NULL; n++)
        ;
    r->n_actions = n;
    r->actions = calloc(n + 1, sizeof *r->actions);
    for (size_t i = 0; i < n; i++) {
        Portcullis__Action *a = calloc(1, sizeof *a);
        portcullis__action__init(a);
        s_split(rs->acts[i], &a->kind, &a->arg);
        r->actions[i] = a;
    }
    return r;
}

/* Every test configuration has these areas. */
static Portcullis__Area *s_area(const char *name, const char *kind, uint32_t days)
{
    Portcullis__Area *a = calloc(1, sizeof *a);

    portcullis__area__init(a);
    a->name = strdup(name);
    a->kind = strdup(kind);
    a->retention_days = days;
    return a;
}

struct cfg {
    Portcullis__PolicyRule *rules[8];
    size_t nrules;
    Portcullis__Area *areas[4];
    size_t nareas;
};

static void s_cfg_init(struct cfg *c)
{
    memset(c, 0, sizeof *c);
    c->areas[c->nareas++] = s_area("Q", "quarantine", 15);
    c->areas[c->nareas++] = s_area("A", "archive", 15);
    c->areas[c->nareas++] = s_area("Default quarantine", "quarantine", 60);
}

static void s_cfg_free(struct cfg *c)
{
    for (size_t i = 0; i < c->nrules; i++)
        portcullis__policy_rule__free_unpacked(c->rules[i], NULL);
    for (size_t i = 0; i < c->nareas; i++)
        portcullis__area__free_unpacked(c->areas[i], NULL);
}

static policy_t *s_compile_ok(struct cfg *c)
{
    char err[1024] = "";
    policy_t *p = policy_compile(c->rules, c->nrules, c->areas, c->nareas, NULL, 0, err,
                                 sizeof err);

    if (p == NULL)
        fail_msg("compile refused: %s", err);
    return p;
}

/* --- facts ------------------------------------------------------------------------------------ */

enum facts_id {
    F_CLEAN, F_VIRUS, F_EXE, F_EXC, F_NULLSENDER, F_DECLARED, F_ERS, F_WRS, F_WRS_LOW, F__COUNT
};

static const char *const s_rcpts[] = { "bob@dest.example", "carol@Other.Example" };
static const struct policy_header s_headers[] = {
    { "Subject", "Hello world" },
    { "From", "Alice <alice@corp.example>" },
};
static const struct policy_part s_pdf = { "report.pdf", "application/pdf", "application/pdf",
                                          5000, 1 };
static const struct policy_part s_exe = { "invoice.PDF.exe. ", "application/octet-stream",
                                          "application/x-dosexec", 300000, 1 };
static const struct policy_part s_png = { NULL, "image/png", NULL, 10, 1 };
static const char *const s_texts[] = { "Hello Bob,\nthe report is attached.\n" };
static const size_t s_text_lens[] = { 35 };
static const char *const s_listings[] = { "spam", "exploit" };

static struct policy_facts s_facts(enum facts_id id)
{
    struct policy_facts f = {
        .sender = "alice@corp.example",
        .recipients = s_rcpts, .nrecipients = 2,
        .size = 1000,
        .headers = s_headers, .nheaders = 2,
        .parts = &s_pdf, .nparts = 1,
        .texts = s_texts, .text_lens = s_text_lens, .ntexts = 1,
    };
    switch (id) {
    case F_VIRUS: f.virus = "Win.Test.EICAR_HDB-1"; break;
    case F_EXE: f.parts = &s_exe; break;
    case F_EXC: f.exceptions = POLICY_EXC_MIME_DEPTH | POLICY_EXC_AV_ENCRYPTED; break;
    case F_NULLSENDER: f.sender = ""; break;
    case F_DECLARED: f.parts = &s_png; break;
    case F_ERS: f.ers_listings = s_listings; f.ners_listings = 2; break;
    case F_WRS: f.wrs_level = 80; f.wrs_category = "phishing"; break;
    case F_WRS_LOW: f.wrs_level = 10; f.wrs_category = "ads"; break;
    default: break;
    }
    return f;
}

/* --- conditions: each matching, not matching, and negated -------------------------------------- */

struct ccase {
    const char *cond;
    enum facts_id facts;
    bool match;
};

static const struct ccase s_conds[] = {
    { "virus_found=", F_VIRUS, true },
    { "virus_found=", F_CLEAN, false },
    { "virus_found=Win.Test.*", F_VIRUS, true },
    { "virus_found=win.test.eicar*", F_VIRUS, true },
    { "virus_found=*Trojan*", F_VIRUS, false },
    { "attachment_name=\\.exe", F_EXE, true },
    { "attachment_name=\\.exe", F_CLEAN, false },
    { "attachment_name=^REPORT\\.", F_CLEAN, true },
    { "attachment_name=.", F_DECLARED, false },          /* a part without a filename */
    { "attachment_extension=scr, exe", F_EXE, true },    /* trailing ". " stripped */
    { "attachment_extension=exe,scr", F_CLEAN, false },
    { "attachment_extension=.PDF", F_CLEAN, true },
    { "attachment_extension=pdf", F_EXE, false },        /* only the last extension counts */
    { "attachment_type=application/x-dosexec", F_EXE, true },
    { "attachment_type=application/*", F_CLEAN, true },
    { "attachment_type=image/*", F_CLEAN, false },
    { "attachment_type=image/*", F_DECLARED, true },     /* undetected: the declared type */
    { "attachment_size_over=100K", F_EXE, true },
    { "attachment_size_over=100K", F_CLEAN, false },
    { "attachment_size_over=5000", F_CLEAN, false },
    { "attachment_size_over=4999", F_CLEAN, true },
    { "header_regex=subject: ^hello", F_CLEAN, true },
    { "header_regex=Subject:^bye", F_CLEAN, false },
    { "header_regex=X-Missing: .", F_CLEAN, false },
    { "header_regex=From: @corp\\.example>$", F_CLEAN, true },
    { "body_regex=^the report", F_CLEAN, true },          /* ^ at a line start */
    { "body_regex=viagra", F_CLEAN, false },
    { "message_size_over=999", F_CLEAN, true },
    { "message_size_over=1000", F_CLEAN, false },
    { "message_size_over=1K", F_CLEAN, false },
    { "sender=@corp\\.example$", F_CLEAN, true },
    { "sender=@corp\\.example$", F_NULLSENDER, false },
    { "sender=^$", F_NULLSENDER, true },
    { "recipient=^bob@", F_CLEAN, true },
    { "recipient=@other\\.example$", F_CLEAN, true },    /* any recipient, caseless */
    { "recipient=^dave@", F_CLEAN, false },
    { "scan_exception=", F_EXC, true },
    { "scan_exception=", F_CLEAN, false },
    { "scan_exception=av_encrypted", F_EXC, true },
    { "scan_exception=av_timeout", F_EXC, false },
    { "scan_exception=av_timeout, mime_depth", F_EXC, true },
    { "ers_listed=", F_ERS, true },                        /* any listing */
    { "ers_listed=", F_CLEAN, false },                     /* not listed, or skipped */
    { "ers_listed=Exploit", F_ERS, true },                 /* caseless */
    { "ers_listed=policy", F_ERS, false },
    { "ers_listed=spam", F_CLEAN, false },
    { "web_reputation=70", F_WRS, true },
    { "web_reputation=80", F_WRS, true },                  /* at least the value */
    { "web_reputation=81", F_WRS, false },
    { "web_reputation=", F_WRS, true },                    /* default 50 */
    { "web_reputation=", F_WRS_LOW, false },
    { "web_reputation=10", F_WRS_LOW, true },
    { "web_reputation=1", F_CLEAN, false },                /* no rating, or skipped */
};

static void test_conditions_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_conds / sizeof s_conds[0]; i++) {
        for (int neg = 0; neg <= 1; neg++) {
            const struct ccase *cc = &s_conds[i];
            char cond[256];
            struct rspec rs = { .name = "r", .acts = { "quarantine=Q" } };
            struct cfg cfg;
            struct policy_facts f = s_facts(cc->facts);
            struct policy_decision d;
            policy_t *p;
            bool want = cc->match != (neg == 1);

            snprintf(cond, sizeof cond, "%s%s", neg ? "!" : "", cc->cond);
            rs.conds[0] = cond;
            s_cfg_init(&cfg);
            cfg.rules[cfg.nrules++] = s_rule(&rs);
            p = s_compile_ok(&cfg);
            policy_eval(p, &f, &d);
            if ((d.fate == POLICY_QUARANTINE && !d.floor) != want)
                fail_msg("case %zu: %s on facts %d: expected %s", i, cond, cc->facts,
                         want ? "match" : "no match");
            if (want) {
                assert_string_equal(d.rule, "r");
                assert_string_equal(d.quarantine_area, "Q");
                assert_string_equal(d.matched, "r");
            } else {
                /* a virus or exception nobody decided on: the floor holds it (R8.9) */
                assert_true(d.floor == (f.virus != NULL || f.exceptions != 0));
                assert_string_equal(d.rule, d.floor ? POLICY_FLOOR_RULE : "");
                assert_string_equal(d.matched, "");
            }
            policy_free(&p);
            assert_null(p);
            s_cfg_free(&cfg);
        }
    }
}

/* --- actions ----------------------------------------------------------------------------------- */

static struct policy_decision s_eval_one(const struct rspec *rs, enum facts_id fid)
{
    struct cfg cfg;
    struct policy_facts f = s_facts(fid);
    struct policy_decision d;
    policy_t *p;

    s_cfg_init(&cfg);
    cfg.rules[cfg.nrules++] = s_rule(rs);
    p = s_compile_ok(&cfg);
    policy_eval(p, &f, &d);
    policy_free(&p);
    s_cfg_free(&cfg);
    return d;
}

static void test_actions(void **state)
{
    struct policy_decision d;
    (void)state;

    d = s_eval_one(&(struct rspec){ .name = "keep", .acts = { "deliver" } }, F_CLEAN);
    assert_int_equal(d.fate, POLICY_DELIVER);
    assert_string_equal(d.rule, "keep");

    d = s_eval_one(&(struct rspec){ .name = "drop", .acts = { "delete" } }, F_CLEAN);
    assert_int_equal(d.fate, POLICY_DELETE);
    assert_string_equal(d.rule, "drop");

    d = s_eval_one(&(struct rspec){ .name = "hold", .acts = { "quarantine=Default quarantine" } },
                   F_CLEAN);
    assert_int_equal(d.fate, POLICY_QUARANTINE);
    assert_string_equal(d.quarantine_area, "Default quarantine");

    d = s_eval_one(&(struct rspec){ .name = "mark", .acts = { "archive=A", "archive=A",
                   "tag_subject=[SUSPECT]", "tag_subject=[LATER]", "add_header=X-Scanned: yes",
                   "add_header=X-Rule: mark", "notify=someone sent a report" } }, F_CLEAN);
    assert_int_equal(d.fate, POLICY_DELIVER);
    assert_string_equal(d.rule, "");                /* no terminal action: nobody decided */
    assert_string_equal(d.matched, "mark");
    assert_int_equal(d.narchives, 1);               /* each area once */
    assert_string_equal(d.archives[0], "A");
    assert_string_equal(d.subject_tag, "[SUSPECT]"); /* the first tag wins */
    assert_int_equal(d.nadd_headers, 2);
    assert_string_equal(d.add_headers[0], "X-Scanned: yes");
    assert_string_equal(d.add_headers[1], "X-Rule: mark");
    assert_int_equal(d.nnotify, 1);
    assert_string_equal(d.notify[0], "someone sent a report");
}

/* --- scope and match ------------------------------------------------------------------------------ */

struct scase {
    const char *scope, *domains;
    enum facts_id facts;
    bool applies;
};

static const struct scase s_scopes[] = {
    { "any", NULL, F_CLEAN, true },
    { "inbound", "dest.example", F_CLEAN, true },
    { "inbound", "nowhere.example,OTHER.EXAMPLE", F_CLEAN, true }, /* second recipient */
    { "inbound", "corp.example", F_CLEAN, false },       /* the sender's domain */
    { "outbound", "Corp.Example", F_CLEAN, true },
    { "outbound", "dest.example", F_CLEAN, false },
    { "outbound", "corp.example", F_NULLSENDER, false }, /* the null sender has no domain */
    { "inbound", "example", F_CLEAN, false },            /* exact domain, not a suffix */
};

static void test_scopes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_scopes / sizeof s_scopes[0]; i++) {
        const struct scase *sc = &s_scopes[i];
        struct rspec rs = { .name = "s", .scope = sc->scope, .domains = sc->domains,
                            .acts = { "delete" } };
        struct policy_decision d = s_eval_one(&rs, sc->facts);
        if ((d.fate == POLICY_DELETE) != sc->applies)
            fail_msg("scope case %zu: %s %s: expected %s", i, sc->scope,
                     sc->domains ? sc->domains : "", sc->applies ? "apply" : "not apply");
    }
}

static void test_match_all_any(void **state)
{
    struct rspec rs = { .name = "m", .conds = { "sender=corp", "recipient=^nobody@" },
                        .acts = { "delete" } };
    (void)state;

    rs.match = "all";
    assert_int_equal(s_eval_one(&rs, F_CLEAN).fate, POLICY_DELIVER);
    rs.match = "any";
    assert_int_equal(s_eval_one(&rs, F_CLEAN).fate, POLICY_DELETE);
    rs.conds[1] = "!recipient=^nobody@";             /* negate flips one condition */
    rs.match = "all";
    assert_int_equal(s_eval_one(&rs, F_CLEAN).fate, POLICY_DELETE);
    /* no conditions: every message in scope */
    assert_int_equal(s_eval_one(&(struct rspec){ .name = "all", .match = "any",
                                                 .acts = { "delete" } }, F_CLEAN).fate,
                     POLICY_DELETE);
}

/* --- order: non-terminal actions accumulate, the first terminal action decides ---------------- */

static void test_order(void **state)
{
    struct cfg cfg;
    struct policy_facts f = s_facts(F_CLEAN);
    struct policy_decision d;
    policy_t *p;
    (void)state;

    s_cfg_init(&cfg);
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "tag", .conds = { "sender=corp" },
        .acts = { "tag_subject=[1]", "archive=A", "add_header=X-One: 1" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "off", .disabled = true,
        .acts = { "delete" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "miss", .conds = { "virus_found=" },
        .acts = { "delete" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "hold", .conds = { "body_regex=report" },
        .acts = { "tag_subject=[3]", "archive=A", "notify=held", "quarantine=Q",
                  "add_header=X-Three: 3" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "late", .acts = { "delete" } });
    p = s_compile_ok(&cfg);
    policy_eval(p, &f, &d);
    assert_int_equal(d.fate, POLICY_QUARANTINE);
    assert_string_equal(d.rule, "hold");
    assert_string_equal(d.quarantine_area, "Q");
    assert_string_equal(d.matched, "tag,hold");     /* disabled and non-matching skipped */
    assert_string_equal(d.subject_tag, "[1]");
    assert_int_equal(d.narchives, 1);
    assert_int_equal(d.nadd_headers, 2);            /* the deciding rule's own count too */
    assert_string_equal(d.add_headers[1], "X-Three: 3");
    assert_int_equal(d.nnotify, 1);
    policy_free(&p);

    /* disabled, "off" no longer stands aside: enable it and it decides first */
    cfg.rules[1]->enabled = true;
    p = s_compile_ok(&cfg);
    policy_eval(p, &f, &d);
    assert_int_equal(d.fate, POLICY_DELETE);
    assert_string_equal(d.rule, "off");
    assert_string_equal(d.matched, "tag,off");
    policy_free(&p);
    s_cfg_free(&cfg);

    /* no rules: deliver */
    policy_eval(NULL, &f, &d);
    assert_int_equal(d.fate, POLICY_DELIVER);
}

/* --- compile refusals ----------------------------------------------------------------------------- */

struct rcase {
    struct rspec rule;
    const char *msg[3];   /* substrings of the error */
};

static const struct rcase s_refusals[] = {
    { { .name = "bad", .conds = { "body_regex=(abc" }, .acts = { "delete" } },
      { "rule \"bad\": condition 1 (body_regex): bad regular expression at offset 4",
        "missing closing parenthesis" } },
    { { .name = "bad", .conds = { "sender=x", "header_regex=Subject: [a" }, .acts = { "delete" } },
      { "condition 2 (header_regex): bad regular expression at offset 2",
        "missing terminating ]" } },
    { { .name = "where", .acts = { "quarantine=Nowhere" } },
      { "rule \"where\": action 1 (quarantine): no area is named \"Nowhere\"" } },
    { { .name = "kind", .acts = { "tag_subject=x", "quarantine=A" } },
      { "action 2 (quarantine): area \"A\" is an archive area; quarantine needs a quarantine" } },
    { { .name = "kind", .acts = { "archive=Q" } },
      { "area \"Q\" is a quarantine area; archive needs an archive" } },
    { { .name = "k", .conds = { "virus_foud=" }, .acts = { "delete" } },
      { "condition 1 (virus_foud): unknown condition; use one of virus_found" } },
    { { .name = "k", .acts = { "bounce" } },
      { "action 1 (bounce): unknown action; use one of deliver" } },
    { { .name = "n", .conds = { "attachment_size_over=12x" }, .acts = { "delete" } },
      { "condition 1 (attachment_size_over): \"12x\" is not a number of bytes" } },
    { { .name = "n", .conds = { "message_size_over=-1" }, .acts = { "delete" } },
      { "is not a number of bytes" } },
    { { .name = "n", .conds = { "message_size_over=99999999999999999999" }, .acts = { "delete" } },
      { "is not a number of bytes" } },
    { { .name = "e", .conds = { "body_regex=" }, .acts = { "delete" } },
      { "condition 1 (body_regex): needs a value" } },
    { { .name = "e", .conds = { "attachment_extension=exe,,scr" }, .acts = { "delete" } },
      { "is not a file extension" } },
    { { .name = "h", .conds = { "header_regex=Subject" }, .acts = { "delete" } },
      { "needs \"Header-Name: regex\"" } },
    { { .name = "h", .conds = { "header_regex=Subject:" }, .acts = { "delete" } },
      { "no regular expression after \"Subject:\"" } },
    { { .name = "x", .conds = { "scan_exception=av_bogus" }, .acts = { "delete" } },
      { "unknown scan exception \"av_bogus\"" } },
    { { .name = "x", .conds = { "ers_listed=spam list" }, .acts = { "delete" } },
      { "\"spam list\" is not a listing name" } },
    { { .name = "w", .conds = { "web_reputation=0" }, .acts = { "delete" } },
      { "condition 1 (web_reputation): \"0\" is not a level" } },
    { { .name = "w", .conds = { "web_reputation=101" }, .acts = { "delete" } },
      { "\"101\" is not a level" } },
    { { .name = "w", .conds = { "web_reputation=5x" }, .acts = { "delete" } },
      { "\"5x\" is not a level" } },
    { { .name = "w", .conds = { "web_reputation=99999999999999999999" }, .acts = { "delete" } },
      { "is not a level" } },
    { { .name = "t", .acts = { "deliver", "delete" } },
      { "action 2 (delete): the rule already decides the message with action 1 (deliver)" } },
    { { .name = "t", .acts = { "deliver=now" } }, { "action 1 (deliver): takes no argument" } },
    { { .name = "t", .acts = { "quarantine" } }, { "action 1 (quarantine): needs an area" } },
    { { .name = "t", .acts = { "add_header=no colon" } }, { "needs \"Header-Name: value\"" } },
    { { .name = "t", .acts = { "tag_subject=a\nb" } }, { "without control characters" } },
    { { .name = "t", .acts = { "notify=" } }, { "action 1 (notify): needs a text" } },
    { { .name = "none" }, { "rule \"none\": needs 1 to 32 actions" } },
    { { .name = "", .acts = { "delete" } }, { "rule 2: the rule needs a name" } },
    { { .name = "s", .scope = "inbound", .acts = { "delete" } },
      { "rule \"s\": scope inbound needs at least one domain" } },
    { { .name = "s", .domains = "a.example", .acts = { "delete" } },
      { "domains are only used with scope inbound or outbound" } },
    { { .name = "s", .scope = "sideways", .acts = { "delete" } }, { "unknown scope \"sideways\"" } },
    { { .name = "s", .scope = "outbound", .domains = "user@a.example", .acts = { "delete" } },
      { "\"user@a.example\" is not a domain name" } },
    { { .name = "s", .match = "most", .acts = { "delete" } }, { "unknown match \"most\"" } },
};

static void s_expect_refusal(struct cfg *cfg, const char *const *msgs, size_t i)
{
    char err[1024] = "";
    policy_t *p = policy_compile(cfg->rules, cfg->nrules, cfg->areas, cfg->nareas, NULL, 0, err,
                                 sizeof err);

    if (p != NULL)
        fail_msg("refusal case %zu compiled", i);
    for (size_t m = 0; m < 3 && msgs[m] != NULL; m++)
        if (strstr(err, msgs[m]) == NULL)
            fail_msg("refusal case %zu: \"%s\" lacks \"%s\"", i, err, msgs[m]);
}

static void test_compile_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_refusals / sizeof s_refusals[0]; i++) {
        struct cfg cfg;
        s_cfg_init(&cfg);
        cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "fine", .acts = { "deliver" } });
        cfg.rules[cfg.nrules++] = s_rule(&s_refusals[i].rule);
        s_expect_refusal(&cfg, s_refusals[i].msg, i);
        s_cfg_free(&cfg);
    }
}

static void test_compile_refusals_areas_and_limits(void **state)
{
    struct cfg cfg;
    const char *msg[3] = { NULL };
    Portcullis__PolicyRule **many;
    struct rspec big = { .name = "big", .acts = { "delete" } };
    char err[512];
    (void)state;

    /* areas: kind, retention 1..60 (R5.2), unique names */
    s_cfg_init(&cfg);
    cfg.areas[1]->retention_days = 61;
    msg[0] = "area \"A\": retention_days 61 is out of range: from 1 to 60";
    s_expect_refusal(&cfg, msg, 100);
    cfg.areas[1]->retention_days = 0;
    msg[0] = "retention_days 0 is out of range";
    s_expect_refusal(&cfg, msg, 101);
    cfg.areas[1]->retention_days = 1;
    free(cfg.areas[1]->kind);
    cfg.areas[1]->kind = strdup("trash");
    msg[0] = "area \"A\": unknown kind \"trash\"; use quarantine or archive";
    s_expect_refusal(&cfg, msg, 102);
    free(cfg.areas[1]->kind);
    cfg.areas[1]->kind = strdup("archive");
    cfg.areas[cfg.nareas++] = s_area("Q", "archive", 10);
    msg[0] = "area \"Q\": two areas have this name";
    s_expect_refusal(&cfg, msg, 103);
    s_cfg_free(&cfg);

    /* two rules of the same name */
    s_cfg_init(&cfg);
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "twin", .acts = { "deliver" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "twin", .acts = { "delete" } });
    msg[0] = "rule \"twin\": rules 1 and 2 have this name";
    s_expect_refusal(&cfg, msg, 104);
    s_cfg_free(&cfg);

    /* too many conditions */
    for (size_t i = 0; i < POLICY_CONDITIONS_MAX + 1; i++)
        big.conds[i] = "sender=x";
    s_cfg_init(&cfg);
    cfg.rules[cfg.nrules++] = s_rule(&big);
    msg[0] = "rule \"big\": 65 conditions; at most 64";
    s_expect_refusal(&cfg, msg, 105);

    /* too many rules */
    many = calloc(POLICY_RULES_MAX + 1, sizeof *many);
    for (size_t i = 0; i < POLICY_RULES_MAX + 1; i++)
        many[i] = cfg.rules[0];
    assert_null(policy_compile(many, POLICY_RULES_MAX + 1, cfg.areas, cfg.nareas, NULL, 0, err,
                               sizeof err));
    assert_non_null(strstr(err, "1001 rules; at most 1000 are allowed"));
    free(many);
    s_cfg_free(&cfg);
}

/* --- bounded time and thread safety ------------------------------------------------------------- */

static double s_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_backtracking_bounded(void **state)
{
    const size_t n = 200 * 1024;
    char *body = malloc(n + 2);
    size_t len = n + 1;
    const char *texts[1] = { body };
    struct cfg cfg;
    struct policy_facts f = s_facts(F_CLEAN);
    struct policy_decision d;
    policy_t *p;
    double t0;
    (void)state;

    memset(body, 'a', n);
    body[n] = '!';
    body[n + 1] = '\0';
    f.texts = texts;
    f.text_lens = &len;
    s_cfg_init(&cfg);
    /* Exponential backtracking on every start position: stopped by the match limit. */
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "nested", .conds = {
        "body_regex=(a+)+$" }, .acts = { "delete" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "words", .conds = {
        "body_regex=(\\w+\\s?)*$" }, .acts = { "delete" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "alt", .conds = {
        "body_regex=(a|aa)+$" }, .acts = { "delete" } });
    p = s_compile_ok(&cfg);
    t0 = s_now();
    policy_eval(p, &f, &d);
    /* a limit is "no match": the message is delivered, and it did not take long */
    assert_int_equal(d.fate, POLICY_DELIVER);
    assert_string_equal(d.matched, "");
    if (s_now() - t0 > 5.0)
        fail_msg("evaluation took %.1f s", s_now() - t0);
    policy_free(&p);
    s_cfg_free(&cfg);
    free(body);
}

struct worker {
    const policy_t *p;
    int bad;
};

static void *s_worker(void *arg)
{
    struct worker *w = arg;

    for (int i = 0; i < 300; i++) {
        enum facts_id id = (enum facts_id)(i % F__COUNT);
        struct policy_facts f = s_facts(id);
        struct policy_decision d;
        policy_eval(w->p, &f, &d);
        if ((id == F_VIRUS || id == F_EXC) != (d.fate == POLICY_QUARANTINE) ||
            (id == F_EXE) != (d.fate == POLICY_DELETE))
            w->bad++;
    }
    return NULL;
}

/* R8.9: the policy floor. A virus or scan exception is delivered only by a rule that names
 * that verdict with deliver; a disabled "Viruses" rule, a catch-all deliver, a negated
 * condition or a rule naming other exceptions leaves it quarantined. */
static void test_policy_floor(void **state)
{
    struct policy_decision d;
    (void)state;

    d = s_eval_one(&(struct rspec){ .name = "Viruses", .disabled = true,
                                    .conds = { "virus_found=" },
                                    .acts = { "quarantine=Q" } }, F_VIRUS);
    assert_int_equal(d.fate, POLICY_QUARANTINE);
    assert_true(d.floor);
    assert_string_equal(d.rule, POLICY_FLOOR_RULE);
    assert_string_equal(d.quarantine_area, POLICY_FLOOR_AREA);

    d = s_eval_one(&(struct rspec){ .name = "all", .acts = { "deliver" } }, F_VIRUS);
    assert_true(d.floor && d.fate == POLICY_QUARANTINE);
    d = s_eval_one(&(struct rspec){ .name = "all", .acts = { "deliver" } }, F_EXC);
    assert_true(d.floor && d.fate == POLICY_QUARANTINE);
    d = s_eval_one(&(struct rspec){ .name = "neg", .conds = { "!virus_found=Other*" },
                                    .acts = { "deliver" } }, F_VIRUS);
    assert_true(d.floor);
    d = s_eval_one(&(struct rspec){ .name = "other-exc", .conds = { "scan_exception=av_timeout" },
                                    .match = "any", .acts = { "deliver" } }, F_CLEAN);
    assert_false(d.floor); /* a clean message is not the floor's business */
    assert_int_equal(d.fate, POLICY_DELIVER);

    /* named explicitly with deliver: the administrator's choice stands */
    d = s_eval_one(&(struct rspec){ .name = "let-viruses", .conds = { "virus_found=" },
                                    .acts = { "deliver" } }, F_VIRUS);
    assert_false(d.floor);
    assert_int_equal(d.fate, POLICY_DELIVER);
    assert_string_equal(d.rule, "let-viruses");
    /* exceptions named in part: F_EXC has mime_depth and av_encrypted */
    d = s_eval_one(&(struct rspec){ .name = "part", .conds = { "scan_exception=mime_depth" },
                                    .acts = { "deliver" } }, F_EXC);
    assert_true(d.floor);
    d = s_eval_one(&(struct rspec){ .name = "both",
                                    .conds = { "scan_exception=mime_depth,av_encrypted" },
                                    .acts = { "deliver" } }, F_EXC);
    assert_false(d.floor);
    d = s_eval_one(&(struct rspec){ .name = "let-exc", .conds = { "scan_exception=" },
                                    .acts = { "deliver" } }, F_EXC);
    assert_false(d.floor);
    assert_int_equal(d.fate, POLICY_DELIVER);
    /* delete is no delivery: the floor does not overrule it */
    d = s_eval_one(&(struct rspec){ .name = "drop", .acts = { "delete" } }, F_VIRUS);
    assert_false(d.floor);
    assert_int_equal(d.fate, POLICY_DELETE);
}

static void test_threads_share_policy(void **state)
{
    struct cfg cfg;
    pthread_t th[4];
    struct worker w[4];
    policy_t *p;
    (void)state;

    s_cfg_init(&cfg);
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "Viruses",
        .conds = { "virus_found=" }, .acts = { "quarantine=Default quarantine" } });
    cfg.rules[cfg.nrules++] = s_rule(&(struct rspec){ .name = "exe", .match = "any",
        .conds = { "attachment_name=\\.exe\\W*$", "body_regex=never-here" },
        .acts = { "delete" } });
    p = s_compile_ok(&cfg);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ .p = p };
        assert_int_equal(pthread_create(&th[i], NULL, s_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    policy_free(&p);
    s_cfg_free(&cfg);
}

static void test_exception_names(void **state)
{
    static const char *const names[] = { "mime_depth", "mime_parts", "mime_size", "mime_headers",
        "mime_header_length", "mime_malformed", "av_error", "av_limits", "av_encrypted",
        "av_timeout", "mime_ambiguous" };
    unsigned bit;
    (void)state;

    for (unsigned i = 0; i < 11; i++) {
        assert_string_equal(policy_exception_name(1u << i), names[i]);
        assert_int_equal(policy_exception_parse(names[i], &bit), 0);
        assert_int_equal(bit, 1u << i);
    }
    assert_int_equal(POLICY_EXC_AV_TIMEOUT, 1u << 9);
    assert_int_equal(POLICY_EXC_LAST, 1u << 10);
    assert_null(policy_exception_name(0));
    assert_null(policy_exception_name(1u << 11));
    assert_null(policy_exception_name(3));
    assert_int_equal(policy_exception_parse("av_bogus", &bit), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conditions_table),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_match_all_any),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_compile_refusals),
        cmocka_unit_test(test_compile_refusals_areas_and_limits),
        cmocka_unit_test(test_backtracking_bounded),
        cmocka_unit_test(test_policy_floor),
        cmocka_unit_test(test_threads_share_policy),
        cmocka_unit_test(test_exception_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
