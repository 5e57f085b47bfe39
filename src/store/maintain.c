/* Keeping the cache in shape: what it holds, dropping what was used least
 * recently, and hashing every blob again.
 *
 * Prune sees the cache as objects with a size and a last use: blobs (a
 * layer blob's use is also its step entries' use, a built image's blobs
 * its image entry's), base snapshots, installer caches (apt, pip; one per
 * base image and sources, cache/KIND/KEY). It
 * waits for running builds and pulls (they hold the store's lock shared). */
#include "kiln/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_MAX   ((size_t)4 << 20)
#define LEFTOVER_AGE_S (24 * 3600) /* an unfinished build or download this old is dead */

enum obj_type {
        OBJ_BLOB,
        OBJ_DIR,
        OBJ_STEP,   /* an entry without a layer of its own */
        OBJ_UNKEYED /* an installer cache of the old shared layout */
};

struct obj {
        enum obj_type type;
        char *name; /* digest, or directory path */
        const char *kind;
        int64_t last_used;
        uint64_t bytes;
        bool evict;
};

struct objs {
        struct obj *v;
        size_t n, cap;
};

static struct obj *objs_add(struct objs *o)
{
        if (o->n == o->cap) {
                o->cap = o->cap ? o->cap * 2 : 64;
                o->v = kiln_xrealloc(o->v, o->cap * sizeof(*o->v));
        }
        struct obj *x = &o->v[o->n++];
        memset(x, 0, sizeof(*x));
        return x;
}

static void objs_release(struct objs *o)
{
        for (size_t i = 0; i < o->n; i++)
                free(o->v[i].name);
        free(o->v);
        memset(o, 0, sizeof(*o));
}
#define _cleanup_objs_ _cleanup_(objs_release)

static __thread uint64_t du_total;

static int du_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)path;
        (void)flag;
        (void)ftw;
        du_total += (uint64_t)st->st_blocks * 512;
        return 0;
}

/* Disk use of a tree, not following links. */
static uint64_t du(const char *path)
{
        du_total = 0;
        nftw(path, du_one, 64, FTW_PHYS | FTW_MOUNT);
        return du_total;
}

/* One object per entry of dir of the given file type (S_IFREG blobs,
 * S_IFDIR trees): blobs are named by digest and sized by their blocks,
 * trees by path and their disk use. */
static int list_objs(const char *dir, mode_t type, const char *kind, struct objs *o,
                     struct kiln_err **err)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : kiln_err_sys(err, "open %s", dir);
        bool blobs = type == S_IFREG;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || (blobs && strlen(de->d_name) != 64))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    (st.st_mode & S_IFMT) != type)
                        continue;
                struct obj *x = objs_add(o);
                x->type = blobs ? OBJ_BLOB : OBJ_DIR;
                x->kind = kind;
                x->last_used = st.st_mtim.tv_sec;
                if (blobs) {
                        x->name = kiln_xasprintf("sha256:%s", de->d_name);
                        x->bytes = (uint64_t)st.st_blocks * 512;
                } else {
                        x->name = kiln_xasprintf("%s/%s", dir, de->d_name);
                        x->bytes = du(x->name);
                }
        }
        return 0;
}

static int list_blobs(struct kiln_store *s, struct objs *o, struct kiln_err **err)
{
        _cleanup_free_ char *dir = kiln_xasprintf("%s/blobs/sha256", kiln_store_root(s));
        return list_objs(dir, S_IFREG, "blob", o, err);
}

/* Every subdirectory of ROOT/sub as one object. */
static int list_dirs(struct kiln_store *s, const char *sub, const char *kind, struct objs *o,
                     struct kiln_err **err)
{
        _cleanup_free_ char *dir = kiln_xasprintf("%s/%s", kiln_store_root(s), sub);
        return list_objs(dir, S_IFDIR, kind, o, err);
}

static bool is_key(const char *name, size_t len)
{
        return len == KILN_INSTALLER_CACHE_KEY_LEN &&
               strspn(name, "0123456789abcdef") == KILN_INSTALLER_CACHE_KEY_LEN;
}

