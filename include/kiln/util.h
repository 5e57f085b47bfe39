/* kiln util: errors, cleanup helpers, buffers, logging, files, digests.
 *
 * Every fallible function returns int (0 ok, -1 error) and fills a
 * struct kiln_err ** exactly once; callers add context with kiln_err_prefix
 * while the error travels up, and only main prints it. */
#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---------- errors ---------- */

/* The domain decides the process exit code (see kiln_err_exit_code and
 * `kiln --help`). */
enum kiln_err_domain {
        KILN_ERR_INTERNAL = 1, /* bug or unexpected failure */
        KILN_ERR_USAGE,        /* bad command line or reference */
        KILN_ERR_SYSTEM,       /* a system call failed; code is errno */
        KILN_ERR_NOT_FOUND,    /* image, tag, blob or platform does not exist */
        KILN_ERR_AUTH,         /* credentials missing or refused */
        KILN_ERR_NETWORK,      /* connection, TLS, or an unexpected HTTP status */
        KILN_ERR_DIGEST,       /* content does not match its digest */
        KILN_ERR_FORMAT,       /* malformed manifest, config, JSON, archive */
        KILN_ERR_SPEC,         /* invalid ImageSpec */
        KILN_ERR_BUILD,        /* a build step failed */
};

struct kiln_err {
        enum kiln_err_domain domain;
        int code; /* errno for SYSTEM, HTTP status for NETWORK/AUTH/NOT_FOUND, else 0 */
        char *msg;
};

/* All return -1 so callers can write `return kiln_err_set(...)`. Setting an
 * error when *err is already set keeps the first one (it is the cause). */
__attribute__((format(printf, 4, 5))) int
kiln_err_set(struct kiln_err **err, enum kiln_err_domain domain, int code, const char *fmt, ...);
/* Uses errno as the code and appends strerror(errno). */
__attribute__((format(printf, 2, 3))) int kiln_err_sys(struct kiln_err **err, const char *fmt, ...);
/* Prepends "context: " to the message. No-op when err is NULL or unset. */
__attribute__((format(printf, 2, 3))) int kiln_err_prefix(struct kiln_err **err, const char *fmt,
                                                          ...);
void kiln_err_free(struct kiln_err *e);
void kiln_err_clear(struct kiln_err **err);
int kiln_err_exit_code(const struct kiln_err *e);
const char *kiln_err_domain_name(enum kiln_err_domain d);

/* ---------- cleanup helpers ---------- */

#define steal_pointer(pp)                                                                          \
        ({                                                                                         \
                __typeof__(*(pp)) _stolen = *(pp);                                                 \
                *(pp) = NULL;                                                                      \
                _stolen;                                                                           \
        })
#define steal_fd(fdp)                                                                              \
        ({                                                                                         \
                int _fd = *(fdp);                                                                  \
                *(fdp) = -1;                                                                       \
                _fd;                                                                               \
        })

void kiln_freep(void *p);
void kiln_closep(int *fd);
void kiln_fclosep(FILE **f);
void kiln_err_freep(struct kiln_err **e);
void kiln_strv_freep(char ***v);

#define _cleanup_(f)     __attribute__((cleanup(f)))
#define _cleanup_free_   _cleanup_(kiln_freep)
#define _cleanup_close_  _cleanup_(kiln_closep)
#define _cleanup_fclose_ _cleanup_(kiln_fclosep)
#define _cleanup_err_    _cleanup_(kiln_err_freep)
#define _cleanup_strv_   _cleanup_(kiln_strv_freep)

/* closedir at scope exit. Like kiln_closep it keeps errno: a function that
 * reports through errno returns before its descriptors are closed. */
void kiln_closedirp(DIR **d);
#define _cleanup_closedir_ _cleanup_(kiln_closedirp)

/* ---------- memory and strings ---------- */

/* Abort on out-of-memory: kiln cannot do anything useful without memory and
 * threading ENOMEM through every string operation hides real errors. */
void *kiln_xmalloc(size_t n);
void *kiln_xcalloc(size_t n, size_t m);
void *kiln_xrealloc(void *p, size_t n);
char *kiln_xstrdup(const char *s);
char *kiln_xstrndup(const char *s, size_t n);
__attribute__((format(printf, 1, 2))) char *kiln_xasprintf(const char *fmt, ...);
char *kiln_xvasprintf(const char *fmt, va_list ap);

