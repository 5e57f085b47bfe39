/* An image's packages from its layers: each layer's findings (read once
 * per layer digest, then cached in the store) are applied in layer order
 * as unpacking would apply them, whiteouts first, and every package keeps
 * the layer where it appeared, unchanged, ever since. */
#include "attest-internal.h"

#include <string.h>

void kiln_sbom_release(struct kiln_sbom *s)
{
        for (size_t i = 0; i < s->n_pkgs; i++)
                kiln_sbom_pkg_release(&s->pkgs[i]);
        free(s->pkgs);
        free(s->os_id);
        free(s->os_version_id);
        kiln_strv_free(s->apt_sources);
        memset(s, 0, sizeof(*s));
}

/* ---------- the per-layer cache ---------- */

#define SBOM_CACHE_MT "application/vnd.kiln.sbom.layer.v1+json"

static void cache_key(const char *digest, char key[KILN_HEX_MAX])
{
        _cleanup_free_ char *in = kiln_xasprintf("kiln sbom v1%s", digest);
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(in, strlen(in), d);
        snprintf(key, KILN_HEX_MAX, "%s", kiln_digest_hex(d));
}

/* A miss for anything short of an entry whose blob reads back whole. */
static bool cache_get(struct kiln_store *store, const char *digest, struct kiln_sbom_scan *out)
{
        char key[KILN_HEX_MAX];
        cache_key(digest, key);
        _cleanup_step_entry_ struct kiln_step_entry e = {0};
        bool found = false;
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_store_step_get(store, key, &e, &found, &err) < 0 || !found || !e.has_layer ||
            strcmp(e.kind, "sbom"))
                return false;
        _cleanup_buf_ struct kiln_buf b = {0};
        if (kiln_store_read(store, e.digest, KILN_SBOM_CACHE_MAX, &b, &err) < 0 ||
            !kiln_sbom_scan_load(b.data, b.len, out))
                return false;
        kiln_store_step_touch(store, key);
        return true;
}

/* The entry holds the findings as a blob, so prune and verify treat them
 * as they treat a step's layer. */
static int cache_put(struct kiln_store *store, const char *digest, const struct kiln_sbom_scan *s,
                     struct kiln_err **err)
{
        _cleanup_free_ char *text = kiln_sbom_scan_dump(s);
        if (!text)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "sbom of %s: not JSON", digest);
        struct kiln_step_entry e = {.kind = "sbom", .has_layer = true, .media_type = SBOM_CACHE_MT};
        cache_key(digest, e.key);
        _cleanup_free_ char *by = kiln_xasprintf("kiln sbom v1 %s", digest);
        e.created_by = by;
        e.size = (int64_t)strlen(text);
        if (kiln_store_put(store, text, strlen(text), e.digest, err) < 0)
                return -1;
        snprintf(e.diff_id, sizeof(e.diff_id), "%s", e.digest);
        return kiln_store_step_put(store, &e, err);
}

static int layer_scan(struct kiln_store *store, const struct kiln_sbom_layer *l,
                      struct kiln_sbom_scan *out, struct kiln_err **err)
{
        if (kiln_digest_validate(l->digest, err) < 0)
                return kiln_err_prefix(err, "layer");
        if (cache_get(store, l->digest, out))
                return 0;
        if (kiln_sbom_scan_layer(store, l, out, err) < 0)
                return -1;
        /* a cache that cannot be written costs the next build a read */
        _cleanup_err_ struct kiln_err *cerr = NULL;
        if (cache_put(store, l->digest, out, &cerr) < 0)
                kiln_debug("sbom cache of %s: %s", l->digest, cerr->msg);
        return 0;
}

/* ---------- applying layers ---------- */

struct slot {
        const struct kiln_sbom_rec *rec;
        size_t layer;
};

/* One package as the image has it after some layer. */
struct view {
        const struct kiln_sbom_pkg *pkg;
        const char *location;
        size_t layer;
};

