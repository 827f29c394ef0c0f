/* libFuzzer target (R8.6): the DNS block-list side — ers.zones as an administrator writes it,
 * and the mapping of answer addresses (what a DNS server returns, the first bytes of the
 * input) to listings. evdns itself parses the DNS wire format. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ers_zones.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ers_zones z;
    char text[4200], err[512];
    uint32_t addr = 0x7f000002;

    if (size < 4 || size - 4 >= sizeof text)
        return 0;
    memcpy(&addr, data, 4);
    memcpy(text, data + 4, size - 4);
    text[size - 4] = '\0';
    if (ers_zones_parse(text, &z, err, sizeof err) != 0)
        return 0;
    if (z.nzones > ERS_ZONES_MAX)
        abort();
    for (size_t i = 0; i < z.nzones; i++) {
        (void)ers_zones_listing(&z.zones[i], addr);
        (void)ers_zones_listing(&z.zones[i], 0x7f000002);
    }
    return 0;
}
