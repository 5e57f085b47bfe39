/* user: the `flytekit` user that flytekit's default builder creates
 * (`id -u flytekit || useradd --create-home --shell /bin/bash flytekit`,
 * then `chown -R flytekit /root /home`), and at the end of the build
 * `WORKDIR /root` and `USER flytekit`.
 *
 * The account is made by kiln's own code in the sandbox, following
 * shadow-utils' useradd (login.defs ranges, a user group of the same id
 * where free, /etc/skel copied into the home), rather than by running the
 * image's useradd: busybox and distroless bases have none, and a spec for
 * another architecture that only copies files then needs no emulation. */
#include "kiln/step.h"
#include "python-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLYTEKIT_USER "flytekit"
#define FLYTEKIT_HOME "/home/" FLYTEKIT_USER
#define ACCOUNTS_MAX  ((size_t)4 << 20)
#define SKEL_DEPTH    32

struct login_defs {
        unsigned long uid_min, uid_max, gid_min, gid_max;
        mode_t home_mode;
};

struct user_job {
        long days; /* shadow's "last password change", days since 1970 */
};

static bool wanted(const struct kiln_spec *s)
{
        (void)s;
        return true;
}

static char *describe(const struct kiln_spec *s)
{
        (void)s;
        return kiln_xstrdup("id -u " FLYTEKIT_USER
                            " || useradd --create-home --shell /bin/bash " FLYTEKIT_USER
                            "; chown -R " FLYTEKIT_USER " /root /home");
}

static int read_db(const char *path, struct kiln_buf *b, bool *exists, struct kiln_err **err)
{
        *exists = false;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : kiln_err_sys(err, "open %s", path);
        *exists = true;
        return kiln_read_fd(fd, path, ACCOUNTS_MAX, b, err);
}

/* The "KEY VALUE" lines of /etc/login.defs that useradd reads; a file
 * that is missing or unreadable changes nothing. */
static void parse_login_defs(struct login_defs *d, mode_t *umask_v, bool *home_mode_set)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *e = NULL;
        bool exists = false;
        if (read_db("/etc/login.defs", &b, &exists, &e) < 0 || !b.data)
                return;
        for (char *line = b.data; line && *line;) {
                char *next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char key[32];
                char val[32];
                if (line[0] != '#' && sscanf(line, "%31s %31s", key, val) == 2) {
                        unsigned long v = strtoul(val, NULL, 0);
                        if (!strcmp(key, "UID_MIN"))
                                d->uid_min = v;
                        else if (!strcmp(key, "UID_MAX"))
                                d->uid_max = v;
                        else if (!strcmp(key, "GID_MIN"))
                                d->gid_min = v;
                        else if (!strcmp(key, "GID_MAX"))
                                d->gid_max = v;
                        else if (!strcmp(key, "UMASK"))
                                *umask_v = (mode_t)strtoul(val, NULL, 8) & 0777;
                        else if (!strcmp(key, "HOME_MODE")) {
                                d->home_mode = (mode_t)strtoul(val, NULL, 8) & 07777;
                                *home_mode_set = true;
                        }
                }
                line = next;
        }
}

/* login.defs: what is missing keeps useradd's default. */
static void read_login_defs(struct login_defs *d)
{
        *d = (struct login_defs){1000, 60000, 1000, 60000, 0};
        mode_t umask_v = 022;
        bool home_mode_set = false;
        parse_login_defs(d, &umask_v, &home_mode_set);
        if (!home_mode_set)
                d->home_mode = 0777 & ~umask_v;
}

/* Walks the "name:x:id:..." lines of a passwd or group file: the next
 * well-formed one's name and id; false at the end. */
static bool next_entry(const char **cur, const char **name, size_t *name_len, unsigned long *id)
{
        while (*cur && **cur) {
                const char *line = *cur, *eol = strchr(line, '\n');
                *cur = eol ? eol + 1 : NULL;
                const char *c1 = strchr(line, ':');
                const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2 || (eol && c2 > eol))
                        continue;
                char *end = NULL;
                *id = strtoul(c2 + 1, &end, 10);
                if (end == c2 + 1 || *end != ':')
                        continue;
                *name = line;
                *name_len = (size_t)(c1 - line);
                return true;
        }
        return false;
}