static void add_unkeyed(struct objs *o, const char *path)
{
        struct obj *x = objs_add(o);
        x->type = OBJ_UNKEYED;
        x->kind = "unkeyed installer cache";
        x->name = kiln_xstrdup(path);
        x->last_used = INT64_MIN; /* first to go */
        x->bytes = du(path);
}

/* cache/KIND/KEY directories (their KEY.lock files go with them); any
 * other entry of cache/ is of the old shared layout. */
static int list_installer_caches(struct kiln_store *s, struct objs *o, struct kiln_err **err)
{
        _cleanup_free_ char *top = kiln_xasprintf("%s/cache", kiln_store_root(s));
        _cleanup_closedir_ DIR *d = opendir(top);
        if (!d)
                return errno == ENOENT ? 0 : kiln_err_sys(err, "open %s", top);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *kind = kiln_xasprintf("%s/%s", top, de->d_name);
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISDIR(st.st_mode)) {
                        add_unkeyed(o, kind);
                        continue;
                }
                _cleanup_closedir_ DIR *k = opendir(kind);
                if (!k)
                        return kiln_err_sys(err, "open %s", kind);
                struct dirent *ke;
                while ((ke = readdir(k))) {
                        const char *n = ke->d_name;
                        size_t len = strlen(n);
                        if (!strcmp(n, ".") || !strcmp(n, "..") ||
                            (kiln_str_has_suffix(n, ".lock") && is_key(n, len - 5)))
                                continue;
                        _cleanup_free_ char *path = kiln_xasprintf("%s/%s", kind, n);
                        if (fstatat(dirfd(k), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        if (!S_ISDIR(st.st_mode) || !is_key(n, len)) {
                                add_unkeyed(o, path);
                                continue;
                        }
                        struct obj *x = objs_add(o);
                        x->type = OBJ_DIR;
                        x->kind = "installer cache";
                        x->last_used = st.st_mtim.tv_sec;
                        x->bytes = du(path);
                        x->name = steal_pointer(&path);
                }
        }
        return 0;
}

/* Removes an object that is a directory tree (or an unkeyed file), with
 * an installer cache's lock file. */
static int remove_tree(const struct obj *x, struct kiln_err **err)
{
        if (kiln_rm_rf(x->name, err) < 0)
                return -1;
        if (x->type == OBJ_DIR && !strcmp(x->kind, "installer cache")) {
                _cleanup_free_ char *lock = kiln_xasprintf("%s.lock", x->name);
                (void)unlink(lock);
        }
        return 0;
}

static struct obj *find_blob(struct objs *o, const char *digest)
{
        for (size_t i = 0; i < o->n; i++)
                if (o->v[i].type == OBJ_BLOB && !strcmp(o->v[i].name, digest))
                        return &o->v[i];
        return NULL;
}

static void use(struct objs *o, const char *digest, int64_t when)
{
        struct obj *b = digest ? find_blob(o, digest) : NULL;
        if (b && when > b->last_used)
                b->last_used = when;
}

/* A built image's manifest, config and layers are used when its image
 * entry is. */
static void use_image(struct kiln_store *s, struct objs *o, const char *manifest, int64_t when)
{
        use(o, manifest, when);
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *e = NULL;
        if (kiln_store_read(s, manifest, MANIFEST_MAX, &b, &e) < 0)
                return;
        _cleanup_json_ json_t *m = json_loadb(b.data, b.len, 0, NULL);
        use(o, json_string_value(json_object_get(json_object_get(m, "config"), "digest")), when);
        json_t *layers = json_object_get(m, "layers");
        for (size_t i = 0; i < json_array_size(layers); i++)
                use(o, json_string_value(json_object_get(json_array_get(layers, i), "digest")),
                    when);
}