bool kiln_str_has_prefix(const char *s, const char *prefix);
bool kiln_str_has_suffix(const char *s, const char *suffix);
bool kiln_str_case_prefix(const char *s, const char *prefix);
size_t kiln_strv_len(char *const *v);
/* The value of the last "name=value" among v[0..n), or NULL: a later
 * entry overrides an earlier one, as in an environment. */
const char *kiln_strv_lookup(char *const *v, size_t n, const char *name);
void kiln_strv_free(char **v);
/* True for localhost, 127.0.0.0/8 and ::1 (any port), host_port being
 * "host", "host:port", "[v6]:port" or a bare IPv6 address: Docker allows
 * plain HTTP to these without configuration. */
bool kiln_host_is_loopback(const char *host_port);

/* Growable byte buffer; data is always NUL-terminated for convenience. */
struct kiln_buf {
        char *data;
        size_t len;
        size_t cap;
};
void kiln_buf_append(struct kiln_buf *b, const void *p, size_t n);
void kiln_buf_puts(struct kiln_buf *b, const char *s);
/* Appends p[0..n) with the user information of every URL in it
 * (scheme://USER:PASSWORD@host) replaced by "***": a requirement, an
 * index URL or a program's output may carry credentials, which must not
 * reach a log line or an image's history. */
void kiln_buf_put_redacted(struct kiln_buf *b, const char *p, size_t n);
__attribute__((format(printf, 2, 3))) void kiln_buf_printf(struct kiln_buf *b, const char *fmt,
                                                           ...);
/* Appends s single-quoted for /bin/sh ('it'\''s'). */
void kiln_buf_shell_quote(struct kiln_buf *b, const char *s);
void kiln_buf_release(struct kiln_buf *b);
char *kiln_buf_steal(struct kiln_buf *b);
void kiln_buf_releasep(struct kiln_buf *b);
#define _cleanup_buf_ _cleanup_(kiln_buf_releasep)

/* ---------- files ---------- */

/* Reads a whole file, refusing files larger than max bytes. */
int kiln_read_file(const char *path, size_t max, struct kiln_buf *out, struct kiln_err **err);
int kiln_read_fd(int fd, const char *what, size_t max, struct kiln_buf *out, struct kiln_err **err);
/* Writes data to path atomically: temp file in the same directory, fsync,
 * rename. Readers see the old content or the new, never a torn file. */
int kiln_write_file_atomic(const char *path, const void *data, size_t len, int mode,
                           struct kiln_err **err);
int kiln_write_all(int fd, const void *data, size_t len);
int kiln_mkdir_p(const char *path, int mode, struct kiln_err **err);
/* Removes a tree without following symlinks. ENOENT is not an error. */
int kiln_rm_rf(const char *path, struct kiln_err **err);
/* The names in directory dirfd (without "." and ".."), in readdir order,
 * NULL-terminated; dirfd stays open and unchanged. `what` names the
 * directory in errors. */
int kiln_dir_names(int dirfd, const char *what, char ***names, size_t *n, struct kiln_err **err);
/* openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS and O_CLOEXEC:
 * path (leading slashes dropped, "" for the root) resolved as if rootfd
 * were "/". Retries EAGAIN, which the kernel returns when any mount or
 * rename on the system raced a ".." lookup (parallel builds do both);
 * -1 with ENOSYS on kernels before 5.6. */
int kiln_open_in_root(int rootfd, const char *path, int flags);
/* Opens (creating) path and takes an exclusive flock on it, waiting for
 * any holder; *fd holds the lock until closed. */
int kiln_lock_file(const char *path, int *fd, struct kiln_err **err);
/* Makes a unique temporary sibling path of `path` ("path.tmp-XXXXXX"). */
char *kiln_tmp_sibling(const char *path);

/* ---------- digests ---------- */

#define KILN_SHA256_HEX_LEN 64
#define KILN_DIGEST_MAX     (7 + KILN_SHA256_HEX_LEN + 1) /* "sha256:" + hex + NUL */
#define KILN_HEX_MAX        (KILN_SHA256_HEX_LEN + 1)     /* bare hex (a cache key) + NUL */

struct kiln_sha256; /* opaque streaming hasher */
struct kiln_sha256 *kiln_sha256_new(void);
void kiln_sha256_update(struct kiln_sha256 *h, const void *p, size_t n);
/* Writes "sha256:<hex>" into out (KILN_DIGEST_MAX bytes). */
void kiln_sha256_final(struct kiln_sha256 *h, char out[KILN_DIGEST_MAX]);
void kiln_sha256_free(struct kiln_sha256 *h);
void kiln_sha256_freep(struct kiln_sha256 **h);
#define _cleanup_sha256_ _cleanup_(kiln_sha256_freep)
void kiln_sha256_digest(const void *p, size_t n, char out[KILN_DIGEST_MAX]);
int kiln_sha256_file(const char *path, char out[KILN_DIGEST_MAX], struct kiln_err **err);

