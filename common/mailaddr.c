/* mailaddr: see mailaddr.h. */
#include "mailaddr.h"

#include <stdio.h>
#include <string.h>

bool mailaddr_valid(const char *a, size_t len)
{
    const char *at = NULL;

    if (len < 3 || len > MAILADDR_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)a[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '<' || ch == '>' || ch == ',' || ch == '(' ||
            ch == ')' || ch == '"' || ch == '\\' || ch == ';' || ch == ':')
            return false;
        if (ch == '@') {
            if (at != NULL)
                return false;
            at = a + i;
        }
    }
    /* Something before the @, a domain after it that neither starts nor ends with a dot. */
    return at != NULL && at > a && at < a + len - 1 && at[1] != '.' && a[len - 1] != '.';
}

int mailaddr_list_split(const char *list, char out[][MAILADDR_MAX + 1], size_t max, size_t *n,
                        char *why, size_t whylen)
{
    const char *p = list;

    *n = 0;
    while (*p != '\0') {
        const char *e;
        size_t len;

        while (*p == ' ' || *p == '\t')
            p++;
        e = strchr(p, ',');
        if (e == NULL)
            e = p + strlen(p);
        len = (size_t)(e - p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0) {
            if (!mailaddr_valid(p, len)) {
                snprintf(why, whylen, "\"%.*s\" is not a plain address (local@domain)",
                         (int)(len > 80 ? 80 : len), p);
                return -1;
            }
            if (*n == max) {
                snprintf(why, whylen, "more than %zu addresses", max);
                return -1;
            }
            memcpy(out[*n], p, len);
            out[*n][len] = '\0';
            (*n)++;
        } else if (*e == ',') {
            snprintf(why, whylen, "empty entry in the address list");
            return -1;
        }
        p = *e == ',' ? e + 1 : e;
    }
    return 0;
}