/* The id of NAME's line. */
static bool db_find(const char *text, const char *name, unsigned long *id)
{
        const char *cur = text, *n;
        size_t nl;
        unsigned long v;
        while (next_entry(&cur, &n, &nl, &v))
                if (nl == strlen(name) && !strncmp(n, name, nl)) {
                        *id = v;
                        return true;
                }
        return false;
}

static bool id_used(const char *text, unsigned long id)
{
        const char *cur = text, *n;
        size_t nl;
        unsigned long v;
        while (next_entry(&cur, &n, &nl, &v))
                if (v == id)
                        return true;
        return false;
}

/* shadow-utils' choice: prefer when free, else one above the highest id
 * in use within [min, max], else the lowest free id there. */
static int new_id(const char *text, unsigned long min, unsigned long max, unsigned long prefer,
                  const char *what, unsigned long *out, struct kiln_err **err)
{
        if (prefer >= min && prefer <= max && !id_used(text, prefer)) {
                *out = prefer;
                return 0;
        }
        unsigned long highest = 0, v;
        bool any = false;
        const char *cur = text, *n;
        size_t nl;
        while (next_entry(&cur, &n, &nl, &v))
                if (v >= min && v <= max && (!any || v > highest)) {
                        highest = v;
                        any = true;
                }
        if (!any || highest < max) {
                *out = any ? highest + 1 : min;
                return 0;
        }
        for (v = min; v <= max; v++)
                if (!id_used(text, v)) {
                        *out = v;
                        return 0;
                }
        return kiln_err_set(err, KILN_ERR_BUILD, 0, "no free %s id in %lu..%lu for user %s", what,
                            min, max, FLYTEKIT_USER);
}

/* Appends one line, after a newline if the file does not end in one. The
 * file keeps its mode and owner (shadow files are not world-readable). */
static int append_line(const char *path, const char *line, mode_t create_mode,
                       struct kiln_err **err)
{
        _cleanup_close_ int fd =
            open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, create_mode);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kiln_err_sys(err, "stat %s", path);
        char last = '\n';
        if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
                return kiln_err_sys(err, "read %s", path);
        _cleanup_free_ char *text = kiln_xasprintf("%s%s\n", last == '\n' ? "" : "\n", line);
        if (kiln_write_all(fd, text, strlen(text)) < 0)
                return kiln_err_sys(err, "write %s", path);
        return 0;
}

static int copy_file_at(int sfd, int dfd, const char *name, const struct stat *st, uid_t uid,
                        gid_t gid, struct kiln_err **err)
{
        _cleanup_close_ int in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return kiln_err_sys(err, "open /etc/skel/.../%s", name);
        _cleanup_close_ int out =
            openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
        if (out < 0)
                return kiln_err_sys(err, "create %s/.../%s", FLYTEKIT_HOME, name);
        char buf[65536];
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kiln_err_sys(err, "read /etc/skel/.../%s", name);
                if (n == 0)
                        break;
                if (kiln_write_all(out, buf, (size_t)n) < 0)
                        return kiln_err_sys(err, "write %s/.../%s", FLYTEKIT_HOME, name);
        }
        if (fchown(out, uid, gid) < 0 || fchmod(out, st->st_mode & 07777) < 0)
                return kiln_err_sys(err, "set owner of %s/.../%s", FLYTEKIT_HOME, name);
        return 0;
}

/* useradd --create-home copies /etc/skel: files, directories and symlinks,
 * owned by the new user. */
