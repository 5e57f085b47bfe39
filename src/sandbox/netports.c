/* The network settings of a run and the loopback ports it may reach: those
 * the spec names in its URLs and those given with --allow-host. */
#include "kiln/sandbox.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

/* More would mean a spec that lists ports rather than indexes. */
#define NET_PORTS_MAX 64

const char *kiln_network_name(enum kiln_network n)
{
        switch (n) {
        case KILN_NETWORK_PRIVATE:
                return "private";
        case KILN_NETWORK_HOST:
                return "host";
        case KILN_NETWORK_NONE:
                return "none";
        }
        return "?";
}

int kiln_network_parse(const char *s, enum kiln_network *out, struct kiln_err **err)
{
        static const enum kiln_network all[] = {KILN_NETWORK_PRIVATE, KILN_NETWORK_HOST,
                                                KILN_NETWORK_NONE};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                if (!strcmp(s, kiln_network_name(all[i]))) {
                        *out = all[i];
                        return 0;
                }
        return kiln_err_set(err, KILN_ERR_USAGE, 0, "--network %s: want private, host or none", s);
}

void kiln_net_ports_release(struct kiln_net_ports *p)
{
        free(p->v);
        *p = (struct kiln_net_ports){0};
}

static void add_one(struct kiln_net_ports *p, const char *addr, unsigned short port)
{
        for (size_t i = 0; i < p->n; i++)
                if (p->v[i].port == port && !strcmp(p->v[i].addr, addr))
                        return;
        if (p->n == NET_PORTS_MAX)
                return;
        p->v = kiln_xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
        snprintf(p->v[p->n].addr, sizeof(p->v[p->n].addr), "%s", addr);
        p->v[p->n].port = port;
        p->n++;
}

/* Adds host:port when host is a loopback name or address; false when it is
 * not one. */
static bool add_loopback(struct kiln_net_ports *p, const char *host, unsigned short port)
{
        struct in_addr a4;
        struct in6_addr a6;
        char buf[INET6_ADDRSTRLEN];
        if (!strcasecmp(host, "localhost")) {
                add_one(p, "127.0.0.1", port);
                add_one(p, "::1", port);
                return true;
        }
        if (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) {
                inet_ntop(AF_INET, &a4, buf, sizeof(buf));
                add_one(p, buf, port);
                return true;
        }
        if (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6)) {
                add_one(p, "::1", port);
                return true;
        }
        return false;
}

static bool parse_port(const char *s, size_t n, unsigned short *out)
{
        if (n == 0 || n > 5)
                return false;
        unsigned long v = 0;
        for (size_t i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return false;
                v = v * 10 + (unsigned long)(s[i] - '0');
        }
        if (v == 0 || v > 65535)
                return false;
        *out = (unsigned short)v;
        return true;
}

/* Splits "host:port", "[v6]:port" or (without a port, when dflt is set)
 * "host" / "[v6]" into host and port; false when malformed. */
static bool split_host_port(const char *s, size_t n, unsigned short dflt, char *host,
                            size_t host_size, unsigned short *port)
{
        const char *colon = NULL;
        const char *h = s;
        size_t hl = 0;
        if (n && s[0] == '[') {
                const char *close = memchr(s, ']', n);
                if (!close)
                        return false;
                h = s + 1;
                hl = (size_t)(close - h);
                colon = close + 1 < s + n ? close + 1 : NULL;
                if (colon && *colon != ':')
                        return false;
        } else {
                for (size_t i = 0; i < n; i++)
                        if (s[i] == ':')
                                colon = s + i;
                hl = colon ? (size_t)(colon - s) : n;
                if (memchr(s, ':', hl)) /* IPv6 needs its brackets */
                        return false;
        }
        if (hl == 0 || hl >= host_size)
                return false;
        memcpy(host, h, hl);
        host[hl] = '\0';
        if (!colon) {
                *port = dflt;
                return dflt != 0;
        }
        return parse_port(colon + 1, (size_t)(s + n - colon - 1), port);
}

int kiln_net_ports_add(struct kiln_net_ports *p, const char *host_port, struct kiln_err **err)
{
        char host[256];
        unsigned short port = 0;
        if (!split_host_port(host_port, strlen(host_port), 0, host, sizeof(host), &port))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "--allow-host %s: want HOST:PORT or [IPV6]:PORT (PORT from 1 "
                                    "to 65535)",
                                    host_port);
        if (!add_loopback(p, host, port))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "--allow-host %s: HOST must be a loopback address "
                                    "(127.0.0.0/8, [::1] or localhost); other hosts are "
                                    "reachable with --network private anyway",
                                    host_port);
        return 0;
}

void kiln_net_ports_add_urls(struct kiln_net_ports *p, const char *text)
{
        static const struct {
                const char *scheme;
                unsigned short port;
        } schemes[] = {{"http://", 80}, {"https://", 443}};
        for (const char *s = text; s && *s; s++) {
                for (size_t k = 0; k < 2; k++) {
                        size_t sl = strlen(schemes[k].scheme);
                        if (strncasecmp(s, schemes[k].scheme, sl) != 0)
                                continue;
                        const char *a = s + sl;
                        size_t n = strcspn(a, "/?#\\ \t\r\n\"'");
                        /* user:password@ is never looked at beyond its end */
                        const char *at = NULL;
                        for (size_t i = 0; i < n; i++)
                                if (a[i] == '@')
                                        at = a + i;
                        if (at) {
                                n -= (size_t)(at + 1 - a);
                                a = at + 1;
                        }
                        char host[256];
                        unsigned short port = 0;
                        if (split_host_port(a, n, schemes[k].port, host, sizeof(host), &port))
                                (void)add_loopback(p, host, port);
                        s = a + n - 1;
                        break;
                }
        }
}

void kiln_net_ports_add_all(struct kiln_net_ports *p, const struct kiln_net_ports *from)
{
        for (size_t i = 0; from && i < from->n; i++)
                add_one(p, from->v[i].addr, from->v[i].port);
}
