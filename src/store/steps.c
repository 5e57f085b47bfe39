/* Step results: what a build step produced, found again by its cache key.
 *
 *   ROOT/steps/<key>.json   {"kind", "createdBy", "layer": {...} | null,
 *                            "facts": {...}, "stamp": {...}}
 *   ROOT/steps/<key>.lock   taken while the step is being built
 *
 * An entry is written to a temp file and renamed into place, so it is
 * complete or absent. Its mtime is its last use (prune goes by it). */
#include "kiln/store.h"

#include <dirent.h>
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STEP_ENTRY_MAX ((size_t)64 << 10)

static char *steps_dir(const struct kiln_store *s)
{
        return kiln_xasprintf("%s/steps", kiln_store_root(s));
}

static bool key_ok(const char *key)
{
        size_t n = strlen(key);
        if (n != 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
                        return false;
        return true;
}

static char *entry_path(const struct kiln_store *s, const char *key, const char *ext)
{
        _cleanup_free_ char *d = steps_dir(s);
        return kiln_xasprintf("%s/%s.%s", d, key, ext);
}

const char *kiln_step_entry_fact(const struct kiln_step_entry *e, const char *name)
{
        return e->facts ? kiln_strv_lookup(e->facts, kiln_strv_len(e->facts), name) : NULL;
}

void kiln_step_entry_release(struct kiln_step_entry *e)
{
        free(e->kind);
        free(e->created_by);
        free(e->media_type);
        kiln_strv_free(e->facts);
        memset(e, 0, sizeof(*e));
}

static const char *jstr(json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

/* A malformed entry (truncated by a full disk, edited by hand) is a miss,
 * never an error: the step runs again and the entry is rewritten. */
bool kiln_step_entry_load(const char *key, const char *text, size_t len, struct kiln_step_entry *e)
{
        memset(e, 0, sizeof(*e));
        json_error_t je;
        _cleanup_json_ json_t *o = json_loadb(text ? text : "", len, 0, &je);
        if (!json_is_object(o))
                return false;
        bool ok = jstr(o, "kind") != NULL;
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->kind = kiln_xstrdup(ok ? jstr(o, "kind") : "");
        e->created_by = kiln_xstrdup(jstr(o, "createdBy") ? jstr(o, "createdBy") : "");
        json_t *l = json_object_get(o, "layer");
        if (ok && json_is_object(l)) {
                const char *d = jstr(l, "digest"), *id = jstr(l, "diffID"),
                           *mt = jstr(l, "mediaType");
                json_t *sz = json_object_get(l, "size");
                ok = d && id && mt && json_is_integer(sz) && kiln_digest_validate(d, NULL) == 0 &&
                     kiln_digest_validate(id, NULL) == 0;
                if (ok) {
                        e->has_layer = true;
                        snprintf(e->digest, sizeof(e->digest), "%s", d);
                        snprintf(e->diff_id, sizeof(e->diff_id), "%s", id);
                        e->media_type = kiln_xstrdup(mt);
                        e->size = json_integer_value(sz);
                }
        }
        json_t *st = json_object_get(o, "stamp");
        if (json_is_object(st)) {
                e->stamp_ino = (uint64_t)json_integer_value(json_object_get(st, "ino"));
                e->stamp_mtime_ns = json_integer_value(json_object_get(st, "mtimeNs"));
                e->stamp_size = json_integer_value(json_object_get(st, "size"));
        }
        json_t *f = json_object_get(o, "facts");
        size_t nf = json_is_object(f) ? json_object_size(f) : 0, i = 0;
        e->facts = kiln_xcalloc(nf + 1, sizeof(char *));
        const char *k;
        json_t *v;
        if (nf) {
                json_object_foreach(f, k, v)
                {
                        if (json_is_string(v) && i < nf)
                                e->facts[i++] = kiln_xasprintf("%s=%s", k, json_string_value(v));
                }
        }
        if (!ok)
                kiln_step_entry_release(e);
        return ok;
}

int kiln_store_step_get(struct kiln_store *s, const char *key, struct kiln_step_entry *e,
                        bool *found, struct kiln_err **err)
{
        *found = false;
        memset(e, 0, sizeof(*e));
        if (!key_ok(key))
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "bad step key %.70s", key);
        _cleanup_free_ char *p = entry_path(s, key, "json");
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : kiln_err_sys(err, "open %s", p);
        _cleanup_buf_ struct kiln_buf b = {0};
        _cleanup_err_ struct kiln_err *rerr = NULL;
        struct stat st;
        if (kiln_read_fd(fd, p, STEP_ENTRY_MAX, &b, &rerr) < 0 || fstat(fd, &st) < 0)
                return 0;
        if (!kiln_step_entry_load(key, b.data, b.len, e)) {
                kiln_step_entry_release(e);
                return 0;
        }
        e->last_used = st.st_mtim.tv_sec;
        *found = true;
        return 0;
}

char *kiln_step_entry_dump(const struct kiln_step_entry *e)
{
        _cleanup_json_ json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(e->kind ? e->kind : ""));
        json_object_set_new(o, "createdBy", json_string(e->created_by ? e->created_by : ""));
        if (e->has_layer) {
                json_object_set_new(o, "layer",
                                    json_pack("{s:s, s:s, s:s, s:I}", "mediaType", e->media_type,
                                              "digest", e->digest, "diffID", e->diff_id, "size",
                                              (json_int_t)e->size));
                json_object_set_new(o, "stamp",
                                    json_pack("{s:I, s:I, s:I}", "ino", (json_int_t)e->stamp_ino,
                                              "mtimeNs", (json_int_t)e->stamp_mtime_ns, "size",
                                              (json_int_t)e->stamp_size));
        } else {
                json_object_set_new(o, "layer", json_null());
        }
        json_t *f = json_object();
        for (size_t i = 0; e->facts && e->facts[i]; i++) {
                const char *eq = strchr(e->facts[i], '=');
                if (!eq)
                        continue;
                _cleanup_free_ char *k = kiln_xstrndup(e->facts[i], (size_t)(eq - e->facts[i]));
                json_object_set_new(f, k, json_string(eq + 1));
        }
        json_object_set_new(o, "facts", f);
        return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

int kiln_store_step_put(struct kiln_store *s, const struct kiln_step_entry *e,
                        struct kiln_err **err)
{
        if (!key_ok(e->key))
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "bad step key %.70s", e->key);
        _cleanup_free_ char *d = steps_dir(s);
        if (kiln_mkdir_p(d, 0755, err) < 0)
                return -1;
        _cleanup_free_ char *text = kiln_step_entry_dump(e);
        if (!text)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "step entry: out of memory");
        _cleanup_free_ char *p = entry_path(s, e->key, "json");
        return kiln_write_file_atomic(p, text, strlen(text), 0644, err);
}

