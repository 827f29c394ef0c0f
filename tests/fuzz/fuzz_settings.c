/* libFuzzer target (R8.6): settings validation of any text for every setting (the parent takes
 * it from the API, the child from a snapshot), the address lists, adapters and masks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta_adapter.h"
#include "netmatch.h"
#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char value[SETTINGS_VALUE_MAX + 8], canon[SETTINGS_VALUE_MAX], err[1024], masked[8192];
    struct netmatch m;
    struct mta_adapter a;

    if (size >= sizeof value)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';
    for (int id = 0; id < SETTING__COUNT; id++) {
        const struct setting_def *d = settings_def((enum setting_id)id);
        err[0] = '\0';
        if (settings_validate(d, value, canon, sizeof canon, err, sizeof err) != 0 &&
            err[0] == '\0')
            abort();
    }
    if (netmatch_parse(value, &m, err, sizeof err) == 0)
        (void)netmatch_has(&m, value);
    (void)mta_adapter_parse(value, &a, err, sizeof err);
    settings_mask(value, masked, sizeof masked);
    return 0;
}
