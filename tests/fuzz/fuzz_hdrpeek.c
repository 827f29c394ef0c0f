/* libFuzzer target (R8.6): header peek, the parent's reading of a stored message's sender,
 * subject and recipients (release and search); every output is bounded and terminated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/hdrpeek.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hdrpeek h;

    hdrpeek_parse((const char *)data, size, &h);
    if (strlen(h.sender) > HDRPEEK_ADDR_MAX || strlen(h.subject) > HDRPEEK_SUBJECT_MAX ||
        h.nrcpts > HDRPEEK_RCPT_MAX)
        abort();
    for (size_t i = 0; i < h.nrcpts; i++)
        if (strlen(h.rcpts[i]) > HDRPEEK_ADDR_MAX)
            abort();
    return 0;
}