struct state {
        struct slot *v;
        size_t n;
        struct view *pkgs;
        size_t n_pkgs;
};

static void state_release(struct state *s)
{
        free(s->v);
        free(s->pkgs);
        memset(s, 0, sizeof(*s));
}

static int cmp_pstr(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in(char *const *v, size_t n, const char *s)
{
        return n && bsearch(&s, v, n, sizeof(char *), cmp_pstr) != NULL;
}

/* Whether the layer's whiteouts delete path, or an opaque directory above
 * it hides it. */
static bool deleted(const char *path, const struct kiln_sbom_scan *sc)
{
        if (in(sc->opaques, sc->n_opaques, ""))
                return true;
        _cleanup_free_ char *p = kiln_xstrdup(path);
        for (char *s = p; (s = strchr(s, '/')); s++) {
                *s = '\0';
                bool gone =
                    in(sc->whiteouts, sc->n_whiteouts, p) || in(sc->opaques, sc->n_opaques, p);
                *s = '/';
                if (gone)
                        return true;
        }
        return in(sc->whiteouts, sc->n_whiteouts, p);
}

static int cmp_view(const void *a, const void *b)
{
        const struct view *x = a, *y = b;
        int c = (int)x->pkg->type - (int)y->pkg->type;
        if (c)
                return c;
        if ((c = strcmp(x->pkg->name, y->pkg->name)) ||
            (c = strcmp(x->pkg->version, y->pkg->version)) ||
            (c = strcmp(x->location, y->location)))
                return c;
        return strcmp(x->pkg->arch ? x->pkg->arch : "", y->pkg->arch ? y->pkg->arch : "");
}

/* Where a package was read: dpkg's file, or the dist-info (egg-info)
 * directory its METADATA (PKG-INFO) is in. */
static char *location(const struct kiln_sbom_rec *r)
{
        if (r->kind == KILN_SBOM_REC_PYTHON && (kiln_str_has_suffix(r->path, "/METADATA") ||
                                                kiln_str_has_suffix(r->path, "/PKG-INFO")))
                return kiln_xstrndup(r->path, (size_t)(strrchr(r->path, '/') - r->path));
        return kiln_xstrdup(r->path);
}

/* Applies layer i's scan; the packages that were there before it, the
 * same ones at the same place, keep their layer. */
static void apply(struct state *st, const struct kiln_sbom_scan *sc, size_t i, char ***locs,
                  size_t *n_locs)
{
        struct slot *next = kiln_xcalloc(st->n + sc->n_recs + 1, sizeof(*next));
        size_t n = 0, a = 0, b = 0;
        while (a < st->n || b < sc->n_recs) {
                int c = a == st->n        ? 1
                        : b == sc->n_recs ? -1
                                          : strcmp(st->v[a].rec->path, sc->recs[b].path);
                if (c < 0) {
                        if (!deleted(st->v[a].rec->path, sc))
                                next[n++] = st->v[a];
                        a++;
                        continue;
                }
                next[n++] = (struct slot){&sc->recs[b++], i};
                a += c == 0;
        }
        free(st->v);
        st->v = next;
        st->n = n;

        size_t np = 0;
        for (size_t k = 0; k < n; k++)
                if (next[k].rec->kind == KILN_SBOM_REC_DPKG ||
                    next[k].rec->kind == KILN_SBOM_REC_PYTHON)
                        np += next[k].rec->n_pkgs;
        struct view *cur = kiln_xcalloc(np + 1, sizeof(*cur));
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
                const struct kiln_sbom_rec *r = next[k].rec;
                if (r->kind != KILN_SBOM_REC_DPKG && r->kind != KILN_SBOM_REC_PYTHON)
                        continue;
                char *loc = location(r);
                *locs = kiln_xrealloc(*locs, (*n_locs + 1) * sizeof(char *));
                (*locs)[(*n_locs)++] = loc;
                for (size_t j = 0; j < r->n_pkgs; j++) {
                        cur[m] = (struct view){&r->pkgs[j], loc, i};
                        const struct view *old = st->n_pkgs ? bsearch(&cur[m], st->pkgs, st->n_pkgs,
                                                                      sizeof(*cur), cmp_view)
                                                            : NULL;
                        if (old)
                                cur[m].layer = old->layer;
                        m++;
                }
        }
        if (m)
                qsort(cur, m, sizeof(*cur), cmp_view);
        free(st->pkgs);
        st->pkgs = cur;
        st->n_pkgs = m;
}

