/* libFuzzer target (R8.6): the component update package reader (a tar the parent imports and
 * children download): member names, types, counts and sizes; checked in memory, never
 * written (dest_dir NULL, the parent's import check). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "update_pkg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t nfiles = 0;
    uint64_t total = 0;
    char why[512] = "", name[300];

    if (update_pkg_extract_mem(data, size, NULL, &nfiles, &total, why, sizeof why) != 0 &&
        why[0] == '\0')
        abort();
    if (size < sizeof name) {
        memcpy(name, data, size);
        name[size] = '\0';
        if (update_pkg_member_name_ok(name) && (strchr(name + (name[0] == '.' ? 2 : 0), '/') ||
                                                strcmp(name, "..") == 0))
            abort();
    }
    return 0;
}
