/* One layer's part of an SBOM: its tar stream is read once, front to
 * back, keeping only the files that name packages, the OS or apt sources
 * (each read into memory with a cap) and its whiteouts. Nothing is
 * unpacked: no path of the layer ever reaches the host's file system. */
#include "attest-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <string.h>

void kiln_sbom_pkg_release(struct kiln_sbom_pkg *p)
{
        free(p->name);
        free(p->version);
        free(p->arch);
        free(p->license);
        free(p->purl);
        free(p->location);
        memset(p, 0, sizeof(*p));
}

void kiln_sbom_rec_release(struct kiln_sbom_rec *r)
{
        free(r->path);
        for (size_t i = 0; i < r->n_pkgs; i++)
                kiln_sbom_pkg_release(&r->pkgs[i]);
        free(r->pkgs);
        kiln_strv_free(r->strs);
        memset(r, 0, sizeof(*r));
}

static void strs_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void kiln_sbom_scan_release(struct kiln_sbom_scan *s)
{
        for (size_t i = 0; i < s->n_recs; i++)
                kiln_sbom_rec_release(&s->recs[i]);
        free(s->recs);
        strs_free(s->whiteouts, s->n_whiteouts);
        strs_free(s->opaques, s->n_opaques);
        memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_rec(const void *a, const void *b)
{
        return strcmp(((const struct kiln_sbom_rec *)a)->path,
                      ((const struct kiln_sbom_rec *)b)->path);
}

static void sort_unique(char **v, size_t *n)
{
        if (!*n)
                return;
        qsort(v, *n, sizeof(char *), cmp_str);
        size_t k = 1;
        for (size_t i = 1; i < *n; i++) {
                if (strcmp(v[i], v[k - 1]))
                        v[k++] = v[i];
                else
                        free(v[i]);
        }
        *n = k;
}

/* ---------- reading the tar stream ---------- */

static void archive_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

struct scan_ctx {
        const char *layer; /* its digest, for errors */
        struct kiln_sbom_scan *out;
        size_t cap_recs, cap_wh, cap_opq;
};

static int push_str(struct scan_ctx *c, char ***v, size_t *n, size_t *cap, char *s,
                    struct kiln_err **err)
{
        if (*n >= KILN_SBOM_MAX_WHITEOUT) {
                free(s);
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "layer %s: more than %zu whiteouts",
                                    c->layer, (size_t)KILN_SBOM_MAX_WHITEOUT);
        }
        if (*n == *cap)
                *v = kiln_xrealloc(*v, (*cap = *cap ? *cap * 2 : 16) * sizeof(char *));
        (*v)[(*n)++] = s;
        return 0;
}

/* A later entry of a path replaces an earlier one, as unpacking would. */
static int push_rec(struct scan_ctx *c, struct kiln_sbom_rec *r, struct kiln_err **err)
{
        struct kiln_sbom_scan *s = c->out;
        for (size_t i = 0; i < s->n_recs; i++) {
                if (!strcmp(s->recs[i].path, r->path)) {
                        kiln_sbom_rec_release(&s->recs[i]);
                        s->recs[i] = *r;
                        memset(r, 0, sizeof(*r));
                        return 0;
                }
        }
        if (s->n_recs >= KILN_SBOM_MAX_RECORDS)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "layer %s: more than %zu package files", c->layer,
                                    (size_t)KILN_SBOM_MAX_RECORDS);
        if (s->n_recs == c->cap_recs)
                s->recs = kiln_xrealloc(
                    s->recs, (c->cap_recs = c->cap_recs ? c->cap_recs * 2 : 16) * sizeof(*s->recs));
        s->recs[s->n_recs++] = *r;
        memset(r, 0, sizeof(*r));
        return 0;
}

/* The entry's data, at most cap bytes: past that, the first cap bytes when
 * a prefix says all that matters (prefix), else an error. */
static int read_data(struct scan_ctx *c, struct archive *a, const char *path, size_t cap,
                     bool prefix, struct kiln_buf *out, struct kiln_err **err)
{
        for (;;) {
                if (out->len == cap) {
                        char one;
                        la_ssize_t r = archive_read_data(a, &one, 1);
                        if (r == 0 || prefix)
                                return 0;
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "layer %s: %s: larger than the %zu MiB kiln reads",
                                            c->layer, path, cap >> 20);
                }
                size_t want = cap - out->len < 65536 ? cap - out->len : 65536;
                if (out->cap < out->len + want + 1) {
                        out->cap = out->len + want + 1;
                        out->data = kiln_xrealloc(out->data, out->cap);
                }
                la_ssize_t r = archive_read_data(a, out->data + out->len, want);
                if (r < 0)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "layer %s: %s: %s", c->layer,
                                            path, archive_error_string(a));
                if (r == 0)
                        return 0;
                out->len += (size_t)r;
                out->data[out->len] = '\0';
        }
}