static int copy_skel(int sfd, int dfd, uid_t uid, gid_t gid, int depth, struct kiln_err **err)
{
        if (depth > SKEL_DEPTH)
                return kiln_err_set(err, KILN_ERR_BUILD, 0, "/etc/skel is nested deeper than %d",
                                    SKEL_DEPTH);
        _cleanup_strv_ char **names = NULL;
        size_t n = 0;
        if (kiln_dir_names(sfd, "/etc/skel", &names, &n, err) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                const char *name = names[i];
                struct stat st;
                if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return kiln_err_sys(err, "stat /etc/skel/.../%s", name);
                if (S_ISDIR(st.st_mode)) {
                        if (mkdirat(dfd, name, st.st_mode & 07777) < 0 && errno != EEXIST)
                                return kiln_err_sys(err, "mkdir %s/.../%s", FLYTEKIT_HOME, name);
                        _cleanup_close_ int s2 =
                            openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int d2 =
                            openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (s2 < 0 || d2 < 0)
                                return kiln_err_sys(err, "open %s", name);
                        if (copy_skel(s2, d2, uid, gid, depth + 1, err) < 0)
                                return -1;
                        if (fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                                return kiln_err_sys(err, "chown %s/.../%s", FLYTEKIT_HOME, name);
                } else if (S_ISLNK(st.st_mode)) {
                        char target[4096];
                        ssize_t len = readlinkat(sfd, name, target, sizeof(target) - 1);
                        if (len < 0)
                                return kiln_err_sys(err, "readlink /etc/skel/.../%s", name);
                        target[len] = '\0';
                        if (symlinkat(target, dfd, name) < 0 ||
                            fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                                return kiln_err_sys(err, "symlink %s/.../%s", FLYTEKIT_HOME, name);
                } else if (S_ISREG(st.st_mode)) {
                        if (copy_file_at(sfd, dfd, name, &st, uid, gid, err) < 0)
                                return -1;
                }
        }
        return 0;
}

static int make_home(const struct login_defs *d, uid_t uid, gid_t gid, struct kiln_err **err)
{
        if (mkdir("/home", 0755) < 0 && errno != EEXIST)
                return kiln_err_sys(err, "mkdir /home");
        if (mkdir(FLYTEKIT_HOME, d->home_mode) < 0) {
                if (errno == EEXIST)
                        return 0; /* useradd leaves an existing home alone */
                return kiln_err_sys(err, "mkdir %s", FLYTEKIT_HOME);
        }
        _cleanup_close_ int dfd = open(FLYTEKIT_HOME, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return kiln_err_sys(err, "open %s", FLYTEKIT_HOME);
        if (fchown(dfd, uid, gid) < 0 || fchmod(dfd, d->home_mode) < 0)
                return kiln_err_sys(err, "set owner of %s", FLYTEKIT_HOME);
        _cleanup_close_ int sfd = open("/etc/skel", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sfd < 0)
                return errno == ENOENT ? 0 : kiln_err_sys(err, "open /etc/skel");
        return copy_skel(sfd, dfd, uid, gid, 0, err);
}

static int add_user(const struct user_job *job, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf passwd = {0}, group = {0};
        bool exists = false;
        if (read_db("/etc/passwd", &passwd, &exists, err) < 0 ||
            read_db("/etc/group", &group, &exists, err) < 0)
                return -1;
        /* useradd writes the shadow files only where the image uses them */
        bool have_shadow = access("/etc/shadow", F_OK) == 0;
        bool have_gshadow = access("/etc/gshadow", F_OK) == 0;
        const char *ptext = passwd.data ? passwd.data : "";
        const char *gtext = group.data ? group.data : "";
        unsigned long uid = 0, gid = 0;
        if (db_find(ptext, FLYTEKIT_USER, &uid))
                return 0; /* id -u flytekit succeeded: nothing to add */

        struct login_defs d;
        read_login_defs(&d);
        bool new_group = !db_find(gtext, FLYTEKIT_USER, &gid);
        if (new_id(ptext, d.uid_min, d.uid_max, new_group ? 0 : gid, "user", &uid, err) < 0)
                return -1;
        if (new_group && new_id(gtext, d.gid_min, d.gid_max, uid, "group", &gid, err) < 0)
                return -1;
        struct stat st;
        const char *shell = lstat("/bin/bash", &st) == 0 ? "/bin/bash" : "/bin/sh";
        _cleanup_free_ char *pline =
            kiln_xasprintf(FLYTEKIT_USER ":x:%lu:%lu::" FLYTEKIT_HOME ":%s", uid, gid, shell);
        if (mkdir("/etc", 0755) < 0 && errno != EEXIST)
                return kiln_err_sys(err, "mkdir /etc");
        if (append_line("/etc/passwd", pline, 0644, err) < 0)
                return -1;
        if (new_group) {
                _cleanup_free_ char *gline = kiln_xasprintf(FLYTEKIT_USER ":x:%lu:", gid);
                if (append_line("/etc/group", gline, 0644, err) < 0)
                        return -1;
                if (have_gshadow &&
                    append_line("/etc/gshadow", FLYTEKIT_USER ":!::", 0640, err) < 0)
                        return -1;
        }
        if (have_shadow) {
                _cleanup_free_ char *sline =
                    kiln_xasprintf(FLYTEKIT_USER ":!:%ld:0:99999:7:::", job->days);
                if (append_line("/etc/shadow", sline, 0640, err) < 0)
                        return -1;
        }
        return make_home(&d, (uid_t)uid, (gid_t)gid, err);
}

static uid_t chown_uid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return lchown(path, chown_uid, (gid_t)-1) < 0 ? errno : 0;
}

/* chown -R flytekit: the owner only, groups stay; symlinks are not
 * followed. */
static int chown_tree(const char *path, uid_t uid, struct kiln_err **err)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : kiln_err_sys(err, "stat %s", path);
        chown_uid = uid;
        int rc = nftw(path, chown_one, 64, FTW_PHYS | FTW_MOUNT);
        if (rc != 0) {
                errno = rc > 0 ? rc : errno;
                return kiln_err_sys(err, "chown -R %s %s", FLYTEKIT_USER, path);
        }
        return 0;
}

static int user_in_sandbox(void *arg, struct kiln_err **err)
{
        const struct user_job *job = arg;
        if (add_user(job, err) < 0)
                return kiln_err_prefix(err, "useradd " FLYTEKIT_USER);
        _cleanup_buf_ struct kiln_buf passwd = {0};
        bool exists = false;
        unsigned long uid = 0;
        if (read_db("/etc/passwd", &passwd, &exists, err) < 0)
                return -1;
        if (!passwd.data || !db_find(passwd.data, FLYTEKIT_USER, &uid))
                return kiln_err_set(err, KILN_ERR_BUILD, 0, "/etc/passwd has no %s after useradd",
                                    FLYTEKIT_USER);
        if (chown_tree("/root", (uid_t)uid, err) < 0 || chown_tree("/home", (uid_t)uid, err) < 0)
                return -1;
        return 0;
}

static int run(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
        struct user_job job = {.days = (long)(t / 86400)};
        _cleanup_free_ char *desc = describe(kiln_step_spec(ctx));
        _cleanup_free_ char *created_by = kiln_xasprintf("RUN %s", desc);
        if (kiln_step_sandbox_fn(ctx, user_in_sandbox, &job, NULL, 0, created_by, err) < 0)
                return -1;
        /* Later steps own their files by the user's ids: recorded with the
         * cached result, so a rebuild knows them without the rootfs. */
        uid_t uid = 0;
        gid_t gid = 0;
        bool found = false;
        if (kiln_step_lookup_user(ctx, FLYTEKIT_USER, &uid, &gid, &found, err) < 0)
                return -1;
        if (!found)
                return kiln_err_set(err, KILN_ERR_BUILD, 0,
                                    "the image has no %s user after the "
                                    "user step",
                                    FLYTEKIT_USER);
        _cleanup_free_ char *ids = kiln_xasprintf("%u:%u", (unsigned)uid, (unsigned)gid);
        kiln_step_set_fact(ctx, "user." FLYTEKIT_USER, ids);
        return 0;
}

static int key(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)err;
        _cleanup_free_ char *d = describe(s);
        /* the shell text stands for kiln's own useradd: bump on changes */
        kiln_buf_printf(b, "%s\nkiln useradd 1\n", d);
        return 0;
}

