/* test_spam: the spam score (R5.1) compiled and evaluated with the policy: each scoring kind
 * matching and not, the sum and the rule names, skipped reputation look-ups adding nothing
 * (R3.1, R3.2), spam.enabled off, the spam_score condition and its threshold, and compile
 * refusals naming the spam rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define SPAM_TEST_RULES_MAX 8

struct srule {
    const char *name, *kind, *value;
    double score;
};

struct set {
    Portcullis__SpamRule sr[SPAM_TEST_RULES_MAX];
    Portcullis__SpamRule *sp[SPAM_TEST_RULES_MAX];
    size_t n;
    Portcullis__Condition cond;
    Portcullis__Condition *condp;
    Portcullis__Action act;
    Portcullis__Action *actp;
    Portcullis__PolicyRule rule;
    Portcullis__PolicyRule *rulep;
    Portcullis__Area area;
    Portcullis__Area *areap;
};

/* The spam rules given, and the policy rule "Spam": spam_score=threshold → quarantine. */
static void s_set(struct set *s, const struct srule *rules, size_t n, const char *threshold)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        portcullis__spam_rule__init(&s->sr[i]);
        s->sr[i].name = (char *)rules[i].name;
        s->sr[i].kind = (char *)rules[i].kind;
        s->sr[i].value = (char *)rules[i].value;
        s->sr[i].score = rules[i].score;
        s->sp[i] = &s->sr[i];
    }
    s->n = n;
    portcullis__condition__init(&s->cond);
    s->cond.kind = "spam_score";
    s->cond.value = (char *)threshold;
    s->condp = &s->cond;
    portcullis__action__init(&s->act);
    s->act.kind = "quarantine";
    s->act.arg = "Default quarantine";
    s->actp = &s->act;
    portcullis__policy_rule__init(&s->rule);
    s->rule.name = "Spam";
    s->rule.scope = "any";
    s->rule.match = "all";
    s->rule.enabled = true;
    s->rule.n_conditions = 1;
    s->rule.conditions = &s->condp;
    s->rule.n_actions = 1;
    s->rule.actions = &s->actp;
    s->rulep = &s->rule;
    portcullis__area__init(&s->area);
    s->area.name = "Default quarantine";
    s->area.kind = "quarantine";
    s->area.retention_days = 15;
    s->areap = &s->area;
}

static policy_t *s_compile(struct set *s, char *err, size_t errlen)
{
    return policy_compile(&s->rulep, 1, &s->areap, 1, s->sp, s->n, err, errlen);
}

static policy_t *s_compile_ok(struct set *s)
{
    char err[1024] = "";
    policy_t *p = s_compile(s, err, sizeof err);

    if (p == NULL)
        fail_msg("compile refused: %s", err);
    return p;
}

/* The default rule set of parent/db/sql/007_spam.sql. */
static const struct srule s_defaults[] = {
    { "caps_subject", "header_regex", "Subject: (?-i)^[^a-z]*[A-Z]{4}[^a-z]*$", 2.5 },
    { "spam_phrases", "body_regex",
      "\\b(viagra|cialis|you have (been selected|won)|lottery winner|100% free|act now|"
      "risk[- ]free|no credit check|click here to (claim|unsubscribe)|limited time offer)\\b", 3.0 },
    { "money_phrases", "body_regex",
      "\\b(million (us )?(dollars|usd|euros?)|wire transfer fee|western union|"
      "next of kin|beneficiary of)\\b", 2.0 },
    { "missing_date", "header_missing", "Date", 1.5 },
    { "missing_message_id", "header_missing", "Message-ID", 1.5 },
    { "ers_spam", "ers_listed", "spam", 5.0 },
    { "bad_urls", "web_reputation", "70", 4.0 },
};
#define DEFAULTS_N (sizeof s_defaults / sizeof s_defaults[0])

static const struct policy_header s_ham_headers[] = {
    { "Subject", "Minutes of Tuesday's meeting" },
    { "Date", "Tue, 24 Nov 2026 10:00:00 +0000" },
    { "Message-ID", "<a1@corp.example>" },
};
static const struct policy_header s_spam_headers[] = {
    { "Subject", "YOU HAVE WON!!! CLAIM NOW" },
};
static const char *const s_ham_text[] = { "Hello Bob,\nthe minutes are attached.\n" };
static const char *const s_spam_text[] = { "Dear friend,\nyou have won a prize. Act now!\n" };
static const char *const s_listings[] = { "spam" };
static const char *const s_other_listing[] = { "exploit" };

static struct policy_facts s_ham(void)
{
    return (struct policy_facts){ .sender = "alice@corp.example", .size = 100,
                                  .headers = s_ham_headers, .nheaders = 3,
                                  .texts = s_ham_text, .ntexts = 1, .spam_enabled = true };
}

