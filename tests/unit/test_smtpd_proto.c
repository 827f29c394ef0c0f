/* Unit tests for smtpd_proto, the SMTP server's command state machine: sequencing, syntax,
 * limits at and one past the limit, SIZE, XFORWARD, pipelined command order. R1.1, R1.2 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scan/smtpd_proto.h"

static const struct smtpd_limits s_lim = {
    .max_message_size = 10000, .max_line_length = 1000, .max_recipients = 3
};

struct fx {
    struct smtpd_proto p;
    struct smtpd_result r;
};

static int s_setup(void **state)
{
    static struct fx fx;

    smtpd_proto_init(&fx.p, "mx.test", &s_lim);
    smtpd_proto_allow_xforward(&fx.p, true); /* a client in smtp.xforward_hosts */
    *state = &fx;
    return 0;
}

static enum smtpd_action s_feed(struct fx *f, const char *line)
{
    return smtpd_proto_feed(&f->p, line, strlen(line), &f->r);
}

/* Feeds line and checks the action and the exact reply. */
static void s_check(struct fx *f, const char *line, enum smtpd_action act, const char *reply)
{
    assert_int_equal(s_feed(f, line), act);
    assert_string_equal(f->r.reply, reply);
}

static void s_ehlo(struct fx *f)
{
    assert_int_equal(s_feed(f, "EHLO up.test"), SMTPD_ACT_REPLY);
}

/* MAIL accepted by the downstream. */
static void s_mail(struct fx *f, const char *line)
{
    assert_int_equal(s_feed(f, line), SMTPD_ACT_MAIL);
    smtpd_proto_mail_done(&f->p, 250);
}