static int collect(struct kiln_store *s, struct objs *o, struct kiln_step_entries *steps,
                   struct kiln_err **err)
{
        if (list_blobs(s, o, err) < 0 || list_dirs(s, "snapshots", "snapshot", o, err) < 0 ||
            list_installer_caches(s, o, err) < 0)
                return -1;
        if (kiln_store_step_list(s, &steps->v, &steps->n, err) < 0)
                return -1;
        for (size_t i = 0; i < steps->n; i++) {
                const struct kiln_step_entry *e = &steps->v[i];
                if (e->has_layer)
                        use(o, e->digest, e->last_used);
                const char *m = kiln_step_entry_fact(e, "manifest");
                if (m && kiln_digest_validate(m, NULL) == 0)
                        use_image(s, o, m, e->last_used);
                if (!e->has_layer && !m) {
                        struct obj *x = objs_add(o);
                        x->type = OBJ_STEP;
                        x->kind = "step";
                        x->name = kiln_xstrdup(e->key);
                        x->last_used = e->last_used;
                        x->bytes = 4096;
                }
        }
        return 0;
}

static int obj_cmp(const void *a, const void *b)
{
        const struct obj *x = a, *y = b;
        if (x->last_used != y->last_used)
                return x->last_used < y->last_used ? -1 : 1;
        return strcmp(x->name, y->name);
}

int kiln_store_usage(struct kiln_store *s, struct kiln_cache_usage *u, struct kiln_err **err)
{
        memset(u, 0, sizeof(*u));
        _cleanup_objs_ struct objs o = {0};
        _cleanup_step_entries_ struct kiln_step_entries steps = {0};
        if (collect(s, &o, &steps, err) < 0)
                return -1;
        for (size_t i = 0; i < o.n; i++) {
                const struct obj *x = &o.v[i];
                if (x->type == OBJ_BLOB) {
                        u->n_blobs++;
                        u->blob_bytes += x->bytes;
                } else if (x->type == OBJ_STEP) {
                        continue;
                } else if (x->type == OBJ_UNKEYED) {
                        u->n_unkeyed++;
                        u->unkeyed_bytes += x->bytes;
                } else if (!strcmp(x->kind, "snapshot")) {
                        u->n_snapshots++;
                        u->snapshot_bytes += x->bytes;
                } else {
                        u->n_installer++;
                        u->installer_bytes += x->bytes;
                }
        }
        u->n_steps = steps.n;
        return 0;
}

/* Unfinished builds and downloads: gone with their process. */
static void remove_leftovers(struct kiln_store *s, int64_t now, struct kiln_prune_report *r)
{
        /* With the store held exclusively no lock file is held either. */
        static const char *const subs[] = {"builds", "tmp", "locks"};
        for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
                _cleanup_free_ char *dir = kiln_xasprintf("%s/%s", kiln_store_root(s), subs[k]);
                _cleanup_closedir_ DIR *d = opendir(dir);
                if (!d)
                        continue;
                struct dirent *de;
                while ((de = readdir(d))) {
                        struct stat st;
                        if (de->d_name[0] == '.' ||
                            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        if (now - st.st_mtim.tv_sec < LEFTOVER_AGE_S)
                                continue;
                        _cleanup_free_ char *p = kiln_xasprintf("%s/%s", dir, de->d_name);
                        _cleanup_err_ struct kiln_err *e = NULL;
                        r->removed_bytes += du(p);
                        if (kiln_rm_rf(p, &e) == 0)
                                r->removed_dirs++;
                }
        }
}

/* Removes the entries whose layer or image manifest is no longer in the
 * store (a miss next time anyway), counting them in *dropped. */
static int drop_orphan_steps(struct kiln_store *s, const struct kiln_step_entries *steps,
                             uint64_t *dropped, struct kiln_err **err)
{
        for (size_t i = 0; i < steps->n; i++) {
                const struct kiln_step_entry *e = &steps->v[i];
                const char *m = kiln_step_entry_fact(e, "manifest");
                if ((e->has_layer && !kiln_store_has(s, e->digest, -1)) ||
                    (m && !kiln_store_has(s, m, -1))) {
                        (*dropped)++;
                        if (kiln_store_step_remove(s, e->key, err) < 0)
                                return -1;
                }
        }
        return 0;
}

