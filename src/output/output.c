#include "output-internal.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* Nested indexes are legal but rare; the bound stops a cycle of documents
 * (impossible with honest digests, but cheap to rule out). */
#define WALK_DEPTH_MAX 4

bool kiln_output_mt_is_index(const char *mt)
{
        return mt && (!strcmp(mt, KILN_MT_OCI_INDEX) || !strcmp(mt, KILN_MT_DOCKER_LIST));
}

static void desc_release(struct kiln_output_desc *d)
{
        free(d->media_type);
        free(d->digest);
        free(d->platform);
        memset(d, 0, sizeof(*d));
}

void kiln_output_doc_release(struct kiln_output_doc *d)
{
        free(d->media_type);
        desc_release(&d->config);
        for (size_t i = 0; i < d->n_layers; i++)
                desc_release(&d->layers[i]);
        free(d->layers);
        for (size_t i = 0; i < d->n_children; i++)
                desc_release(&d->children[i]);
        free(d->children);
        memset(d, 0, sizeof(*d));
}

static char *platform_string(json_t *p)
{
        const char *os = json_string_value(json_object_get(p, "os"));
        const char *arch = json_string_value(json_object_get(p, "architecture"));
        const char *variant = json_string_value(json_object_get(p, "variant"));
        if (!os || !arch)
                return NULL;
        if (variant && *variant)
                return kiln_xasprintf("%s/%s/%s", os, arch, variant);
        return kiln_xasprintf("%s/%s", os, arch);
}

static int desc_parse(json_t *obj, const char *what, const char *field,
                      struct kiln_output_desc *out, struct kiln_err **err)
{
        if (!json_is_object(obj))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: %s is not an object", what,
                                    field);
        json_t *mt = json_object_get(obj, "mediaType");
        json_t *dg = json_object_get(obj, "digest");
        json_t *sz = json_object_get(obj, "size");
        if (mt && !json_is_string(mt))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: %s.mediaType is not a string",
                                    what, field);
        if (!json_is_string(dg))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: %s.digest is missing", what,
                                    field);
        if (!json_is_integer(sz) || json_integer_value(sz) < 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: %s.size is missing or negative",
                                    what, field);
        if (kiln_digest_validate(json_string_value(dg), err) < 0)
                return kiln_err_prefix(err, "%s: %s.digest", what, field);
        out->media_type = mt ? kiln_xstrdup(json_string_value(mt)) : NULL;
        out->digest = kiln_xstrdup(json_string_value(dg));
        out->size = json_integer_value(sz);
        out->platform = platform_string(json_object_get(obj, "platform"));
        return 0;
}

static int desc_array_parse(json_t *arr, const char *what, const char *field,
                            struct kiln_output_desc **out, size_t *n, struct kiln_err **err)
{
        if (!json_is_array(arr))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: %s is missing or not an array",
                                    what, field);
        size_t count = json_array_size(arr);
        *out = kiln_xcalloc(count ? count : 1, sizeof(**out));
        *n = 0;
        for (size_t i = 0; i < count; i++) {
                _cleanup_free_ char *f = kiln_xasprintf("%s[%zu]", field, i);
                if (desc_parse(json_array_get(arr, i), what, f, &(*out)[i], err) < 0)
                        return -1;
                *n = i + 1;
        }
        return 0;
}

int kiln_output_doc_parse(const char *data, size_t len, const char *declared_mt, const char *what,
                          struct kiln_output_doc *out, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        json_error_t jerr;
        _cleanup_json_ json_t *root = json_loadb(data, len, 0, &jerr);
        if (!root)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: invalid JSON: %s (line %d)", what,
                                    jerr.text, jerr.line);
        if (!json_is_object(root))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: not a JSON object", what);
        json_t *mt = json_object_get(root, "mediaType");
        if (mt && !json_is_string(mt))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: mediaType is not a string", what);
        const char *doc_mt = json_string_value(mt);
        if (doc_mt && declared_mt && *declared_mt && strcmp(doc_mt, declared_mt) != 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: mediaType %s does not match the descriptor's %s", what,
                                    doc_mt, declared_mt);
        const char *eff = doc_mt ? doc_mt : (declared_mt && *declared_mt ? declared_mt : NULL);
        json_t *manifests = json_object_get(root, "manifests");
        _cleanup_output_doc_ struct kiln_output_doc d = {0};
        d.media_type = eff ? kiln_xstrdup(eff) : NULL;
        d.is_index = eff ? kiln_output_mt_is_index(eff) : json_is_array(manifests);
        if (d.is_index) {
                if (desc_array_parse(manifests, what, "manifests", &d.children, &d.n_children,
                                     err) < 0)
                        return -1;
        } else {
                if (eff && !strcmp(eff, KILN_MT_DOCKER_V1_SIGNED))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: schema 1 manifests are not supported", what);
                if (desc_parse(json_object_get(root, "config"), what, "config", &d.config, err) < 0)
                        return -1;
                if (desc_array_parse(json_object_get(root, "layers"), what, "layers", &d.layers,
                                     &d.n_layers, err) < 0)
                        return -1;
        }
        *out = d;
        d = (struct kiln_output_doc){0};
        return 0;
}

