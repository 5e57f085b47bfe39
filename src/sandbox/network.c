/* A run's network namespace.
 *
 * private and none: the keeper unshares a network namespace of its own, so
 * the build sees neither the host's interfaces (no traffic to capture), nor
 * its loopback services, nor its abstract unix sockets (those belong to a
 * network namespace). It brings up loopback and listens, inside that
 * namespace, on each forwarded loopback port (the spec's index URLs and
 * --allow-host), handing the listening sockets to kiln over a socket pair.
 * kiln, still in the host's namespace, then
 *  - (private) starts slirp4netns on the keeper's namespace: a user-mode
 *    TCP/IP stack whose sockets are kiln's own, in the host's namespace,
 *    with --disable-host-loopback so 10.0.2.2 does not lead back to the
 *    host's 127.0.0.1; it serves DNS at 10.0.2.3;
 *  - starts the forwarder: it accepts on those sockets and relays each
 *    connection to the same address and port on the host;
 * and tells the keeper to go on. slirp4netns joins the namespace with
 * setns, for which root of the user namespace that owns it is enough: kiln
 * is that in every mode (real root, or root of kiln_userns_enter's
 * namespace), which is also how rootless podman runs it.
 *
 * host: nothing here; the build shares the host's network namespace. */
#include "kiln/sandbox.h"
#include "sandbox-internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define NET_FDS_MAX 64
/* slirp4netns is ready in milliseconds; a loaded machine may take seconds */
#define SLIRP_READY_MS (120 * 1000)
#define SLIRP_LOG_MAX  4096

int kiln_sandbox_net_clone_flags(const struct sb_net *n)
{
        return n->mode == KILN_NETWORK_HOST ? 0 : CLONE_NEWNET;
}

int kiln_sandbox_net_prepare(struct sb_net *n, const struct kiln_sandbox_opts *o,
                             const char *scratch, struct kiln_err **err)
{
        n->mode = o->network;
        n->ports = o->ports;
        n->opts = *o;
        /* kiln's own function (o->fn) reaches nothing: a namespace of its
         * own, without the user-mode stack or forwarder it would not use */
        if (o->fn && n->mode != KILN_NETWORK_HOST) {
                n->mode = KILN_NETWORK_NONE;
                n->ports = NULL;
        }
        if (n->mode == KILN_NETWORK_HOST)
                return 0;
        if (o->ports && o->ports->n > NET_FDS_MAX)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "network: %zu forwarded ports, at most %d", o->ports->n,
                                    NET_FDS_MAX);
        if (n->mode == KILN_NETWORK_PRIVATE) {
                n->slirp_path = kiln_sandbox_find_tool("slirp4netns");
                if (!n->slirp_path)
                        return kiln_err_set(err, KILN_ERR_USAGE, ENOENT,
                                            "network: slirp4netns not found (install Debian's "
                                            "slirp4netns package, or build with --network host "
                                            "or --network none)");
                /* the user-mode stack's DNS; the host's resolver may well be
                 * on its loopback, out of reach */
                static const char resolv[] = "nameserver 10.0.2.3\n";
                n->resolv_conf = kiln_xasprintf("%s/resolv.conf", scratch);
                n->log = kiln_xasprintf("%s/slirp4netns.log", scratch);
                if (kiln_write_file_atomic(n->resolv_conf, resolv, sizeof(resolv) - 1, 0644, err) <
                    0)
                        return kiln_err_prefix(err, "network");
                n->binds = kiln_xcalloc(o->n_binds + 1, sizeof(*n->binds));
                if (o->n_binds)
                        memcpy(n->binds, o->binds, o->n_binds * sizeof(*n->binds));
                n->binds[o->n_binds] = (struct kiln_bind){
                    .source = n->resolv_conf, .target = "/etc/resolv.conf", .readonly = true};
                n->opts.binds = n->binds;
                n->opts.n_binds = o->n_binds + 1;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, n->chan) < 0)
                return kiln_err_sys(err, "network: socketpair");
        return 0;
}

/* ---------- the keeper's side ---------- */

static int loopback_up(struct kiln_err **err)
{
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return kiln_err_sys(err, "network: socket");
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return kiln_err_sys(err, "network: loopback flags");
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
                return kiln_err_sys(err, "network: bring up loopback");
        return 0;
}