static int whiteout(struct scan_ctx *c, const char *path, struct kiln_err **err)
{
        const char *slash = strrchr(path, '/');
        const char *name = slash ? slash + 1 : path;
        size_t dir_len = slash ? (size_t)(slash - path) : 0;
        struct kiln_sbom_scan *s = c->out;
        if (!strcmp(name, ".wh..wh..opq"))
                return push_str(c, &s->opaques, &s->n_opaques, &c->cap_opq,
                                kiln_xstrndup(path, dir_len), err);
        if (kiln_str_has_prefix(name, ".wh..wh.") || !name[4])
                return 0; /* aufs bookkeeping (.wh..wh.plnk ...): nothing to apply */
        _cleanup_free_ char *victim = dir_len
                                          ? kiln_xasprintf("%.*s/%s", (int)dir_len, path, name + 4)
                                          : kiln_xstrdup(name + 4);
        if (!kiln_sbom_path_may_matter(victim))
                return 0;
        return push_str(c, &s->whiteouts, &s->n_whiteouts, &c->cap_wh, steal_pointer(&victim), err);
}

static int file_record(struct scan_ctx *c, struct archive *a, int kind, char *path,
                       struct kiln_err **err)
{
        struct kiln_sbom_rec r = {.kind = kind, .path = path};
        bool small = kind == KILN_SBOM_REC_OS_RELEASE || kind == KILN_SBOM_REC_APT;
        size_t cap = kind == KILN_SBOM_REC_DPKG ? KILN_SBOM_STATUS_MAX
                     : small                    ? KILN_SBOM_SMALL_MAX
                                                : KILN_SBOM_META_MAX;
        _cleanup_buf_ struct kiln_buf b = {0};
        if (read_data(c, a, path, cap, !small && kind != KILN_SBOM_REC_DPKG, &b, err) < 0) {
                kiln_sbom_rec_release(&r);
                return -1;
        }
        const char *text = b.data ? b.data : "";
        switch (kind) {
        case KILN_SBOM_REC_DPKG:
                kiln_sbom_parse_dpkg(text, b.len, !strcmp(path, "var/lib/dpkg/status"), &r.pkgs,
                                     &r.n_pkgs);
                break;
        case KILN_SBOM_REC_COPYRIGHT: {
                char *lic = kiln_sbom_parse_copyright(text, b.len);
                r.strs = kiln_xcalloc(2, sizeof(char *));
                r.strs[0] = lic;
                break;
        }
        case KILN_SBOM_REC_PYTHON:
                r.pkgs = kiln_xcalloc(1, sizeof(*r.pkgs));
                r.n_pkgs = kiln_sbom_parse_python(text, b.len, r.pkgs);
                break;
        case KILN_SBOM_REC_OS_RELEASE:
                r.strs = kiln_xcalloc(3, sizeof(char *));
                kiln_sbom_parse_os_release(text, b.len, &r.strs[0], &r.strs[1]);
                break;
        default:
                r.strs = kiln_sbom_parse_apt(text, b.len, kiln_str_has_suffix(path, ".sources"));
                break;
        }
        int rc = push_rec(c, &r, err);
        kiln_sbom_rec_release(&r);
        return rc;
}

static int entry(struct scan_ctx *c, struct archive *a, struct archive_entry *e,
                 struct kiln_err **err)
{
        const char *raw = archive_entry_pathname(e);
        _cleanup_free_ char *path = raw ? kiln_sbom_norm_path(raw) : NULL;
        if (!path || !*path)
                return 0; /* kiln's unpack refuses such a layer; it names nothing here */
        const char *base = strrchr(path, '/');
        if (kiln_str_has_prefix(base ? base + 1 : path, ".wh."))
                return whiteout(c, path, err);
        int kind = kiln_sbom_path_kind(path);
        if (kind < 0)
                return 0;
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFREG && !archive_entry_hardlink(e))
                return file_record(c, a, kind, steal_pointer(&path), err);
        const char *target = archive_entry_symlink(e);
        if (type == AE_IFLNK && kind == KILN_SBOM_REC_OS_RELEASE && target) {
                struct kiln_sbom_rec r = {.kind = KILN_SBOM_REC_OS_LINK,
                                          .path = steal_pointer(&path)};
                r.strs = kiln_xcalloc(2, sizeof(char *));
                r.strs[0] = kiln_xstrdup(target);
                int rc = push_rec(c, &r, err);
                kiln_sbom_rec_release(&r);
                return rc;
        }
        /* Anything else there (a directory, a link kiln does not follow)
         * replaces what a lower layer had: a record that names nothing. */
        struct kiln_sbom_rec r = {.kind = kind, .path = steal_pointer(&path)};
        int rc = push_rec(c, &r, err);
        kiln_sbom_rec_release(&r);
        return rc;
}