void kiln_output_blobs_release(struct kiln_output_blobs *b)
{
        for (size_t i = 0; i < b->n; i++)
                free(b->v[i].digest);
        free(b->v);
        free(b->top_media_type);
        memset(b, 0, sizeof(*b));
}

static void blobs_add(struct kiln_output_blobs *b, const char *digest, int64_t size, bool document)
{
        for (size_t i = 0; i < b->n; i++)
                if (!strcmp(b->v[i].digest, digest))
                        return;
        if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 16;
                b->v = kiln_xrealloc(b->v, b->cap * sizeof(*b->v));
        }
        b->v[b->n].digest = kiln_xstrdup(digest);
        b->v[b->n].size = size;
        b->v[b->n].document = document;
        b->n++;
}

/* The store keeps sha256 only; say so instead of "not in the cache". */
static int check_sha256(const char *digest, const char *what, struct kiln_err **err)
{
        if (kiln_digest_validate(digest, err) < 0)
                return kiln_err_prefix(err, "%s", what);
        if (!kiln_str_has_prefix(digest, "sha256:"))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: digest %s: only sha256 is supported", what, digest);
        return 0;
}

static int need_blob(struct kiln_store *store, const struct kiln_output_desc *d, const char *kind,
                     const char *owner, struct kiln_output_blobs *out, struct kiln_err **err)
{
        _cleanup_free_ char *what = kiln_xasprintf("%s of %s", kind, owner);
        if (check_sha256(d->digest, what, err) < 0)
                return -1;
        if (!kiln_store_has(store, d->digest, -1))
                return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                                    "blob %s (%s of %s) is not in the cache", d->digest, kind,
                                    owner);
        if (!kiln_store_has(store, d->digest, d->size))
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "cached blob %s (%s of %s) does not have the size %lld the "
                                    "manifest gives",
                                    d->digest, kind, owner, (long long)d->size);
        blobs_add(out, d->digest, d->size, false);
        return 0;
}

static int walk(struct kiln_store *store, const char *declared_mt, const char *digest, int64_t size,
                const char *owner, int depth, struct kiln_output_blobs *out, struct kiln_err **err)
{
        if (depth > WALK_DEPTH_MAX)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: indexes nested more than %d levels deep", owner,
                                    WALK_DEPTH_MAX);
        if (check_sha256(digest, owner, err) < 0)
                return -1;
        if (!kiln_store_has(store, digest, -1))
                return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0, "blob %s of %s is not in the cache",
                                    digest, owner);
        _cleanup_buf_ struct kiln_buf doc = {0};
        if (kiln_store_read(store, digest, KILN_MANIFEST_MAX, &doc, err) < 0)
                return kiln_err_prefix(err, "manifest of %s", owner);
        if (size >= 0 && (int64_t)doc.len != size)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "manifest %s of %s is %zu bytes, its descriptor says %lld",
                                    digest, owner, doc.len, (long long)size);
        _cleanup_free_ char *what = kiln_xasprintf("manifest %s of %s", digest, owner);
        _cleanup_output_doc_ struct kiln_output_doc d = {0};
        if (kiln_output_doc_parse(doc.data, doc.len, declared_mt, what, &d, err) < 0)
                return -1;
        if (depth == 0) {
                out->top_media_type = d.media_type ? kiln_xstrdup(d.media_type) : NULL;
                out->top_size = (int64_t)doc.len;
        }
        blobs_add(out, digest, (int64_t)doc.len, true);
        if (d.is_index) {
                for (size_t i = 0; i < d.n_children; i++) {
                        const struct kiln_output_desc *c = &d.children[i];
                        _cleanup_free_ char *child =
                            c->platform ? kiln_xstrdup(c->platform)
                                        : kiln_xasprintf("manifests[%zu] of %s", i, owner);
                        if (walk(store, c->media_type, c->digest, c->size, child, depth + 1, out,
                                 err) < 0)
                                return -1;
                }
                return 0;
        }
        if (need_blob(store, &d.config, "config", owner, out, err) < 0)
                return -1;
        for (size_t i = 0; i < d.n_layers; i++) {
                _cleanup_free_ char *kind = kiln_xasprintf("layer %zu", i);
                if (need_blob(store, &d.layers[i], kind, owner, out, err) < 0)
                        return -1;
        }
        return 0;
}