/* ICMP echo sockets for every group of the step's namespace, as Podman
 * sets them: without CAP_NET_RAW, ping needs them, and a new namespace
 * starts with the kernel's "1 0" (none). The widest range the id map
 * holds: all of them as root, only gid 0 in a single-id namespace. Not
 * fatal: a kernel that refuses leaves ping as it was. */
static void ping_groups_allow(void)
{
        static const char *const ranges[] = {"0 2147483647\n", "0 65535\n", "0 0\n"};
        _cleanup_close_ int fd = open("/proc/sys/net/ipv4/ping_group_range", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
                if (write(fd, ranges[i], strlen(ranges[i])) >= 0)
                        return;
}

/* A sockaddr for a forwarded port; its length, 0 when addr is not numeric. */
static socklen_t port_sockaddr(const struct kiln_net_port *p, struct sockaddr_storage *ss)
{
        memset(ss, 0, sizeof(*ss));
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, p->addr, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons(p->port);
                return sizeof(*a4);
        }
        if (inet_pton(AF_INET6, p->addr, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons(p->port);
                return sizeof(*a6);
        }
        return 0;
}

/* A listening socket for p in the current namespace; -1 with errno set. */
static int listen_on(const struct kiln_net_port *p)
{
        struct sockaddr_storage ss;
        socklen_t len = port_sockaddr(p, &ss);
        if (!len) {
                errno = EINVAL;
                return -1;
        }
        int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return -1;
        int one = 1;
        (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, (struct sockaddr *)&ss, len) < 0 || listen(s, 128) < 0) {
                int saved = errno;
                close(s);
                errno = saved;
                return -1;
        }
        return s;
}

/* Sends the listening sockets and which port each is: data is their
 * indexes into the port list, the fds ride along. */