static int open_layer(const struct kiln_sbom_layer *l, struct archive *a, int fd,
                      struct kiln_err **err)
{
        const char *mt = l->media_type ? l->media_type : "";
        int filter = ARCHIVE_FILTER_NONE;
        if (kiln_str_has_suffix(mt, "gzip")) {
                archive_read_support_filter_gzip(a);
                filter = ARCHIVE_FILTER_GZIP;
        } else if (kiln_str_has_suffix(mt, "zstd")) {
                archive_read_support_filter_zstd(a);
                filter = ARCHIVE_FILTER_ZSTD;
        } else if (!kiln_str_has_suffix(mt, "tar")) {
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "layer %s: media type %s is not a tar layer", l->digest, mt);
        }
        archive_read_support_format_tar(a);
        if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "layer %s: %s", l->digest,
                                    archive_error_string(a));
        /* libarchive reads what no filter claims as it is: a plain tar
         * under a gzip media type must not pass */
        if (archive_filter_code(a, 0) != filter)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "layer %s: its bytes are not what media type %s says",
                                    l->digest, mt);
        return 0;
}

int kiln_sbom_scan_layer(struct kiln_store *store, const struct kiln_sbom_layer *layer,
                         struct kiln_sbom_scan *out, struct kiln_err **err)
{
        _cleanup_close_ int fd = -1;
        if (kiln_store_open_blob(store, layer->digest, &fd, NULL, err) < 0)
                return kiln_err_prefix(err, "layer %s", layer->digest);
        __attribute__((cleanup(archive_freep))) struct archive *a = archive_read_new();
        if (open_layer(layer, a, fd, err) < 0)
                return -1;
        _cleanup_sbom_scan_ struct kiln_sbom_scan s = {0};
        struct scan_ctx c = {.layer = layer->digest, .out = &s};
        for (;;) {
                struct archive_entry *e = NULL;
                int r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "layer %s: %s", layer->digest,
                                            archive_error_string(a));
                if (entry(&c, a, e, err) < 0)
                        return -1;
        }
        if (s.n_recs) /* qsort takes no NULL, even for none */
                qsort(s.recs, s.n_recs, sizeof(*s.recs), cmp_rec);
        sort_unique(s.whiteouts, &s.n_whiteouts);
        sort_unique(s.opaques, &s.n_opaques);
        *out = s;
        memset(&s, 0, sizeof(s));
        return 0;
}

/* ---------- the per-layer cache's JSON ---------- */

static const char *const kind_names[KILN_SBOM_REC_N] = {"dpkg",       "copyright", "python",
                                                        "os-release", "os-link",   "apt"};

static json_t *str_or_null(const char *s)
{
        return s ? json_string(s) : json_null();
}

static json_t *strv_json(char *const *v, size_t n)
{
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, str_or_null(v[i]));
        return a;
}

char *kiln_sbom_scan_dump(const struct kiln_sbom_scan *s)
{
        _cleanup_json_ json_t *recs = json_array();
        for (size_t i = 0; i < s->n_recs; i++) {
                const struct kiln_sbom_rec *r = &s->recs[i];
                json_t *pkgs = json_array();
                for (size_t j = 0; j < r->n_pkgs; j++) {
                        const struct kiln_sbom_pkg *p = &r->pkgs[j];
                        json_array_append_new(pkgs, json_pack("[s,s,o,o]", p->name, p->version,
                                                              str_or_null(p->arch),
                                                              str_or_null(p->license)));
                }
                size_t n = 0;
                /* a copyright record's one value may be NULL: count it */
                if (r->kind == KILN_SBOM_REC_COPYRIGHT)
                        n = r->strs ? 1 : 0;
                else
                        n = kiln_strv_len(r->strs);
                json_array_append_new(
                    recs, json_pack("{s:s,s:s,s:o,s:o}", "kind", kind_names[r->kind], "path",
                                    r->path, "packages", pkgs, "values", strv_json(r->strs, n)));
        }
        _cleanup_json_ json_t *o = json_pack("{s:i,s:O,s:o,s:o}", "version", 1, "records", recs,
                                             "whiteouts", strv_json(s->whiteouts, s->n_whiteouts),
                                             "opaques", strv_json(s->opaques, s->n_opaques));
        return json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
}