int kiln_store_prune(struct kiln_store *s, const struct kiln_prune_opts *po,
                     struct kiln_prune_report *r, struct kiln_err **err)
{
        memset(r, 0, sizeof(*r));
        if (kiln_store_lock_exclusive(s, err) < 0)
                return -1;
        _cleanup_objs_ struct objs o = {0};
        _cleanup_step_entries_ struct kiln_step_entries steps = {0};
        if (collect(s, &o, &steps, err) < 0)
                return -1;
        int64_t now = (int64_t)time(NULL);
        if (o.n > 1)
                qsort(o.v, o.n, sizeof(*o.v), obj_cmp);
        uint64_t total = 0;
        for (size_t i = 0; i < o.n; i++)
                total += o.v[i].bytes;
        for (size_t i = 0; i < o.n; i++) {
                struct obj *x = &o.v[i];
                bool old = po->older_than_s >= 0 && x->last_used < now - po->older_than_s;
                bool over = po->keep_bytes >= 0 && total > (uint64_t)po->keep_bytes;
                if (!old && !over && x->type != OBJ_UNKEYED)
                        continue;
                x->evict = true;
                total -= x->bytes;
                r->removed_bytes += x->bytes;
                int rc;
                if (x->type == OBJ_BLOB) {
                        rc = kiln_store_remove_blob(s, x->name, err);
                        r->removed_blobs++;
                } else if (x->type == OBJ_STEP) {
                        rc = kiln_store_step_remove(s, x->name, err);
                        r->removed_steps++;
                } else {
                        rc = remove_tree(x, err);
                        r->removed_dirs++;
                }
                if (rc < 0)
                        return -1;
        }
        r->kept_bytes = total;
        /* entries whose blob went */
        if (drop_orphan_steps(s, &steps, &r->removed_steps, err) < 0)
                return -1;
        remove_leftovers(s, now, r);
        return 0;
}

/* Appends a copy of name to the NULL-terminated list *v of *n names. */
static void list_add(char ***v, size_t *n, const char *name)
{
        *v = kiln_xrealloc(*v, (*n + 2) * sizeof(char *));
        (*v)[(*n)++] = kiln_xstrdup(name);
        (*v)[*n] = NULL;
}

/* Hashes every blob; the bad ones are listed in r and removed. */
static int verify_blobs(struct kiln_store *s, struct kiln_verify_report *r, struct kiln_err **err)
{
        _cleanup_objs_ struct objs o = {0};
        if (list_blobs(s, &o, err) < 0)
                return -1;
        size_t n_bad = 0;
        for (size_t i = 0; i < o.n; i++) {
                bool ok = false;
                if (kiln_store_verify_blob(s, o.v[i].name, &ok, err) < 0)
                        return -1;
                r->blobs++;
                r->bytes += o.v[i].bytes;
                if (ok)
                        continue;
                list_add(&r->bad, &n_bad, o.v[i].name);
                if (kiln_store_remove_blob(s, o.v[i].name, err) < 0)
                        return -1;
        }
        return 0;
}

/* Installer caches of the old shared layout: any build could have written
 * into them, and none mounts them again. */
static int drop_unkeyed(struct kiln_store *s, struct kiln_verify_report *r, struct kiln_err **err)
{
        _cleanup_objs_ struct objs o = {0};
        if (list_installer_caches(s, &o, err) < 0)
                return -1;
        size_t n = 0;
        for (const struct obj *x = o.v; x < o.v + o.n; x++) {
                if (x->type != OBJ_UNKEYED)
                        continue;
                if (remove_tree(x, err) < 0)
                        return -1;
                list_add(&r->unkeyed, &n, x->name);
        }
        return 0;
}

int kiln_store_verify(struct kiln_store *s, struct kiln_verify_report *r, struct kiln_err **err)
{
        memset(r, 0, sizeof(*r));
        if (verify_blobs(s, r, err) < 0 || drop_unkeyed(s, r, err) < 0)
                return -1;
        /* step entries left without their layer: a miss next time anyway */
        _cleanup_step_entries_ struct kiln_step_entries steps = {0};
        if (kiln_store_step_list(s, &steps.v, &steps.n, err) < 0)
                return -1;
        return drop_orphan_steps(s, &steps, &r->dropped_steps, err);
}

void kiln_verify_report_release(struct kiln_verify_report *r)
{
        kiln_strv_free(r->bad);
        kiln_strv_free(r->unkeyed);
        memset(r, 0, sizeof(*r));
}