static struct policy_facts s_spammy(void)
{
    return (struct policy_facts){ .sender = "x@spam.example", .size = 100,
                                  .headers = s_spam_headers, .nheaders = 1,
                                  .texts = s_spam_text, .ntexts = 1, .spam_enabled = true };
}

static void test_default_rules_score(void **state)
{
    struct set s;
    struct policy_decision d;
    struct policy_facts f;
    policy_t *p;
    (void)state;

    s_set(&s, s_defaults, DEFAULTS_N, "5");
    p = s_compile_ok(&s);

    /* R5.1: a normal message scores 0 and is delivered, with the score known */
    f = s_ham();
    policy_eval(p, &f, &d);
    assert_true(d.spam_scored);
    assert_true(d.spam_score == 0.0);
    assert_string_equal(d.spam_rules, "");
    assert_int_equal(d.fate, POLICY_DELIVER);

    /* capitals, a phrase, no Date, no Message-ID: 2.5 + 3 + 1.5 + 1.5 */
    f = s_spammy();
    policy_eval(p, &f, &d);
    assert_true(fabs(d.spam_score - 8.5) < 1e-9);
    assert_string_equal(d.spam_rules, "caps_subject,spam_phrases,missing_date,missing_message_id");
    assert_int_equal(d.fate, POLICY_QUARANTINE);
    assert_string_equal(d.rule, "Spam");
    assert_string_equal(d.quarantine_area, "Default quarantine");

    /* R3.1: a listing named "spam" alone reaches the threshold; another listing adds nothing */
    f = s_ham();
    f.ers_listings = s_listings;
    f.ners_listings = 1;
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == 5.0);
    assert_string_equal(d.spam_rules, "ers_spam");
    assert_int_equal(d.fate, POLICY_QUARANTINE);
    f.ers_listings = s_other_listing;
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == 0.0);
    assert_int_equal(d.fate, POLICY_DELIVER);

    /* R3.2: a URL rated 70 or worse adds 4 (below the threshold alone); 69 adds nothing */
    f = s_ham();
    f.wrs_level = 70;
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == 4.0);
    assert_string_equal(d.spam_rules, "bad_urls");
    assert_int_equal(d.fate, POLICY_DELIVER);
    f.wrs_level = 69;
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == 0.0);

    /* skipped look-ups (no listings, no rating) add nothing (R3.1, R3.2) */
    f = s_ham();
    f.ers_listings = NULL;
    f.ners_listings = 0;
    f.wrs_level = 0;
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == 0.0);
    policy_free(&p);
}

static void test_disabled_and_threshold(void **state)
{
    static const struct srule rules[] = {
        { "a", "body_regex", "prize", 2.25 },
        { "b", "header_regex", "Subject: won", 4.5 },
        { "minus", "header_regex", "From: @corp\\.example", -10 },
    };
    static const struct policy_header from_corp[] = {
        { "Subject", "YOU HAVE WON" }, { "From", "boss@corp.example" } };
    struct set s;
    struct policy_decision d;
    struct policy_facts f = s_spammy();
    policy_t *p;
    char buf[32];
    (void)state;

    s_set(&s, rules, 3, "6.75");
    p = s_compile_ok(&s);
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == 6.75);            /* at the threshold: matches */
    assert_int_equal(d.fate, POLICY_QUARANTINE);
    policy_score_format(d.spam_score, buf, sizeof buf);
    assert_string_equal(buf, "6.75");

    f.headers = from_corp; /* a negative score lowers it */
    f.nheaders = 2;
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == -3.25);
    assert_string_equal(d.spam_rules, "a,b,minus");
    assert_int_equal(d.fate, POLICY_DELIVER);

    /* spam.enabled off: no score, and spam_score never matches */
    f = s_spammy();
    f.spam_enabled = false;
    policy_eval(p, &f, &d);
    assert_false(d.spam_scored);
    assert_int_equal(d.fate, POLICY_DELIVER);
    policy_free(&p);

    /* just under the threshold: delivered; empty threshold = 5 */
    s_set(&s, rules, 2, "6.76");
    p = s_compile_ok(&s);
    f = s_spammy();
    policy_eval(p, &f, &d);
    assert_int_equal(d.fate, POLICY_DELIVER);
    policy_free(&p);
    s_set(&s, rules, 2, "");
    p = s_compile_ok(&s);
    policy_eval(p, &f, &d);
    assert_int_equal(d.fate, POLICY_QUARANTINE);
    policy_free(&p);

    /* no spam rules: no score, spam_score does not match even at threshold 0 */
    s_set(&s, rules, 0, "0");
    p = s_compile_ok(&s);
    policy_eval(p, &f, &d);
    assert_false(d.spam_scored);
    assert_int_equal(d.fate, POLICY_DELIVER);
    policy_free(&p);

    policy_score_format(0.1 + 0.2, buf, sizeof buf);
    assert_string_equal(buf, "0.3");
    policy_score_format(-0.0, buf, sizeof buf);
    assert_string_equal(buf, "0");
}