static bool strv_load(json_t *a, bool nulls, char ***v, size_t *n)
{
        if (!json_is_array(a))
                return false;
        *n = json_array_size(a);
        *v = kiln_xcalloc(*n + 1, sizeof(char *));
        for (size_t i = 0; i < *n; i++) {
                json_t *x = json_array_get(a, i);
                if (!json_is_string(x) && !(nulls && json_is_null(x)))
                        return false;
                (*v)[i] = json_is_string(x) ? kiln_xstrdup(json_string_value(x)) : NULL;
        }
        return true;
}

static bool pkg_load(json_t *a, struct kiln_sbom_pkg *p, enum kiln_pkg_type type)
{
        const char *name = NULL, *version = NULL;
        json_t *arch = NULL, *lic = NULL;
        if (json_unpack(a, "[ssoo!]", &name, &version, &arch, &lic) < 0 ||
            !(json_is_null(arch) || json_is_string(arch)) ||
            !(json_is_null(lic) || json_is_string(lic)))
                return false;
        *p = (struct kiln_sbom_pkg){
            .type = type, .name = kiln_xstrdup(name), .version = kiln_xstrdup(version)};
        p->arch = json_is_string(arch) ? kiln_xstrdup(json_string_value(arch)) : NULL;
        p->license = json_is_string(lic) ? kiln_xstrdup(json_string_value(lic)) : NULL;
        return true;
}

static bool rec_load(json_t *o, struct kiln_sbom_rec *r)
{
        const char *kind = NULL, *path = NULL;
        json_t *pkgs = NULL, *values = NULL;
        if (json_unpack(o, "{s:s,s:s,s:o,s:o}", "kind", &kind, "path", &path, "packages", &pkgs,
                        "values", &values) < 0 ||
            !json_is_array(pkgs))
                return false;
        int k = -1;
        for (int i = 0; i < KILN_SBOM_REC_N; i++)
                if (!strcmp(kind, kind_names[i]))
                        k = i;
        int want = kiln_sbom_path_kind(path);
        if (k < 0 ||
            !(want == k || (k == KILN_SBOM_REC_OS_LINK && want == KILN_SBOM_REC_OS_RELEASE)))
                return false;
        r->kind = k;
        r->path = kiln_xstrdup(path);
        size_t n = 0;
        if (json_array_size(values) &&
            !strv_load(values, k == KILN_SBOM_REC_COPYRIGHT, &r->strs, &n))
                return false;
        r->pkgs = kiln_xcalloc(json_array_size(pkgs) + 1, sizeof(*r->pkgs));
        for (size_t i = 0; i < json_array_size(pkgs); i++, r->n_pkgs++)
                if (!pkg_load(json_array_get(pkgs, i), &r->pkgs[i],
                              k == KILN_SBOM_REC_PYTHON ? KILN_PKG_PYPI : KILN_PKG_DEB))
                        return false;
        return true;
}

bool kiln_sbom_scan_load(const char *text, size_t len, struct kiln_sbom_scan *out)
{
        memset(out, 0, sizeof(*out));
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, NULL);
        json_t *recs = json_object_get(o, "records");
        if (!json_is_object(o) || json_integer_value(json_object_get(o, "version")) != 1 ||
            !json_is_array(recs))
                return false;
        _cleanup_sbom_scan_ struct kiln_sbom_scan s = {0};
        s.recs = kiln_xcalloc(json_array_size(recs) + 1, sizeof(*s.recs));
        for (size_t i = 0; i < json_array_size(recs); i++) {
                s.n_recs++;
                if (!rec_load(json_array_get(recs, i), &s.recs[i]))
                        return false;
        }
        if (!strv_load(json_object_get(o, "whiteouts"), false, &s.whiteouts, &s.n_whiteouts) ||
            !strv_load(json_object_get(o, "opaques"), false, &s.opaques, &s.n_opaques))
                return false;
        *out = s;
        memset(&s, 0, sizeof(s));
        return true;
}
