/* mta_adapter: see mta_adapter.h. */
#include "mta_adapter.h"

#include <stdio.h>
#include <string.h>



int mta_adapter_parse(const char *text, struct mta_adapter *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (strcmp(text, "postfix") == 0) {
        out->kind = MTA_ADAPTER_POSTFIX;
        return 0;
    }
    if (strcmp(text, "local") == 0) {
        out->kind = MTA_ADAPTER_LOCAL;
        return 0;
    }
    if (strcmp(text, "none") == 0) {
        out->kind = MTA_ADAPTER_NONE;
        return 0;
    }
    if (strncmp(text, "postfix:", 8) == 0) {
        const char *d = text + 8;
        size_t n = strlen(d);
        if (n == 0 || n >= sizeof out->dir || d[0] != '/' ||
            strspn(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") !=
                n ||
            strstr(d, "..") != NULL) {
            snprintf(err, errlen, "postfix:DIR needs an absolute directory of letters, digits "
                                  "and /._- (no \"..\")");
            return -1;
        }
        out->kind = MTA_ADAPTER_POSTFIX;
        snprintf(out->dir, sizeof out->dir, "%s", d);
        return 0;
    }
    snprintf(err, errlen, "not an adapter: %s (a command line belongs in the child's own "
                          "child.conf, with mta.adapter = local)", MTA_ADAPTER_FORMAT);
    return -1;
}