/* Validates "algorithm:encoded" as the OCI image spec defines digests; only
 * sha256 (64 lowercase hex) and sha512 (128) are accepted. */
int kiln_digest_validate(const char *digest, struct kiln_err **err);
/* Returns the hex part of a valid digest (pointer into digest). */
const char *kiln_digest_hex(const char *digest);

/* ---------- logging and progress ---------- */

enum kiln_log_level { KILN_LOG_QUIET = 0, KILN_LOG_INFO = 1, KILN_LOG_DEBUG = 2 };
void kiln_log_set_level(enum kiln_log_level l);
enum kiln_log_level kiln_log_get_level(void);
/* Informational lines to stderr (suppressed by -q). */
__attribute__((format(printf, 1, 2))) void kiln_info(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void kiln_warn(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void kiln_debug(const char *fmt, ...);

/* Human-readable sizes ("12.3 MiB"); writes into buf of n bytes. */
const char *kiln_human_size(uint64_t bytes, char *buf, size_t n);
/* "90s", "10m", "1h30m", "500ms", "2d" or a bare number of seconds, into
 * milliseconds; "0" is zero. A usage error quoting s otherwise. */
int kiln_duration_parse(const char *s, uint64_t *ms, struct kiln_err **err);
/* The shortest such text for ms ("1m30s"). Caller frees. */
char *kiln_duration_format(uint64_t ms);
/* Monotonic clock in nanoseconds. */
uint64_t kiln_now_ns(void);
/* CPUs this process may run on (affinity and cgroup cpusets honoured). */
int kiln_cpu_count(void);
/* Text put before every log line of this process ("" by default): which
 * of several builds running side by side a line belongs to. Also used by
 * whatever prints lines for the process (sandboxed commands' output). */
void kiln_log_set_prefix(const char *prefix);
const char *kiln_log_prefix(void);

/* ---------- progress events ---------- */

/* What a build reports as it goes. Without a sink (the default, and what
 * scripts and tests read) each event's text is printed as it always was;
 * `kiln build --progress` sets a sink that renders them (src/cli/progress*.c).
 * A sink is called from any thread and from forked builds: it must be
 * thread-safe and write whole lines. */
enum kiln_event_kind {
        KILN_EVENT_LOG,          /* a kiln_info/kiln_warn/kiln_debug line: text, level */
        KILN_EVENT_OUTPUT,       /* a line the running step's program printed: text */
        KILN_EVENT_BUILD,        /* a build starts: image, platform */
        KILN_EVENT_STEP_START,   /* step, step_kind, desc, key, cached, cached_in */
        KILN_EVENT_STEP_END,     /* step, step_kind, cached, duration_ns, status, error */
        KILN_EVENT_TRANSFER,     /* verb, digest, done, total, elapsed_ns */
        KILN_EVENT_TRANSFER_END, /* ... and state: done, cached, pushed, exists, mounted, failed */
};

struct kiln_event {
        enum kiln_event_kind kind;
        const char *text;  /* the line as printed without a sink (no newline); may be NULL */
        const char *label; /* OUTPUT: what goes before text ("[apt] ", a build's prefix) */
        const char *level; /* LOG: "info", "warning" or "debug" */
        const char *image, *platform;
        size_t step; /* 1-based within its build */
        const char *step_kind, *desc, *key;
        bool cached;
        const char *cached_in; /* a registry cache's name, or NULL */
        uint64_t duration_ns;
        int status; /* STEP_END: 0, a program's exit status, or -1 (kiln's own failure) */
        const char *error;
        const char *verb, *digest, *state;
        uint64_t done;
        int64_t total; /* -1: unknown */
        uint64_t elapsed_ns;
};

typedef void (*kiln_event_fn)(const struct kiln_event *ev, void *arg);
/* fn NULL: back to printing each event's text. */
void kiln_event_set_sink(kiln_event_fn fn, void *arg);
bool kiln_event_has_sink(void);
void kiln_event_emit(const struct kiln_event *ev);
/* A line of a step's program (label "[apt] ", text without newline): to
 * the sink, or straight to stderr with the label. */
void kiln_event_output(const char *label, const char *text, size_t n);

#endif
