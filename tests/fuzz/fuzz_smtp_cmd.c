/* libFuzzer target (R8.6): the SMTP command parser, smtpd_proto_feed, line by line. Each input
 * line is one command; the byte after a MAIL/RCPT decides the downstream's answer, so that
 * every state is reached. Checks: every reply ends in CRLF and fits, nothing crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/smtpd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct smtpd_limits lim = { .max_message_size = 10000,
                                             .max_line_length = 1000, .max_recipients = 3 };
    struct smtpd_proto p;
    struct smtpd_result r;
    const char *d = (const char *)data, *end = d + size;
    char line[2 * SMTP_LINE_MAX];

    smtpd_proto_init(&p, "mx.fuzz", &lim);
    smtpd_proto_allow_xforward(&p, size > 0 && (data[0] & 1));
    while (d < end) {
        const char *nl = memchr(d, '\n', (size_t)(end - d));
        size_t n = (size_t)((nl != NULL ? nl : end) - d);
        unsigned code = nl != NULL && nl + 1 < end ? (unsigned char)nl[1] : 0;
        enum smtpd_action a;

        memcpy(line, d, n < sizeof line ? n : sizeof line);
        a = smtpd_proto_feed(&p, line, n < sizeof line ? n : sizeof line, &r);
        if (a == SMTPD_ACT_MAIL)
            smtpd_proto_mail_done(&p, code % 2 ? 250 : 451);
        else if (a == SMTPD_ACT_RCPT)
            smtpd_proto_rcpt_done(&p, code % 3 ? 250 : 550);
        else if (a == SMTPD_ACT_DATA)
            smtpd_proto_data_done(&p);
        if (a != SMTPD_ACT_MAIL && a != SMTPD_ACT_RCPT) {
            size_t rl = strlen(r.reply);
            if (rl < 2 || r.reply[rl - 2] != '\r' || r.reply[rl - 1] != '\n')
                abort();
        }
        if (a == SMTPD_ACT_CLOSE || a == SMTPD_ACT_QUIT)
            break;
        {
            char xf[4096];
            (void)smtpd_proto_xforward_line(&p, 0x3f, xf, sizeof xf);
        }
        d = nl != NULL ? nl + 1 : end;
    }
    return 0;
}
