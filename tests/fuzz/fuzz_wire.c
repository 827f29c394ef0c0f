/* libFuzzer target (R8.6, R8.3): wire_unpack of every Envelope body a peer can send (bounded,
 * each count and length checked), and the enrolment socket's frame check, which must accept
 * nothing that does not unpack as an EnrollRequest, and the cluster loop's peek at the body
 * (R10.1): whatever it calls a ReportBatch either unpacks as one or does not unpack. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    envelope_t *e = wire_unpack(data, size);
    bool enrol = wire_is_enroll_request(data, size);
    int peeked = wire_peek_body(data, size);

    if (enrol && size <= WIRE_ENROL_MAX && e != NULL &&
        e->body_case != PORTCULLIS__ENVELOPE__BODY_ENROLL_REQUEST)
        abort();
    if (peeked < 0 || peeked > 15 ||
        (e != NULL && peeked >= 1 && peeked <= 14 && (int)e->body_case != peeked))
        abort();
    if (e != NULL) {
        size_t n;
        uint8_t *again = wire_pack(e, &n); /* what we decoded we can encode */
        free(again);
    }
    wire_free(&e);
    return 0;
}