int kiln_output_collect(struct kiln_store *store, const struct kiln_descriptor *top,
                        struct kiln_output_blobs *out, struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        if (!top || !top->digest)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "no image to write");
        _cleanup_free_ char *owner =
            top->platform && top->platform->os && top->platform->architecture
                ? (top->platform->variant
                       ? kiln_xasprintf("%s/%s/%s", top->platform->os, top->platform->architecture,
                                        top->platform->variant)
                       : kiln_xasprintf("%s/%s", top->platform->os, top->platform->architecture))
                : kiln_xstrdup("the image");
        _cleanup_output_blobs_ struct kiln_output_blobs b = {0};
        if (walk(store, top->media_type, top->digest, top->size, owner, 0, &b, err) < 0)
                return -1;
        if (!b.top_media_type)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "manifest %s has no mediaType and none was given", top->digest);
        *out = b;
        b = (struct kiln_output_blobs){0};
        return 0;
}

int kiln_output_collect_referrers(struct kiln_store *store, const struct kiln_descriptor *refs,
                                  size_t n, struct kiln_output_blobs *out, struct kiln_err **err)
{
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *owner = kiln_xasprintf("referrer %s", refs[i].digest);
                /* depth 1: the top stays the image's */
                if (walk(store, refs[i].media_type, refs[i].digest, refs[i].size, owner, 1, out,
                         err) < 0)
                        return -1;
        }
        return 0;
}

json_t *kiln_output_referrers_entries(const struct kiln_descriptor *refs, size_t n)
{
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(list, kiln_output_index_entry(&refs[i], refs[i].media_type,
                                                                    refs[i].size, NULL));
        return list;
}

json_t *kiln_output_index_entry(const struct kiln_descriptor *top, const char *media_type,
                                int64_t size, const char *tag)
{
        json_t *e = json_object();
        json_object_set_new(e, "mediaType", json_string(media_type));
        json_object_set_new(e, "digest", json_string(top->digest));
        json_object_set_new(e, "size", json_integer(size));
        if (top->artifact_type)
                json_object_set_new(e, "artifactType", json_string(top->artifact_type));
        const struct kiln_platform *p = top->platform;
        if (p && p->os && p->architecture) {
                json_t *pj = json_object();
                json_object_set_new(pj, "architecture", json_string(p->architecture));
                json_object_set_new(pj, "os", json_string(p->os));
                if (p->os_version)
                        json_object_set_new(pj, "os.version", json_string(p->os_version));
                if (p->variant)
                        json_object_set_new(pj, "variant", json_string(p->variant));
                json_object_set_new(e, "platform", pj);
        }
        json_t *ann =
            json_is_object(top->annotations) ? json_deep_copy(top->annotations) : json_object();
        if (tag)
                json_object_set_new(ann, "org.opencontainers.image.ref.name", json_string(tag));
        if (json_object_size(ann) > 0)
                json_object_set_new(e, "annotations", ann);
        else
                json_decref(ann);
        return e;
}

char *kiln_output_index_dump(json_t *manifests)
{
        _cleanup_json_ json_t *idx = json_object();
        json_object_set_new(idx, "schemaVersion", json_integer(2));
        json_object_set_new(idx, "mediaType", json_string(KILN_MT_OCI_INDEX));
        json_object_set(idx, "manifests", manifests);
        char *s = json_dumps(idx, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                abort(); /* only fails on out-of-memory */
        return s;
}

time_t kiln_output_source_date(void)
{
        const char *s = getenv("SOURCE_DATE_EPOCH");
        if (!s || !*s)
                return 0;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end || v < 0)
                return 0;
        return (time_t)v;
}