static int cmp_slot_path(const void *key, const void *slot)
{
        return strcmp(key, ((const struct slot *)slot)->rec->path);
}

/* The record at path: the slots are sorted by path. */
static const struct kiln_sbom_rec *lookup(const struct state *st, const char *path)
{
        const struct slot *s =
            st->n ? bsearch(path, st->v, st->n, sizeof(*st->v), cmp_slot_path) : NULL;
        return s ? s->rec : NULL;
}

/* etc/os-release as os-release(5) finds it: a symlink is followed once
 * (within the image, ".." stopping at its root), and without it
 * usr/lib/os-release. */
static const struct kiln_sbom_rec *os_release(const struct state *st)
{
        const struct kiln_sbom_rec *r = lookup(st, "etc/os-release");
        if (!r)
                return lookup(st, "usr/lib/os-release");
        if (r->kind != KILN_SBOM_REC_OS_LINK)
                return r;
        const char *t = r->strs[0];
        _cleanup_free_ char *joined = t[0] == '/' ? kiln_xstrdup(t) : kiln_xasprintf("etc/%s", t);
        _cleanup_buf_ struct kiln_buf b = {0};
        for (char *save = NULL, *c = strtok_r(joined, "/", &save); c;
             c = strtok_r(NULL, "/", &save)) {
                if (!strcmp(c, "."))
                        continue;
                if (!strcmp(c, "..")) {
                        char *slash = b.len ? strrchr(b.data, '/') : NULL;
                        b.len = slash ? (size_t)(slash - b.data) : 0;
                        if (b.data)
                                b.data[b.len] = '\0';
                        continue;
                }
                kiln_buf_printf(&b, "%s%s", b.len ? "/" : "", c);
        }
        const struct kiln_sbom_rec *to = b.data ? lookup(st, b.data) : NULL;
        return to && to->kind == KILN_SBOM_REC_OS_RELEASE ? to : NULL;
}

static char *purl(const struct kiln_sbom_pkg *p, const char *os_id, const char *os_version)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        if (p->type == KILN_PKG_PYPI) {
                _cleanup_free_ char *n = kiln_sbom_pep503(p->name);
                kiln_buf_puts(&b, "pkg:pypi/");
                kiln_sbom_purl_encode(&b, n, false);
                kiln_buf_puts(&b, "@");
                kiln_sbom_purl_encode(&b, p->version, false);
                return kiln_buf_steal(&b);
        }
        kiln_buf_puts(&b, "pkg:deb/");
        kiln_sbom_purl_encode(&b, os_id && *os_id ? os_id : "debian", false);
        kiln_buf_puts(&b, "/");
        kiln_sbom_purl_encode(&b, p->name, false);
        kiln_buf_puts(&b, "@");
        kiln_sbom_purl_encode(&b, p->version, false);
        char sep = '?';
        if (p->arch && *p->arch) {
                kiln_buf_puts(&b, "?arch=");
                kiln_sbom_purl_encode(&b, p->arch, false);
                sep = '&';
        }
        if (os_id && *os_id && os_version && *os_version) {
                kiln_buf_printf(&b, "%cdistro=", sep);
                kiln_sbom_purl_encode(&b, os_id, false);
                kiln_buf_puts(&b, "-");
                kiln_sbom_purl_encode(&b, os_version, false);
        }
        return kiln_buf_steal(&b);
}