static int send_listeners(int chan, const uint16_t *idx, const int *fds, size_t n)
{
        uint16_t none = UINT16_MAX;
        struct iovec iov = {.iov_base = n ? (void *)idx : &none,
                            .iov_len = n ? n * sizeof(*idx) : sizeof(none)};
        union {
                char buf[CMSG_SPACE(NET_FDS_MAX * sizeof(int))];
                struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof(u));
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        if (n) {
                m.msg_control = u.buf;
                m.msg_controllen = CMSG_SPACE(n * sizeof(int));
                struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(n * sizeof(int));
                memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
        }
        return sendmsg(chan, &m, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int kiln_sandbox_net_enter(struct sb_net *n, struct kiln_err **err)
{
        if (n->mode == KILN_NETWORK_HOST)
                return 0;
        close(n->chan[0]);
        n->chan[0] = -1;
        if (loopback_up(err) < 0)
                return -1;
        ping_groups_allow();
        uint16_t idx[NET_FDS_MAX];
        int fds[NET_FDS_MAX];
        size_t k = 0;
        for (size_t i = 0; n->ports && i < n->ports->n && k < NET_FDS_MAX; i++) {
                int s = listen_on(&n->ports->v[i]);
                if (s < 0) {
                        /* a namespace without IPv6 still serves the IPv4 half
                         * of "localhost" */
                        if (strchr(n->ports->v[i].addr, ':') &&
                            (errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT))
                                continue;
                        return kiln_err_sys(err, "network: listen on %s port %u",
                                            n->ports->v[i].addr, (unsigned)n->ports->v[i].port);
                }
                idx[k] = (uint16_t)i;
                fds[k++] = s;
        }
        int rc = send_listeners(n->chan[1], idx, fds, k);
        int saved = errno;
        for (size_t i = 0; i < k; i++)
                close(fds[i]);
        if (rc < 0) {
                errno = saved;
                return kiln_err_sys(err, "network: hand over the forwarded ports");
        }
        char go = 0;
        ssize_t r;
        while ((r = read(n->chan[1], &go, 1)) < 0 && errno == EINTR)
                ;
        close(n->chan[1]);
        n->chan[1] = -1;
        if (r != 1)
                return kiln_err_set(err, KILN_ERR_SYSTEM, 0, "network: kiln did not set it up");
        return 0;
}

/* ---------- kiln's side ---------- */

/* Closes every fd from 3 on but the keep[] ones (ascending). In a child
 * about to exec or to serve: nothing of kiln's may stay open in it. */
static void close_all_but(const int *keep, size_t n)
{
        unsigned int from = 3;
        for (size_t i = 0; i < n; i++) {
                if ((unsigned int)keep[i] > from)
                        close_range(from, (unsigned int)keep[i] - 1, 0);
                from = (unsigned int)keep[i] + 1;
        }
        close_range(from, ~0U, 0);
}

static int int_cmp(const void *a, const void *b)
{
        return *(const int *)a - *(const int *)b;
}

/* Copies from one socket to the other until EOF, then passes the EOF on. */
static void copy_until_eof(int from, int to)
{
        char buf[65536];
        for (;;) {
                ssize_t r = read(from, buf, sizeof(buf));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0 || kiln_write_all(to, buf, (size_t)r) < 0)
                        break;
        }
        shutdown(to, SHUT_WR);
}

/* One connection: connects to the host's port and relays both ways, one
 * process per direction so neither blocks the other. */
static _Noreturn void relay(int conn, const struct kiln_net_port *p)
{
        struct sockaddr_storage ss;
        socklen_t len = port_sockaddr(p, &ss);
        int up = len ? socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
        if (up < 0)
                _exit(1);
        int rc;
        while ((rc = connect(up, (struct sockaddr *)&ss, len)) < 0 && errno == EINTR)
                ;
        if (rc < 0)
                _exit(1); /* the build's client sees the connection closed */
        pid_t back = fork();
        if (back == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                copy_until_eof(up, conn);
                _exit(0);
        }
        copy_until_eof(conn, up);
        if (back > 0)
                while (waitpid(back, NULL, 0) < 0 && errno == EINTR)
                        ;
        _exit(0);
}

static _Noreturn void forward(const struct sb_net *n, const uint16_t *idx, int *fds, size_t k)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGCHLD, SIG_IGN); /* connections are reaped by the kernel */
        signal(SIGPIPE, SIG_IGN);
        int keep[NET_FDS_MAX + 1];
        memcpy(keep, fds, k * sizeof(int));
        qsort(keep, k, sizeof(int), int_cmp);
        close_all_but(keep, k);
        struct pollfd pf[NET_FDS_MAX];
        for (size_t i = 0; i < k; i++)
                pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        for (;;) {
                if (poll(pf, k, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                for (size_t i = 0; i < k; i++) {
                        if (!pf[i].revents)
                                continue;
                        int c = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
                        if (c < 0)
                                continue;
                        pid_t pid = fork();
                        if (pid == 0) {
                                prctl(PR_SET_PDEATHSIG, SIGKILL);
                                for (size_t j = 0; j < k; j++)
                                        close(fds[j]);
                                relay(c, &n->ports->v[idx[i]]);
                        }
                        close(c);
                }
        }
}

/* Receives the keeper's listening sockets: their count, 0 with *eof when
 * the keeper ended first. */
static int recv_listeners(int chan, size_t n_ports, uint16_t *idx, int *fds, size_t *k, bool *eof,
                          struct kiln_err **err)
{
        union {
                char buf[CMSG_SPACE(NET_FDS_MAX * sizeof(int))];
                struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = idx, .iov_len = NET_FDS_MAX * sizeof(*idx)};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = u.buf,
                           .msg_controllen = sizeof(u.buf)};
        ssize_t r;
        while ((r = recvmsg(chan, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return kiln_err_sys(err, "network: receive the forwarded ports");
        *eof = r == 0;
        *k = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        *k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        memcpy(fds, CMSG_DATA(cm), *k * sizeof(int));
                }
        /* no sockets: one UINT16_MAX */
        size_t want = r == sizeof(*idx) && idx[0] == UINT16_MAX ? 0 : (size_t)r / sizeof(*idx);
        bool bad = !*eof && *k != want;
        for (size_t i = 0; i < *k; i++)
                bad = bad || idx[i] >= n_ports;
        if (bad) {
                for (size_t i = 0; i < *k; i++)
                        close(fds[i]);
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "network: the forwarded ports came without their sockets");
        }
        return 0;
}

/* The tail of slirp4netns's log, for an error message. */
static char *slirp_log(const struct sb_net *n)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_read_file(n->log, SLIRP_LOG_MAX, &b, &e) < 0 || !b.data || !b.len)
                return kiln_xstrdup("no output");
        while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
                b.data[--b.len] = '\0';
        for (size_t i = 0; i < b.len; i++)
                if (b.data[i] == '\n')
                        b.data[i] = ';';
        return kiln_buf_steal(&b);
}