/* ---------- tar writing ---------- */

static int tar_err(struct kiln_output_tar *t, const char *what, struct kiln_err **err)
{
        const char *msg = archive_error_string(t->a);
        int e = archive_errno(t->a);
        if (e > 0)
                return kiln_err_set(err, KILN_ERR_SYSTEM, e, "%s: %s", what,
                                    msg ? msg : strerror(e));
        return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "%s: %s", what, msg ? msg : "tar error");
}

int kiln_output_tar_begin(const char *dest, struct kiln_output_tar *t, struct kiln_err **err)
{
        memset(t, 0, sizeof(*t));
        t->fd = -1;
        t->dest = kiln_xstrdup(dest);
        t->tmp = kiln_tmp_sibling(dest);
        t->mtime = kiln_output_source_date();
        t->fd = mkostemp(t->tmp, O_CLOEXEC);
        if (t->fd < 0) {
                kiln_err_sys(err, "create temporary file for %s", dest);
                free(t->tmp);
                t->tmp = NULL;
                kiln_output_tar_abort(t);
                return -1;
        }
        /* mkostemp makes 0600; an image archive is not secret. */
        mode_t um = umask(0);
        umask(um);
        if (fchmod(t->fd, 0644 & ~um) < 0) {
                kiln_err_sys(err, "chmod %s", t->tmp);
                kiln_output_tar_abort(t);
                return -1;
        }
        t->a = archive_write_new();
        if (!t->a)
                abort();
        /* pax_restricted writes plain ustar headers unless an entry needs
         * more, so the output is byte-identical across runs. */
        if (archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
            archive_write_add_filter_none(t->a) != ARCHIVE_OK ||
            archive_write_open_fd(t->a, t->fd) != ARCHIVE_OK) {
                tar_err(t, dest, err);
                kiln_output_tar_abort(t);
                return -1;
        }
        return 0;
}

static struct archive_entry *new_entry(struct kiln_output_tar *t, const char *name, int type,
                                       int mode, int64_t size)
{
        struct archive_entry *e = archive_entry_new();
        if (!e)
                abort();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, (unsigned)type);
        archive_entry_set_perm(e, (mode_t)mode);
        archive_entry_set_size(e, size);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, t->mtime, 0);
        return e;
}

static int write_header(struct kiln_output_tar *t, struct archive_entry *e, const char *name,
                        struct kiln_err **err)
{
        int r = archive_write_header(t->a, e);
        archive_entry_free(e);
        if (r < ARCHIVE_WARN) {
                _cleanup_free_ char *what = kiln_xasprintf("%s: add %s", t->dest, name);
                return tar_err(t, what, err);
        }
        return 0;
}

int kiln_output_tar_add_dir(struct kiln_output_tar *t, const char *name, struct kiln_err **err)
{
        return write_header(t, new_entry(t, name, AE_IFDIR, 0755, 0), name, err);
}

static int write_data(struct kiln_output_tar *t, const char *name, const void *p, size_t n,
                      struct kiln_err **err)
{
        while (n > 0) {
                la_ssize_t w = archive_write_data(t->a, p, n);
                if (w <= 0) {
                        _cleanup_free_ char *what = kiln_xasprintf("%s: write %s", t->dest, name);
                        return tar_err(t, what, err);
                }
                p = (const char *)p + w;
                n -= (size_t)w;
        }
        return 0;
}

int kiln_output_tar_add_mem(struct kiln_output_tar *t, const char *name, const void *data,
                            size_t len, struct kiln_err **err)
{
        if (write_header(t, new_entry(t, name, AE_IFREG, 0644, (int64_t)len), name, err) < 0)
                return -1;
        return write_data(t, name, data, len, err);
}