static void test_rule_names_cut(void **state)
{
    static char names[SPAM_TEST_RULES_MAX][128];
    struct srule rules[SPAM_TEST_RULES_MAX];
    struct set s;
    struct policy_decision d;
    struct policy_facts f = s_spammy();
    policy_t *p;
    (void)state;

    for (size_t i = 0; i < SPAM_TEST_RULES_MAX; i++) {
        memset(names[i], 'a' + (int)i, 120);
        names[i][120] = '\0';
        rules[i] = (struct srule){ names[i], "body_regex", "prize", 1 };
    }
    s_set(&s, rules, SPAM_TEST_RULES_MAX, "5");
    p = s_compile_ok(&s);
    policy_eval(p, &f, &d);
    assert_true(d.spam_score == SPAM_TEST_RULES_MAX); /* every rule counts… */
    assert_true(strlen(d.spam_rules) < sizeof d.spam_rules);
    assert_non_null(strstr(d.spam_rules, ",…"));      /* …the names that do not fit are cut */
    assert_null(strstr(d.spam_rules, names[SPAM_TEST_RULES_MAX - 1]));
    policy_free(&p);
}

struct refusal {
    struct srule rule;
    const char *threshold;
    const char *msg;
};

static const struct refusal s_refusals[] = {
    { { "bad_re", "body_regex", "(unclosed", 1 }, "5",
      "spam rule \"bad_re\" (body_regex): bad regular expression at offset 9: missing closing "
      "parenthesis" },
    { { "bad_hdr", "header_regex", "no colon", 1 }, "5",
      "spam rule \"bad_hdr\" (header_regex): needs \"Header-Name: regex\"" },
    { { "odd", "sender", "x", 1 }, "5",
      "spam rule \"odd\": unknown kind \"sender\"; use header_regex, header_missing" },
    { { "big", "body_regex", "x", 100.5 }, "5",
      "spam rule \"big\": score 100.5 is out of range: from -100 to 100" },
    { { "nan", "body_regex", "x", NAN }, "5", "spam rule \"nan\": score nan is out of range" },
    { { "", "body_regex", "x", 1 }, "5", "spam rule 2: the spam rule needs a name" },
    { { "twin", "body_regex", "x", 1 }, "5", "spam rule \"twin\": spam rules 1 and 2 have" },
    { { "miss", "header_missing", "Bad Name", 1 }, "5",
      "spam rule \"miss\" (header_missing): \"Bad Name\" is not a header name" },
    { { "lvl", "web_reputation", "101", 1 }, "5",
      "spam rule \"lvl\" (web_reputation): \"101\" is not a level" },
    { { "ok", "body_regex", "x", 1 }, "five",
      "rule \"Spam\": condition 1 (spam_score): \"five\" is not a score" },
    { { "ok", "body_regex", "x", 1 }, "1e3", "\"1e3\" is not a score" },
    { { "ok", "body_regex", "x", 1 }, "100001", "\"100001\" is not a score" },
};

static void test_compile_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_refusals / sizeof s_refusals[0]; i++) {
        struct srule rules[2] = { { "twin", "body_regex", "fine", 1 }, s_refusals[i].rule };
        struct set s;
        char err[1024] = "";
        policy_t *p;

        s_set(&s, rules, 2, s_refusals[i].threshold);
        p = s_compile(&s, err, sizeof err);
        if (p != NULL)
            fail_msg("refusal case %zu compiled", i);
        if (strstr(err, s_refusals[i].msg) == NULL)
            fail_msg("refusal case %zu: \"%s\" lacks \"%s\"", i, err, s_refusals[i].msg);
    }
}

static void test_too_many(void **state)
{
    static Portcullis__SpamRule *many[POLICY_SPAM_RULES_MAX + 1];
    Portcullis__SpamRule one = PORTCULLIS__SPAM_RULE__INIT;
    char err[256];
    (void)state;

    one.name = "x";
    one.kind = "body_regex";
    one.value = "x";
    for (size_t i = 0; i <= POLICY_SPAM_RULES_MAX; i++)
        many[i] = &one;
    assert_null(policy_compile(NULL, 0, NULL, 0, many, POLICY_SPAM_RULES_MAX + 1, err,
                               sizeof err));
    assert_non_null(strstr(err, "1001 spam rules; at most 1000 are allowed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_rules_score),
        cmocka_unit_test(test_disabled_and_threshold),
        cmocka_unit_test(test_rule_names_cut),
        cmocka_unit_test(test_compile_refusals),
        cmocka_unit_test(test_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