static _Noreturn void exec_slirp(const struct sb_net *n, pid_t keeper, int ready, int exitfd)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int log = open(n->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        /* above every fd the dup2s below may overwrite */
        int r = fcntl(ready, F_DUPFD_CLOEXEC, 10), x = fcntl(exitfd, F_DUPFD_CLOEXEC, 10);
        if (log < 0 || null < 0 || r < 0 || x < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
            dup2(log, 2) < 0 || dup2(r, 3) < 0 || dup2(x, 4) < 0)
                _exit(127);
        close_range(5, ~0U, 0);
        char pid[24];
        snprintf(pid, sizeof(pid), "%d", (int)keeper);
        /* --enable-sandbox: its own mount namespace with nothing but what
         * it needs; --enable-seccomp: a syscall filter. It parses every
         * packet the build sends, as root of kiln's user namespace. */
        char *const argv[] = {n->slirp_path,
                              "--configure",
                              "--mtu=65520",
                              "--disable-host-loopback",
                              "--enable-sandbox",
                              "--enable-seccomp",
                              "--ready-fd=3",
                              "--exit-fd=4",
                              pid,
                              "tap0",
                              NULL};
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
}

/* Starts slirp4netns on the keeper's namespace and waits until it has
 * configured it. */
static int start_slirp(struct sb_net *n, pid_t keeper, struct kiln_err **err)
{
        _cleanup_pipe_ int ready[2] = {-1, -1};
        _cleanup_pipe_ int ex[2] = {-1, -1};
        if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0)
                return kiln_err_sys(err, "network: pipe");
        n->slirp = fork();
        if (n->slirp < 0)
                return kiln_err_sys(err, "network: fork");
        if (n->slirp == 0)
                exec_slirp(n, keeper, ready[1], ex[0]);
        n->slirp_exit = ex[1];
        ex[1] = -1;
        close(ready[1]);
        ready[1] = -1;
        struct pollfd pf = {.fd = ready[0], .events = POLLIN};
        int rc;
        while ((rc = poll(&pf, 1, SLIRP_READY_MS)) < 0 && errno == EINTR)
                ;
        char c = 0;
        if (rc > 0 && read(ready[0], &c, 1) == 1 && c == '1')
                return 0;
        _cleanup_free_ char *log = slirp_log(n);
        return kiln_err_set(err, KILN_ERR_SYSTEM, 0, "network: slirp4netns %s: %s",
                            rc == 0 ? "was not ready in time" : "failed", log);
}

int kiln_sandbox_net_start(struct sb_net *n, pid_t keeper, struct kiln_err **err)
{
        if (n->mode == KILN_NETWORK_HOST)
                return 0;
        close(n->chan[1]);
        n->chan[1] = -1;
        uint16_t idx[NET_FDS_MAX];
        int fds[NET_FDS_MAX];
        size_t k = 0;
        bool eof = false;
        if (recv_listeners(n->chan[0], n->ports ? n->ports->n : 0, idx, fds, &k, &eof, err) < 0)
                return -1;
        if (eof)
                return 0;
        if (k) {
                n->forwarder = fork();
                if (n->forwarder == 0)
                        forward(n, idx, fds, k);
        }
        int saved = errno;
        for (size_t i = 0; i < k; i++)
                close(fds[i]);
        if (n->forwarder < 0 && k) {
                errno = saved;
                return kiln_err_sys(err, "network: fork");
        }
        if (n->mode == KILN_NETWORK_PRIVATE && start_slirp(n, keeper, err) < 0)
                return -1;
        /* a keeper that ended meanwhile: its report says why */
        (void)send(n->chan[0], "g", 1, MSG_NOSIGNAL);
        close(n->chan[0]);
        n->chan[0] = -1;
        return 0;
}

void kiln_sandbox_net_release(struct sb_net *n)
{
        for (int i = 0; i < 2; i++)
                if (n->chan[i] >= 0)
                        close(n->chan[i]);
        if (n->slirp_exit >= 0)
                close(n->slirp_exit);
        kiln_sandbox_killp(&n->forwarder);
        kiln_sandbox_killp(&n->slirp);
        free(n->resolv_conf);
        free(n->log);
        free(n->slirp_path);
        free(n->binds);
        *n = (struct sb_net)SB_NET_INIT;
}