int kiln_output_tar_add_fd(struct kiln_output_tar *t, const char *name, int fd, uint64_t size,
                           const char *digest, struct kiln_err **err)
{
        if (write_header(t, new_entry(t, name, AE_IFREG, 0644, (int64_t)size), name, err) < 0)
                return -1;
        _cleanup_sha256_ struct kiln_sha256 *h = digest ? kiln_sha256_new() : NULL;
        _cleanup_free_ char *buf = kiln_xmalloc(1 << 16);
        uint64_t left = size;
        while (left > 0) {
                size_t want = left < (1 << 16) ? (size_t)left : (1 << 16);
                ssize_t n = read(fd, buf, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kiln_err_sys(err, "read %s", name);
                if (n == 0)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: shorter than its %llu bytes", name,
                                            (unsigned long long)size);
                if (h)
                        kiln_sha256_update(h, buf, (size_t)n);
                if (write_data(t, name, buf, (size_t)n, err) < 0)
                        return -1;
                left -= (uint64_t)n;
        }
        if (h) {
                char got[KILN_DIGEST_MAX];
                kiln_sha256_final(h, got);
                if (strcmp(got, digest) != 0)
                        return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                            "%s: content hashes to %s, expected %s", name, got,
                                            digest);
        }
        return 0;
}

int kiln_output_tar_commit(struct kiln_output_tar *t, struct kiln_err **err)
{
        if (archive_write_close(t->a) != ARCHIVE_OK) {
                tar_err(t, t->dest, err);
                kiln_output_tar_abort(t);
                return -1;
        }
        archive_write_free(t->a);
        t->a = NULL;
        if (fsync(t->fd) < 0) {
                kiln_err_sys(err, "write %s", t->dest);
                kiln_output_tar_abort(t);
                return -1;
        }
        close(steal_fd(&t->fd));
        if (rename(t->tmp, t->dest) < 0) {
                kiln_err_sys(err, "rename %s into place", t->dest);
                kiln_output_tar_abort(t);
                return -1;
        }
        free(t->tmp);
        t->tmp = NULL;
        kiln_output_tar_abort(t);
        return 0;
}

void kiln_output_tar_abort(struct kiln_output_tar *t)
{
        if (t->a)
                archive_write_free(t->a); /* closes too; the fd is ours */
        t->a = NULL;
        if (t->fd >= 0)
                close(t->fd);
        t->fd = -1;
        if (t->tmp)
                unlink(t->tmp);
        free(t->tmp);
        t->tmp = NULL;
        free(t->dest);
        t->dest = NULL;
}

char *kiln_output_location(const struct kiln_image_loc *dest)
{
        struct kiln_image_loc l = *dest;
        if ((l.transport == KILN_TRANSPORT_OCI || l.transport == KILN_TRANSPORT_OCI_ARCHIVE) &&
            !l.tag)
                l.tag = KILN_OUTPUT_DEFAULT_TAG;
        return kiln_image_loc_string(&l);
}

int kiln_output_write(const struct kiln_image_loc *dest, struct kiln_store *store,
                      const struct kiln_descriptor *top, const char *source_name,
                      struct kiln_err **err)
{
        return kiln_output_write_referrers(dest, store, top, source_name, NULL, 0, err);
}

int kiln_output_write_referrers(const struct kiln_image_loc *dest, struct kiln_store *store,
                                const struct kiln_descriptor *top, const char *source_name,
                                const struct kiln_descriptor *refs, size_t n_refs,
                                struct kiln_err **err)
{
        switch (dest->transport) {
        case KILN_TRANSPORT_OCI:
                if (kiln_output_write_oci(dest, store, top, refs, n_refs, err) < 0)
                        return kiln_err_prefix(err, "write oci:%s", dest->path);
                return 0;
        case KILN_TRANSPORT_OCI_ARCHIVE:
                if (kiln_output_write_oci_archive(dest, store, top, refs, n_refs, err) < 0)
                        return kiln_err_prefix(err, "write oci-archive:%s", dest->path);
                return 0;
        case KILN_TRANSPORT_DOCKER_ARCHIVE:
                if (n_refs)
                        kiln_debug("docker-archive:%s has no place for referrers: %zu "
                                   "attestation(s) left out",
                                   dest->path, n_refs);
                if (kiln_output_write_docker_archive(dest, store, top, source_name, err) < 0)
                        return kiln_err_prefix(err, "write docker-archive:%s", dest->path);
                return 0;
        case KILN_TRANSPORT_DOCKER:
                break;
        }
        return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                            "kiln_output_write: registry destinations are pushed, not written");
}
