/* Host names: what kiln decides from a host[:port] string alone. */
#include "kiln/util.h"

#include <arpa/inet.h>
#include <string.h>

bool kiln_host_is_loopback(const char *host_port)
{
        if (!host_port || !*host_port)
                return false;
        _cleanup_free_ char *host = NULL;
        if (host_port[0] == '[') {
                const char *close = strchr(host_port, ']');
                if (!close)
                        return false;
                host = kiln_xstrndup(host_port + 1, (size_t)(close - host_port - 1));
        } else {
                const char *colon = strchr(host_port, ':');
                /* More than one colon and no brackets: a bare IPv6 address. */
                if (colon && !strchr(colon + 1, ':'))
                        host = kiln_xstrndup(host_port, (size_t)(colon - host_port));
                else
                        host = kiln_xstrdup(host_port);
        }
        if (!strcasecmp(host, "localhost"))
                return true;
        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6) ||
                       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
        return false;
}
