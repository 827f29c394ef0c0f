/* libFuzzer target (R8.6): the MIME analysis, mime_parse, with small limits so that every
 * limit is reached, then the facts handed to policy rules. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "scan/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static const struct mime_limits lim = { .max_depth = 8, .max_parts = 64,
                                            .max_decoded_size = 1u << 20, .max_headers = 100,
                                            .max_header_length = 4096 };
    struct mime_result *r;
    struct policy_facts f = { 0 };

    if (!ready) {
        mime_init();
        ready = 1;
    }
    r = mime_parse((const char *)data, size, &lim);
    mime_facts_fill(r, &f);
    if (r->nheaders > 0 && (r->headers[0].name == NULL || r->headers[0].value == NULL))
        abort();
    mime_result_free(&r);
    return 0;
}
