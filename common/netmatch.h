/* netmatch: lists of networks ("127.0.0.0/8 ::1 192.0.2.7, 2001:db8::/32") and the test of
 * an address against one. Used for smtp.xforward_hosts (R8.5), where only listed clients may
 * speak for another. */
#ifndef PORTCULLIS_NETMATCH_H
#define PORTCULLIS_NETMATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETMATCH_MAX 64 /* networks in one list */

struct netmatch_net {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t addr[16];  /* network address (4 bytes used for AF_INET) */
    unsigned prefix;   /* bits */
};

struct netmatch {
    struct netmatch_net nets[NETMATCH_MAX];
    size_t n;
};

/* Parses a list separated by blanks or commas; an empty list matches nothing. A network
 * with host bits set is refused (a typo more often than not). 0 ok, -1 with err filled. */
int netmatch_parse(const char *text, struct netmatch *out, char *err, size_t errlen);

struct sockaddr;
/* The address of an IPv4 or IPv6 socket address as text ("unknown" for other families). */
void netmatch_addr_text(const struct sockaddr *sa, char *out, size_t n);

/* True when the textual address (IPv4, IPv6, or IPv4-mapped IPv6) is inside a listed net. */
bool netmatch_has(const struct netmatch *m, const char *addr);

#endif