static int cmp_pkg(const void *a, const void *b)
{
        const struct kiln_sbom_pkg *x = a, *y = b;
        int c = (int)x->type - (int)y->type;
        if (c || (c = strcmp(x->name, y->name)) || (c = strcmp(x->version, y->version)) ||
            (c = strcmp(x->location, y->location)))
                return c;
        return strcmp(x->arch ? x->arch : "", y->arch ? y->arch : "");
}

static void finish(const struct state *st, struct kiln_sbom *out)
{
        const struct kiln_sbom_rec *os = os_release(st);
        out->os_id = os && os->strs[0] && *os->strs[0] ? kiln_xstrdup(os->strs[0]) : NULL;
        out->os_version_id = os && os->strs[1] && *os->strs[1] ? kiln_xstrdup(os->strs[1]) : NULL;
        out->pkgs = kiln_xcalloc(st->n_pkgs + 1, sizeof(*out->pkgs));
        for (size_t k = 0; k < st->n_pkgs; k++) {
                const struct view *v = &st->pkgs[k];
                struct kiln_sbom_pkg *p = &out->pkgs[out->n_pkgs++];
                *p = (struct kiln_sbom_pkg){.type = v->pkg->type,
                                            .name = kiln_xstrdup(v->pkg->name),
                                            .version = kiln_xstrdup(v->pkg->version),
                                            .location = kiln_xstrdup(v->location),
                                            .layer = v->layer};
                p->arch = v->pkg->arch ? kiln_xstrdup(v->pkg->arch) : NULL;
                const char *lic = v->pkg->license;
                if (p->type == KILN_PKG_DEB) {
                        _cleanup_free_ char *cp =
                            kiln_xasprintf("usr/share/doc/%s/copyright", p->name);
                        const struct kiln_sbom_rec *c = lookup(st, cp);
                        lic = c && c->strs ? c->strs[0] : NULL;
                }
                p->license = lic ? kiln_xstrdup(lic) : NULL;
                p->purl = purl(p, out->os_id, out->os_version_id);
        }
        if (out->n_pkgs)
                qsort(out->pkgs, out->n_pkgs, sizeof(*out->pkgs), cmp_pkg);
        size_t n = 0;
        for (size_t k = 0; k < st->n; k++) {
                const struct kiln_sbom_rec *r = st->v[k].rec;
                for (size_t j = 0; r->kind == KILN_SBOM_REC_APT && r->strs && r->strs[j]; j++) {
                        bool dup = false;
                        for (size_t d = 0; d < n; d++)
                                dup |= !strcmp(out->apt_sources[d], r->strs[j]);
                        if (dup)
                                continue;
                        out->apt_sources =
                            kiln_xrealloc(out->apt_sources, (n + 2) * sizeof(char *));
                        out->apt_sources[n++] = kiln_xstrdup(r->strs[j]);
                        out->apt_sources[n] = NULL;
                }
        }
}

/* Everything one collect holds: the layers' findings, which the state's
 * slots and views point into. */
struct collect {
        struct kiln_sbom_scan *scans;
        size_t n_scans;
        char **locs;
        size_t n_locs;
        struct state st;
};

static void collect_release(struct collect *c)
{
        state_release(&c->st);
        for (size_t i = 0; i < c->n_locs; i++)
                free(c->locs[i]);
        free(c->locs);
        for (size_t i = 0; i < c->n_scans; i++)
                kiln_sbom_scan_release(&c->scans[i]);
        free(c->scans);
        memset(c, 0, sizeof(*c));
}

int kiln_sbom_collect(struct kiln_store *store, const struct kiln_sbom_layer *layers, size_t n,
                      struct kiln_sbom *out, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        _cleanup_(collect_release) struct collect c = {
            .scans = kiln_xcalloc(n + 1, sizeof(*c.scans)), .n_scans = n};
        for (size_t i = 0; i < n; i++) {
                if (layer_scan(store, &layers[i], &c.scans[i], err) < 0)
                        return kiln_err_prefix(err, "sbom");
                apply(&c.st, &c.scans[i], i, &c.locs, &c.n_locs);
        }
        finish(&c.st, out);
        return 0;
}