const struct kiln_step_kind kiln_step_user = {
    .name = "user",
    .wanted = wanted,
    .describe = describe,
    .key = key,
    .run = run,
};

/* ---------- the last config change before _F_IMG_ID ---------- */

static char *describe_config(const struct kiln_spec *s)
{
        (void)s;
        return kiln_xstrdup("WORKDIR /root; SHELL [\"/bin/bash\",\"-c\"]; USER " FLYTEKIT_USER);
}

static int config(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        (void)err;
        kiln_step_set_string(ctx, "WorkingDir", "/root");
        kiln_step_add_history(ctx, "WORKDIR /root");
        char *shell[] = {"/bin/bash", "-c", NULL};
        kiln_step_set_shell(ctx, shell);
        kiln_step_add_history(ctx, "SHELL [\"/bin/bash\",\"-c\"]");
        kiln_step_set_string(ctx, "User", FLYTEKIT_USER);
        kiln_step_add_history(ctx, "USER " FLYTEKIT_USER);
        return 0;
}

const struct kiln_step_kind kiln_step_user_config = {
    .name = "user-config",
    .wanted = wanted,
    .describe = describe_config,
    .config = config,
};

/* ---------- the template's last RUN, as the flytekit user ---------- */

/* `mkdir -p $HOME && echo "export PATH=$PATH" >> $HOME/.profile`, so that
 * a login shell of the flytekit user finds what the image's PATH finds. */

