/* netmatch: see netmatch.h. */
#include "netmatch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NET_TEXT_MAX 64 /* bytes of one "address/prefix" */

static int s_parse_one(const char *tok, struct netmatch_net *net, char *err, size_t errlen)
{
    char buf[NET_TEXT_MAX];
    char *slash;
    unsigned bits;

    if (strlen(tok) >= sizeof buf) {
        snprintf(err, errlen, "'%.32s…' is too long for a network", tok);
        return -1;
    }
    strcpy(buf, tok);
    slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    memset(net, 0, sizeof *net);
    if (inet_pton(AF_INET, buf, net->addr) == 1) {
        net->family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
        net->family = AF_INET6;
        bits = 128;
    } else {
        snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", buf);
        return -1;
    }
    net->prefix = bits;
    if (slash != NULL) {
        char *end;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || p > bits) {
            snprintf(err, errlen, "'%s': the prefix length must be 0 to %u", tok, bits);
            return -1;
        }
        net->prefix = (unsigned)p;
    }
    for (unsigned i = net->prefix; i < bits; i++) {
        if (net->addr[i / 8] & (0x80u >> (i % 8))) {
            snprintf(err, errlen, "'%s' has host bits set beyond /%u", tok, net->prefix);
            return -1;
        }
    }
    return 0;
}

int netmatch_parse(const char *text, struct netmatch *out, char *err, size_t errlen)
{
    const char *p = text;

    memset(out, 0, sizeof *out);
    while (*p != '\0') {
        char tok[NET_TEXT_MAX + 1];
        size_t len;

        p += strspn(p, " \t,");
        if (*p == '\0')
            break;
        len = strcspn(p, " \t,");
        if (len > NET_TEXT_MAX) {
            snprintf(err, errlen, "'%.32s…' is too long for a network", p);
            return -1;
        }
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (out->n == NETMATCH_MAX) {
            snprintf(err, errlen, "more than %d networks", NETMATCH_MAX);
            return -1;
        }
        if (s_parse_one(tok, &out->nets[out->n], err, errlen) != 0)
            return -1;
        out->n++;
        p += len;
    }
    return 0;
}

static bool s_in(const struct netmatch_net *net, const uint8_t *a)
{
    unsigned full = net->prefix / 8, rest = net->prefix % 8;

    if (memcmp(net->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((net->addr[full] ^ a[full]) & (uint8_t)(0xffu << (8 - rest))) == 0;
}

void netmatch_addr_text(const struct sockaddr *sa, char *out, size_t n)
{
    const void *a = NULL;

    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (a == NULL || inet_ntop(sa->sa_family, a, out, (socklen_t)n) == NULL)
        snprintf(out, n, "unknown");
}

bool netmatch_has(const struct netmatch *m, const char *addr)
{
    uint8_t a4[4], a6[16];
    bool v4 = inet_pton(AF_INET, addr, a4) == 1;
    bool v6 = !v4 && inet_pton(AF_INET6, addr, a6) == 1;
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (v6 && memcmp(a6, mapped, sizeof mapped) == 0) {
        memcpy(a4, a6 + 12, 4); /* ::ffff:a.b.c.d is a.b.c.d */
        v4 = true;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct netmatch_net *net = &m->nets[i];
        if (net->family == AF_INET && v4 && s_in(net, a4))
            return true;
        if (net->family == AF_INET6 && v6 && s_in(net, a6))
            return true;
    }
    return false;
}