int kiln_store_step_touch(struct kiln_store *s, const char *key)
{
        _cleanup_free_ char *p = entry_path(s, key, "json");
        return utimensat(AT_FDCWD, p, NULL, 0);
}

int kiln_store_step_remove(struct kiln_store *s, const char *key, struct kiln_err **err)
{
        _cleanup_free_ char *p = entry_path(s, key, "json");
        if (unlink(p) < 0 && errno != ENOENT)
                return kiln_err_sys(err, "remove %s", p);
        _cleanup_free_ char *l = entry_path(s, key, "lock");
        unlink(l);
        return 0;
}

int kiln_store_step_lock(struct kiln_store *s, const char *key, int *fd, struct kiln_err **err)
{
        *fd = -1;
        _cleanup_free_ char *d = steps_dir(s);
        if (kiln_mkdir_p(d, 0755, err) < 0)
                return -1;
        _cleanup_free_ char *p = entry_path(s, key, "lock");
        return kiln_lock_file(p, fd, err);
}

void kiln_step_entries_release(struct kiln_step_entries *l)
{
        for (size_t i = 0; i < l->n; i++)
                kiln_step_entry_release(&l->v[i]);
        free(l->v);
        *l = (struct kiln_step_entries){0};
}

int kiln_store_step_list(struct kiln_store *s, struct kiln_step_entry **out, size_t *n,
                         struct kiln_err **err)
{
        *out = NULL;
        *n = 0;
        _cleanup_free_ char *d = steps_dir(s);
        _cleanup_closedir_ DIR *dir = opendir(d);
        if (!dir)
                return errno == ENOENT ? 0 : kiln_err_sys(err, "open %s", d);
        _cleanup_step_entries_ struct kiln_step_entries l = {0};
        struct dirent *de;
        size_t cap = 0;
        while ((de = readdir(dir))) {
                size_t len = strlen(de->d_name);
                if (len != 69 || !kiln_str_has_suffix(de->d_name, ".json"))
                        continue;
                char key[KILN_HEX_MAX];
                memcpy(key, de->d_name, 64);
                key[64] = '\0';
                struct kiln_step_entry e;
                bool found = false;
                if (kiln_store_step_get(s, key, &e, &found, err) < 0)
                        return -1;
                if (!found)
                        continue;
                if (l.n == cap) {
                        cap = cap ? cap * 2 : 16;
                        l.v = kiln_xrealloc(l.v, cap * sizeof(*l.v));
                }
                l.v[l.n++] = e;
        }
        *out = l.v;
        *n = l.n;
        l = (struct kiln_step_entries){0};
        return 0;
}

int kiln_store_stamp(const struct kiln_store *s, const char *digest, uint64_t *ino,
                     int64_t *mtime_ns, int64_t *size)
{
        _cleanup_free_ char *p = kiln_store_blob_path(s, digest);
        struct stat st;
        if (stat(p, &st) < 0)
                return -1;
        *ino = (uint64_t)st.st_ino;
        *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        *size = (int64_t)st.st_size;
        return 0;
}

int kiln_store_verify_blob(struct kiln_store *s, const char *digest, bool *ok,
                           struct kiln_err **err)
{
        *ok = false;
        if (!kiln_store_has(s, digest, -1))
                return 0;
        _cleanup_free_ char *path = kiln_store_blob_path(s, digest);
        char got[KILN_DIGEST_MAX];
        if (kiln_sha256_file(path, got, err) < 0)
                return kiln_err_prefix(err, "verify blob %s", digest);
        *ok = !strcmp(got, digest);
        return 0;
}

int kiln_store_remove_blob(struct kiln_store *s, const char *digest, struct kiln_err **err)
{
        if (kiln_digest_validate(digest, err) < 0)
                return -1;
        _cleanup_free_ char *p = kiln_store_blob_path(s, digest);
        if (unlink(p) < 0 && errno != ENOENT)
                return kiln_err_sys(err, "remove %s", p);
        return 0;
}
