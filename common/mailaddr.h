/* mailaddr: the plain addresses Portcullis itself sends mail to and from (notification
 * settings): local@domain, printable ASCII, no spaces, angle brackets or line breaks — what an
 * SMTP envelope and a header can carry without quoting. Lists are comma-separated. */
#ifndef PORTCULLIS_MAILADDR_H
#define PORTCULLIS_MAILADDR_H

#include <stdbool.h>
#include <stddef.h>

#define MAILADDR_MAX 254      /* RFC 5321 path limit less the brackets */
#define MAILADDR_LIST_MAX 16  /* addresses in one list */

bool mailaddr_valid(const char *a, size_t len);
/* Splits a comma-separated list (spaces around entries ignored) into out; 0 ok with *n set
 * (0 for an empty list), -1 with why filled naming the bad entry. */
int mailaddr_list_split(const char *list, char out[][MAILADDR_MAX + 1], size_t max, size_t *n,
                        char *why, size_t whylen);

#endif