static void test_greeting_and_ehlo(void **state)
{
    struct fx *f = *state;

    smtpd_proto_greeting(&f->p, &f->r);
    assert_string_equal(f->r.reply, "220 mx.test ESMTP Portcullis\r\n");
    s_check(f, "EHLO up.test", SMTPD_ACT_REPLY,
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
            "250-XFORWARD NAME ADDR PROTO HELO SOURCE IDENT\r\n250 ENHANCEDSTATUSCODES\r\n");
    assert_string_equal(f->p.helo, "up.test");
    s_check(f, "helo other.test", SMTPD_ACT_REPLY, "250 mx.test\r\n");
    s_check(f, "EHLO", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: EHLO hostname\r\n");
    s_check(f, "HELO", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: HELO hostname\r\n");
}

static void test_sequencing(void **state)
{
    struct fx *f = *state;

    s_check(f, "MAIL FROM:<a@x>", SMTPD_ACT_REPLY, "503 5.5.1 Error: send HELO/EHLO first\r\n");
    s_check(f, "XFORWARD ADDR=1.2.3.4", SMTPD_ACT_REPLY,
            "503 5.5.1 Error: send HELO/EHLO first\r\n");
    s_ehlo(f);
    s_check(f, "RCPT TO:<b@x>", SMTPD_ACT_REPLY, "503 5.5.1 Error: need MAIL command\r\n");
    s_check(f, "DATA", SMTPD_ACT_REPLY, "503 5.5.1 Error: need RCPT command\r\n");
    s_mail(f, "MAIL FROM:<a@x>");
    s_check(f, "MAIL FROM:<a@x>", SMTPD_ACT_REPLY, "503 5.5.1 Error: nested MAIL command\r\n");
    s_check(f, "DATA", SMTPD_ACT_REPLY, "554 5.5.1 Error: no valid recipients\r\n");
    s_check(f, "XFORWARD ADDR=1.2.3.4", SMTPD_ACT_REPLY,
            "503 5.5.1 Error: MAIL transaction in progress\r\n");
    assert_int_equal(s_feed(f, "RCPT TO:<b@x>"), SMTPD_ACT_RCPT);
    assert_string_equal(f->p.rcpt, "b@x");
    smtpd_proto_rcpt_done(&f->p, 250);
    s_check(f, "DATA", SMTPD_ACT_DATA, "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_int_equal(f->p.state, SMTPD_STATE_DATA);
    smtpd_proto_data_done(&f->p);
    assert_int_equal(f->p.state, SMTPD_STATE_READY);
    assert_false(smtpd_proto_in_transaction(&f->p));
    s_check(f, "RCPT TO:<b@x>", SMTPD_ACT_REPLY, "503 5.5.1 Error: need MAIL command\r\n");
}

static void test_mail_refused_downstream(void **state)
{
    struct fx *f = *state;

    s_ehlo(f);
    assert_int_equal(s_feed(f, "MAIL FROM:<a@x>"), SMTPD_ACT_MAIL);
    smtpd_proto_mail_done(&f->p, 451);
    assert_int_equal(f->p.state, SMTPD_STATE_READY);
    s_check(f, "RCPT TO:<b@x>", SMTPD_ACT_REPLY, "503 5.5.1 Error: need MAIL command\r\n");
    s_mail(f, "MAIL FROM:<a@x>"); /* a new MAIL is allowed */
    assert_int_equal(f->p.state, SMTPD_STATE_MAIL);
}

static void test_mail_syntax(void **state)
{
    struct fx *f = *state;
    char line[SMTP_PATH_MAX + 32];

    s_ehlo(f);
    s_check(f, "MAIL FROM:a@x", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    s_check(f, "MAIL TO:<a@x>", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    s_check(f, "MAIL FROM:<a x>", SMTPD_ACT_REPLY, "501 5.1.7 Bad sender address syntax\r\n");
    s_check(f, "MAIL FROM:<a@x", SMTPD_ACT_REPLY, "501 5.1.7 Bad sender address syntax\r\n");
    s_check(f, "MAIL FROM:<a@x>junk", SMTPD_ACT_REPLY, "501 5.1.7 Bad sender address syntax\r\n");
    s_check(f, "MAIL FROM:<a@x> AUTH=<>", SMTPD_ACT_REPLY,
            "555 5.5.4 Unsupported option: AUTH=<>\r\n");
    s_check(f, "MAIL FROM:<a@x> BODY=BINARYMIME", SMTPD_ACT_REPLY,
            "501 5.5.4 Bad BODY keyword syntax\r\n");
    /* address length: at the limit and one past */
    snprintf(line, sizeof line, "MAIL FROM:<%0*d>", SMTP_PATH_MAX, 0);
    assert_int_equal(s_feed(f, line), SMTPD_ACT_MAIL);
    assert_int_equal(strlen(f->p.sender), SMTP_PATH_MAX);
    smtpd_proto_mail_done(&f->p, 550);
    snprintf(line, sizeof line, "MAIL FROM:<%0*d>", SMTP_PATH_MAX + 1, 0);
    s_check(f, line, SMTPD_ACT_REPLY, "501 5.1.7 Bad sender address syntax\r\n");
    /* null sender, blank after the colon, quoted local part with a '>' */
    s_check(f, "mail from: <>", SMTPD_ACT_MAIL, "");
    assert_string_equal(f->p.sender, "");
    smtpd_proto_mail_done(&f->p, 550);
    s_check(f, "MAIL FROM:<\"a>b\"@x>", SMTPD_ACT_MAIL, "");
    assert_string_equal(f->p.sender, "\"a>b\"@x");
}

static void test_size_param(void **state)
{
    struct fx *f = *state;
    char line[128];

    s_ehlo(f);
    s_check(f, "MAIL FROM:<a@x> SIZE=10001", SMTPD_ACT_REPLY,
            "552 5.3.4 Message size exceeds fixed limit\r\n");
    s_check(f, "MAIL FROM:<a@x> SIZE=abc", SMTPD_ACT_REPLY,
            "501 5.5.4 Bad message size syntax\r\n");
    s_check(f, "MAIL FROM:<a@x> SIZE=-1", SMTPD_ACT_REPLY, "501 5.5.4 Bad message size syntax\r\n");
    s_check(f, "MAIL FROM:<a@x> SIZE=10000 BODY=8bitmime", SMTPD_ACT_MAIL, "");
    assert_int_equal(f->p.size, 10000);
    assert_string_equal(f->p.body, "8BITMIME");
    /* relayed with the parameters the downstream supports */
    smtpd_proto_mail_line(&f->p, SMTP_EXT_SIZE | SMTP_EXT_8BITMIME, line, sizeof line);
    assert_string_equal(line, "MAIL FROM:<a@x> SIZE=10000 BODY=8BITMIME");
    smtpd_proto_mail_line(&f->p, SMTP_EXT_SIZE, line, sizeof line);
    assert_string_equal(line, "MAIL FROM:<a@x> SIZE=10000");
    smtpd_proto_mail_line(&f->p, 0, line, sizeof line);
    assert_string_equal(line, "MAIL FROM:<a@x>");
}

static void test_recipient_limit(void **state)
{
    struct fx *f = *state;
    struct smtpd_limits more = s_lim;

    s_ehlo(f);
    s_mail(f, "MAIL FROM:<a@x>");
    /* a recipient the downstream refuses does not count */
    assert_int_equal(s_feed(f, "RCPT TO:<nobody@x>"), SMTPD_ACT_RCPT);
    smtpd_proto_rcpt_done(&f->p, 550);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s_feed(f, "RCPT TO:<b@x>"), SMTPD_ACT_RCPT);
        smtpd_proto_rcpt_done(&f->p, 250);
    }
    assert_int_equal(f->p.nrcpt, 3); /* at the limit */
    /* new limits do not apply to the transaction in progress */
    more.max_recipients = 5;
    smtpd_proto_set_limits(&f->p, &more);
    s_check(f, "RCPT TO:<c@x>", SMTPD_ACT_REPLY, "452 4.5.3 Error: too many recipients\r\n");
    s_check(f, "RSET", SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
    s_mail(f, "MAIL FROM:<a@x>");
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s_feed(f, "RCPT TO:<b@x>"), SMTPD_ACT_RCPT);
        smtpd_proto_rcpt_done(&f->p, 250);
    }
    s_check(f, "RCPT TO:<c@x>", SMTPD_ACT_REPLY, "452 4.5.3 Error: too many recipients\r\n");
}

static void test_rcpt_syntax(void **state)
{
    struct fx *f = *state;

    s_ehlo(f);
    s_mail(f, "MAIL FROM:<>");
    s_check(f, "RCPT TO:b@x", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    s_check(f, "RCPT TO:<>", SMTPD_ACT_REPLY, "501 5.1.3 Bad recipient address syntax\r\n");
    s_check(f, "RCPT TO:<b@x> NOTIFY=NEVER", SMTPD_ACT_REPLY,
            "555 5.5.4 Unsupported option: NOTIFY=NEVER\r\n");
    s_check(f, "rcpt to: <postmaster>", SMTPD_ACT_RCPT, "");
    {
        char line[64];
        smtpd_proto_rcpt_line(&f->p, line, sizeof line);
        assert_string_equal(line, "RCPT TO:<postmaster>");
    }
}

static void test_reset_flags(void **state)
{
    struct fx *f = *state;

    s_ehlo(f);
    s_check(f, "RSET", SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
    assert_false(f->r.reset); /* nothing to reset downstream */
    s_mail(f, "MAIL FROM:<a@x>");
    assert_true(smtpd_proto_in_transaction(&f->p));
    s_check(f, "RSET", SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
    assert_true(f->r.reset);
    assert_false(smtpd_proto_in_transaction(&f->p));
    s_mail(f, "MAIL FROM:<a@x>");
    s_ehlo(f); /* EHLO drops the transaction too */
    assert_true(f->r.reset);
    assert_false(smtpd_proto_in_transaction(&f->p));
    s_check(f, "RSET now", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: RSET\r\n");
}

static void test_misc_commands(void **state)
{
    struct fx *f = *state;

    s_check(f, "NOOP", SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
    s_check(f, "VRFY postmaster", SMTPD_ACT_REPLY,
            "252 2.0.0 Cannot VRFY user; try RCPT to attempt delivery\r\n");
    s_check(f, "VRFY", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: VRFY address\r\n");
    s_check(f, "HELP", SMTPD_ACT_REPLY,
            "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP XFORWARD\r\n");
    s_check(f, "STARTTLS", SMTPD_ACT_REPLY, "500 5.5.2 Error: command not recognized\r\n");
    s_check(f, "", SMTPD_ACT_REPLY, "500 5.5.2 Error: command not recognized\r\n");
    s_check(f, "DATA x", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: DATA\r\n");
    s_check(f, "quit", SMTPD_ACT_QUIT, "221 2.0.0 Bye\r\n");
}

static void test_line_length(void **state)
{
    struct fx *f = *state;
    static char line[SMTP_LINE_MAX + 2];

    memset(line, 'x', sizeof line);
    memcpy(line, "NOOP ", 5);
    /* at the limit: an ordinary command */
    assert_int_equal(smtpd_proto_feed(&f->p, line, SMTP_LINE_MAX, &f->r), SMTPD_ACT_REPLY);
    assert_string_equal(f->r.reply, "250 2.0.0 Ok\r\n");
    /* one past: refused and the connection ends */
    assert_int_equal(smtpd_proto_feed(&f->p, line, SMTP_LINE_MAX + 1, &f->r), SMTPD_ACT_CLOSE);
    assert_string_equal(f->r.reply, "500 5.5.2 Line too long\r\n");
}

static void test_error_limit(void **state)
{
    struct fx *f = *state;

    for (int i = 1; i < SMTPD_ERRORS_MAX; i++)
        s_check(f, "BOGUS", SMTPD_ACT_REPLY, "500 5.5.2 Error: command not recognized\r\n");
    s_check(f, "BOGUS", SMTPD_ACT_CLOSE, "421 4.7.0 mx.test Error: too many errors\r\n");
}

static void test_xforward(void **state)
{
    struct fx *f = *state;
    char line[2048], val[SMTPD_XFORWARD_MAX + 2], cmd[SMTPD_XFORWARD_MAX + 32];

    s_ehlo(f);
    s_check(f, "XFORWARD NAME=client.example ADDR=192.0.2.7 PROTO=ESMTP", SMTPD_ACT_REPLY,
            "250 2.0.0 Ok\r\n");
    s_check(f, "XFORWARD HELO=h.example SOURCE=REMOTE IDENT=q1", SMTPD_ACT_REPLY,
            "250 2.0.0 Ok\r\n");
    s_check(f, "XFORWARD", SMTPD_ACT_REPLY, "501 5.5.4 Syntax: XFORWARD attribute=value...\r\n");
    s_check(f, "XFORWARD COLOUR=blue", SMTPD_ACT_REPLY,
            "501 5.5.4 Bad XFORWARD attribute name: COLOUR\r\n");
    s_check(f, "XFORWARD ADDR", SMTPD_ACT_REPLY,
            "501 5.5.4 Syntax: XFORWARD attribute=value...\r\n");
    /* value length at the limit and one past; a refused command changes nothing */
    memset(val, 'v', sizeof val);
    val[SMTPD_XFORWARD_MAX + 1] = '\0';
    snprintf(cmd, sizeof cmd, "XFORWARD IDENT=%s", val);
    s_check(f, cmd, SMTPD_ACT_REPLY, "501 5.5.4 Bad XFORWARD attribute value: too long\r\n");
    assert_string_equal(f->p.xforward[5], "q1");
    val[SMTPD_XFORWARD_MAX] = '\0';
    snprintf(cmd, sizeof cmd, "XFORWARD IDENT=%s", val);
    s_check(f, cmd, SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
    s_check(f, "XFORWARD IDENT=q1", SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");

    assert_true(smtpd_proto_xforward_line(&f->p, SMTP_XF_NAME | SMTP_XF_ADDR | SMTP_XF_PROTO |
                                                     SMTP_XF_HELO,
                                          line, sizeof line));
    assert_string_equal(line,
                        "XFORWARD NAME=client.example ADDR=192.0.2.7 PROTO=ESMTP HELO=h.example");
    assert_true(smtpd_proto_xforward_line(&f->p, 0x3f, line, sizeof line));
    assert_string_equal(line, "XFORWARD NAME=client.example ADDR=192.0.2.7 PROTO=ESMTP "
                              "HELO=h.example SOURCE=REMOTE IDENT=q1");
    assert_false(smtpd_proto_xforward_line(&f->p, 0, line, sizeof line));
    /* kept through the transaction, cleared after it */
    s_mail(f, "MAIL FROM:<a@x>");
    assert_string_equal(f->p.xforward[1], "192.0.2.7");
    assert_int_equal(s_feed(f, "RCPT TO:<b@x>"), SMTPD_ACT_RCPT);
    smtpd_proto_rcpt_done(&f->p, 250);
    assert_int_equal(s_feed(f, "DATA"), SMTPD_ACT_DATA);
    smtpd_proto_data_done(&f->p);
    assert_false(smtpd_proto_xforward_line(&f->p, 0x3f, line, sizeof line));
}

/* R8.5: a client outside smtp.xforward_hosts is not offered XFORWARD and cannot use it. */
static void test_xforward_not_allowed(void **state)
{
    struct fx *f = *state;

    smtpd_proto_allow_xforward(&f->p, false);
    s_check(f, "EHLO up.test", SMTPD_ACT_REPLY,
            "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n"
            "250 ENHANCEDSTATUSCODES\r\n");
    s_check(f, "XFORWARD ADDR=192.0.2.7", SMTPD_ACT_REPLY,
            "550 5.7.0 Error: insufficient authorization\r\n");
    assert_string_equal(f->p.xforward[1], "");
}

/* R8.5: values by XFORWARD's grammar; a bad one refuses the whole command. */
static void test_xforward_grammar(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {
        "XFORWARD ADDR=999.1.1.1",         "XFORWARD ADDR=evil.example",
        "XFORWARD ADDR=IPv6:1.2.3.4",      "XFORWARD NAME=a<b>.example",
        "XFORWARD SOURCE=ELSEWHERE",       "XFORWARD PROTO=E-SMTP",
        "XFORWARD HELO=x+2",               "XFORWARD IDENT=a\x01b",
        "XFORWARD NAME=ok.example ADDR=nope",
    };

    s_ehlo(f);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(s_feed(f, bad[i]), SMTPD_ACT_REPLY);
        assert_memory_equal(f->r.reply, "501 5.5.4 Bad XFORWARD attribute value: ", 40);
    }
    assert_string_equal(f->p.xforward[0], ""); /* all or nothing */
    s_check(f, "XFORWARD NAME=[UNAVAILABLE] ADDR=IPv6:2001:db8::1 PROTO=ESMTP SOURCE=LOCAL "
               "HELO=[192.0.2.1]+20x",
            SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
    s_check(f, "XFORWARD ADDR=[TEMPUNAVAIL]", SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
    s_check(f, "XFORWARD ADDR=::ffff:192.0.2.9", SMTPD_ACT_REPLY, "250 2.0.0 Ok\r\n");
}

/* A pipelined group, processed one command at a time with the downstream's answers in
 * between: the actions (and so the replies) come out in command order. */
static void test_pipelining_order(void **state)
{
    struct fx *f = *state;
    const char *group = "EHLO up.test\r\nMAIL FROM:<a@x>\r\nRCPT TO:<ok@x>\r\n"
                        "RCPT TO:<unknown@x>\r\nDATA\r\n";
    static const enum smtpd_action want[] = { SMTPD_ACT_REPLY, SMTPD_ACT_MAIL, SMTPD_ACT_RCPT,
                                              SMTPD_ACT_RCPT, SMTPD_ACT_DATA };
    static const int downstream[] = { 0, 250, 250, 550, 0 };
    const char *p = group;
    size_t i = 0;

    while (*p != '\0') {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_true(i < sizeof want / sizeof want[0]);
        assert_int_equal(smtpd_proto_feed(&f->p, p, (size_t)(eol - p), &f->r), want[i]);
        if (want[i] == SMTPD_ACT_MAIL)
            smtpd_proto_mail_done(&f->p, downstream[i]);
        if (want[i] == SMTPD_ACT_RCPT)
            smtpd_proto_rcpt_done(&f->p, downstream[i]);
        p = eol + 2;
        i++;
    }
    assert_int_equal(i, 5);
    assert_int_equal(f->p.nrcpt, 1);

    /* the same group when the downstream refuses MAIL: the rest fails in order */
    smtpd_proto_data_done(&f->p);
    assert_int_equal(s_feed(f, "MAIL FROM:<a@x>"), SMTPD_ACT_MAIL);
    smtpd_proto_mail_done(&f->p, 451);
    s_check(f, "RCPT TO:<ok@x>", SMTPD_ACT_REPLY, "503 5.5.1 Error: need MAIL command\r\n");
    s_check(f, "DATA", SMTPD_ACT_REPLY, "503 5.5.1 Error: need RCPT command\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_greeting_and_ehlo, s_setup),
        cmocka_unit_test_setup(test_sequencing, s_setup),
        cmocka_unit_test_setup(test_mail_refused_downstream, s_setup),
        cmocka_unit_test_setup(test_mail_syntax, s_setup),
        cmocka_unit_test_setup(test_size_param, s_setup),
        cmocka_unit_test_setup(test_recipient_limit, s_setup),
        cmocka_unit_test_setup(test_rcpt_syntax, s_setup),
        cmocka_unit_test_setup(test_reset_flags, s_setup),
        cmocka_unit_test_setup(test_misc_commands, s_setup),
        cmocka_unit_test_setup(test_line_length, s_setup),
        cmocka_unit_test_setup(test_error_limit, s_setup),
        cmocka_unit_test_setup(test_xforward, s_setup),
        cmocka_unit_test_setup(test_xforward_not_allowed, s_setup),
        cmocka_unit_test_setup(test_xforward_grammar, s_setup),
        cmocka_unit_test_setup(test_pipelining_order, s_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