#define PROFILE_STEP "mkdir -p $HOME && echo \"export PATH=$PATH\" >> $HOME/.profile"

struct profile_job {
        const char *line; /* "export PATH=..." */
        const char *home; /* the image's HOME, or NULL: the user's from passwd */
};

/* The flytekit line of /etc/passwd: its ids and home. */
static int passwd_home(const char *text, unsigned long *uid, unsigned long *gid, char **home,
                       struct kiln_err **err)
{
        for (const char *line = text; line && *line;) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t)(eol - line) : strlen(line);
                _cleanup_free_ char *l = kiln_xstrndup(line, len);
                line = eol ? eol + 1 : NULL;
                char *f[7] = {0};
                char *cur = l;
                size_t n = 0;
                for (; n < 7 && cur; n++)
                        f[n] = strsep(&cur, ":");
                if (n < 6 || strcmp(f[0], FLYTEKIT_USER) != 0)
                        continue;
                *uid = strtoul(f[2], NULL, 10);
                *gid = strtoul(f[3], NULL, 10);
                if (f[5][0] != '/')
                        return kiln_err_set(err, KILN_ERR_BUILD, 0,
                                            "/etc/passwd: %s's home \"%s\" is not absolute",
                                            FLYTEKIT_USER, f[5]);
                *home = kiln_xstrdup(f[5]);
                return 0;
        }
        return kiln_err_set(err, KILN_ERR_BUILD, 0, "/etc/passwd has no %s", FLYTEKIT_USER);
}

static int profile_in_sandbox(void *arg, struct kiln_err **err)
{
        const struct profile_job *job = arg;
        _cleanup_buf_ struct kiln_buf passwd = {0};
        bool exists = false;
        if (read_db("/etc/passwd", &passwd, &exists, err) < 0)
                return -1;
        unsigned long uid = 0, gid = 0;
        _cleanup_free_ char *home = NULL;
        if (passwd_home(passwd.data ? passwd.data : "", &uid, &gid, &home, err) < 0)
                return -1;
        const char *dir = job->home ? job->home : home;
        struct stat st;
        if (stat(dir, &st) < 0) {
                /* mkdir -p as the user: what it creates is the user's */
                if (kiln_mkdir_p(dir, 0755, err) < 0)
                        return kiln_err_prefix(err, "mkdir -p %s", dir);
                if (chown(dir, (uid_t)uid, (gid_t)gid) < 0)
                        return kiln_err_sys(err, "chown %s", dir);
        }
        _cleanup_free_ char *profile = kiln_xasprintf("%s/.profile", dir);
        bool created = lstat(profile, &st) < 0;
        if (append_line(profile, job->line, 0644, err) < 0)
                return -1;
        if (created && chown(profile, (uid_t)uid, (gid_t)gid) < 0)
                return kiln_err_sys(err, "chown %s", profile);
        return 0;
}

static int run_profile(struct kiln_step_ctx *ctx, struct kiln_err **err)
{
        const char *path = kiln_step_get_env(ctx, "PATH");
        _cleanup_free_ char *line =
            kiln_xasprintf("export PATH=%s", path ? path : KILN_DEFAULT_PATH);
        /* a HOME the image's env sets is the one the RUN would see */
        const char *home = kiln_step_get_env(ctx, "HOME");
        struct profile_job job = {.line = line, .home = home && home[0] == '/' ? home : NULL};
        return kiln_step_sandbox_fn(ctx, profile_in_sandbox, &job, NULL, 0, "RUN " PROFILE_STEP,
                                    err);
}

static char *describe_profile(const struct kiln_spec *s)
{
        (void)s;
        return kiln_xstrdup(PROFILE_STEP);
}

static int key_profile(const struct kiln_spec *s, struct kiln_buf *b, struct kiln_err **err)
{
        (void)s;
        (void)err;
        /* the PATH it writes comes from the steps before, in the chain */
        kiln_buf_puts(b, PROFILE_STEP "\nkiln profile 1\n");
        return 0;
}

const struct kiln_step_kind kiln_step_profile = {
    .name = "profile",
    .wanted = wanted,
    .describe = describe_profile,
    .key = key_profile,
    .run = run_profile,
};
