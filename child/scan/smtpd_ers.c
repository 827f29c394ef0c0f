/* smtpd_ers: a session's email-reputation look-up (R3.1). Started at MAIL with the XFORWARD
 * client address so that the answers arrive while the message does; at the end of DATA the
 * message waits for them on the loop (never in a thread) until ers.timeout_ms after MAIL. */
#include "scan/ers.h"
#include "scan/scanpool.h"
#include "scan/smtpd_int.h"

#include <string.h>

#include "log.h"

void smtpd_set_ers(smtpd_t *srv, struct ers *ers) { srv->ers = ers; }

void smtpd_ers_start(struct smtpd_session *s)
{
    const char *addr = s->proto.xforward[1]; /* ADDR; "" or [UNAVAILABLE]: skipped */

    ers_query_free(&s->ers);
    if (s->srv->ers != NULL)
        s->ers = ers_query_start(s->srv->ers, addr);
}

static void s_ready(void *arg)
{
    struct smtpd_session *s = arg;

    smtpd_scan_message(s); /* the look-up is done: on to the scan pool */
}

bool smtpd_ers_ready(struct smtpd_session *s)
{
    if (s->ers == NULL || ers_query_done(s->ers))
        return true;
    ers_query_wait(s->ers, s_ready, s);
    return false;
}

void smtpd_ers_fill(struct smtpd_session *s, struct scan_job *j)
{
    const struct ers_result *r;

    if (s->ers == NULL)
        return;
    r = ers_query_result(s->ers);
    j->ers_on = true;
    j->ers = *r;
    if (r->outcome == ERS_LISTED)
        log_info("id=%s ers listed %s", s->id, r->detail);
    else if (r->outcome == ERS_SKIPPED)
        log_debug("id=%s ers skipped: %s", s->id, r->detail);
    ers_query_free(&s->ers);
}
