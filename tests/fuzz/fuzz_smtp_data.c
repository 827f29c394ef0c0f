/* libFuzzer target (R8.6, R8.5): DATA framing, smtp_data_feed, in both bare-newline modes and
 * with the input split where its first byte says. Checks the invariants the relay relies on:
 * the end is only ever a CRLF.CRLF after a CRLF, normalised output has no bare CR or LF, and a
 * split decodes like the whole. */
#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scan/smtp_data.h"

static size_t s_decode(const uint8_t *in, size_t len, size_t cut, enum smtp_bare_mode mode,
                       struct evbuffer *out, enum smtp_data_status *st)
{
    struct smtp_data d;
    size_t used1 = 0, used2 = 0;

    smtp_data_init(&d, 1u << 20, 4096, mode);
    *st = smtp_data_feed(&d, (const char *)in, cut, &used1, out);
    if (*st == SMTP_DATA_MORE)
        *st = smtp_data_feed(&d, (const char *)in + cut, len - cut, &used2, out);
    return used1 + used2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    for (int m = 0; m < 2; m++) {
        enum smtp_bare_mode mode = m ? SMTP_BARE_NORMALIZE : SMTP_BARE_REJECT;
        struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
        enum smtp_data_status sa, sb;
        size_t cut = data[0] % size;
        size_t ua = s_decode(data + 1, size - 1, 0, mode, a, &sa);
        size_t ub = s_decode(data + 1, size - 1, cut > size - 1 ? size - 1 : cut, mode, b, &sb);

        if (sa != sb || ua != ub || evbuffer_get_length(a) != evbuffer_get_length(b))
            abort();
        if (sa == SMTP_DATA_END) {
            /* consumed ends in CRLF.CRLF, or is exactly ".\r\n" at the start */
            const uint8_t *e = data + 1 + ua;
            if (!(ua == 3 && memcmp(data + 1, ".\r\n", 3) == 0) &&
                (ua < 5 || memcmp(e - 5, "\r\n.\r\n", 5) != 0))
                abort();
        }
        if (mode == SMTP_BARE_NORMALIZE) {
            size_t n = evbuffer_get_length(a);
            const unsigned char *p = evbuffer_pullup(a, -1);
            for (size_t i = 0; i < n; i++)
                if ((p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n')) ||
                    (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')))
                    abort();
        }
        evbuffer_free(a);
        evbuffer_free(b);
    }
    return 0;
}
