#include "output-internal.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define OCI_LAYOUT_MAX ((size_t)64 << 10)
#define REF_NAME       "org.opencontainers.image.ref.name"

static void descriptor_free_fields(struct kiln_descriptor *d)
{
        free(d->media_type);
        free(d->digest);
        if (d->platform) {
                free(d->platform->os);
                free(d->platform->architecture);
                free(d->platform->variant);
                free(d->platform->os_version);
                free(d->platform);
        }
        if (d->annotations)
                json_decref(d->annotations);
        kiln_strv_free(d->urls);
        memset(d, 0, sizeof(*d));
}

void kiln_local_image_release(struct kiln_local_image *img)
{
        if (!img)
                return;
        if (img->cleanup && img->dir)
                kiln_rm_rf(img->dir, NULL);
        free(img->dir);
        descriptor_free_fields(&img->top);
        memset(img, 0, sizeof(*img));
}

/* ---------- oci-archive extraction ---------- */

static bool name_ok(const char *s, const char *extra)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr(extra, *s)))
                        return false;
        return true;
}

/* Only the three things a layout holds, named plainly: what an archive
 * may create is decided here, so extraction never follows or escapes. */
static int classify(const char *name, bool is_dir, const char *archive, struct kiln_err **err)
{
        _cleanup_free_ char *copy = kiln_xstrdup(name);
        size_t n = strlen(copy);
        while (n > 0 && copy[n - 1] == '/')
                copy[--n] = '\0';
        if (!strcmp(copy, "oci-layout") || !strcmp(copy, "index.json")) {
                if (!is_dir)
                        return 0;
        } else if (!strcmp(copy, "blobs")) {
                if (is_dir)
                        return 0;
        } else if (kiln_str_has_prefix(copy, "blobs/")) {
                char *alg = copy + 6;
                char *slash = strchr(alg, '/');
                if (!slash) {
                        if (is_dir && name_ok(alg, "+._-"))
                                return 0;
                } else {
                        *slash = '\0';
                        const char *enc = slash + 1;
                        if (!is_dir && name_ok(alg, "+._-") && !strchr(enc, '/') &&
                            name_ok(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ=_-"))
                                return 0;
                }
        }
        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                            "%s: unexpected entry %s (an oci-archive holds only oci-layout, "
                            "index.json and blobs/)",
                            archive, name);
}

static int extract_entry(struct archive *a, struct archive_entry *e, const char *dir,
                         const char *archive, struct kiln_err **err)
{
        const char *raw = archive_entry_pathname(e);
        if (!raw)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: entry without a name", archive);
        if (raw[0] == '/')
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: entry %s has an absolute path",
                                    archive, raw);
        const char *name = raw;
        while (kiln_str_has_prefix(name, "./"))
                name += 2;
        if (!*name || !strcmp(name, "."))
                return 0; /* the archive's root directory */
        for (const char *p = name; *p;) {
                const char *end = strchrnul(p, '/');
                if ((end - p == 2 && !strncmp(p, "..", 2)) || (end - p == 1 && *p == '.'))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: entry %s has a . or .. component", archive, raw);
                p = *end ? end + 1 : end;
        }
        if (archive_entry_hardlink(e))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: entry %s is a hard link", archive,
                                    raw);
        mode_t type = archive_entry_filetype(e);
        if (type != AE_IFREG && type != AE_IFDIR)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: entry %s is not a regular file or directory", archive,
                                    raw);
        if (classify(name, type == AE_IFDIR, archive, err) < 0)
                return -1;
        _cleanup_free_ char *path = kiln_xasprintf("%s/%s", dir, name);
        if (type == AE_IFDIR)
                return kiln_mkdir_p(path, 0755, err);
        _cleanup_free_ char *parent = kiln_xstrdup(path);
        *strrchr(parent, '/') = '\0';
        if (kiln_mkdir_p(parent, 0755, err) < 0)
                return -1;
        _cleanup_close_ int fd =
            open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
                if (errno == EEXIST)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: entry %s appears twice",
                                            archive, raw);
                return kiln_err_sys(err, "create %s", path);
        }
        if (archive_read_data_into_fd(a, fd) != ARCHIVE_OK) {
                const char *m = archive_error_string(a);
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: extract %s: %s", archive, raw,
                                    m ? m : "read failed");
        }
        return 0;
}

static int extract_archive(const char *file, const char *dir, struct kiln_err **err)
{
        /* declared first: the reader is freed before the file is closed */
        _cleanup_close_ int fd = -1;
        _cleanup_archive_read_ struct archive *a = archive_read_new();
        if (!a)
                abort();
        archive_read_support_format_tar(a);
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_zstd(a);
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "open %s", file);
        if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: not a tar archive: %s", file,
                                    archive_error_string(a) ? archive_error_string(a) : "");
        for (;;) {
                struct archive_entry *e = NULL;
                int r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        return 0;
                if (r < ARCHIVE_WARN) {
                        const char *m = archive_error_string(a);
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: corrupt tar archive: %s",
                                            file, m ? m : "read failed");
                }
                if (extract_entry(a, e, dir, file, err) < 0)
                        return -1;
        }
}

/* ---------- index.json ---------- */

static int fill_platform(json_t *p, const char *what, struct kiln_platform **out,
                         struct kiln_err **err)
{
        if (!p)
                return 0;
        const char *os = json_string_value(json_object_get(p, "os"));
        const char *arch = json_string_value(json_object_get(p, "architecture"));
        if (!json_is_object(p) || !os || !arch)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: platform needs os and architecture", what);
        const char *variant = json_string_value(json_object_get(p, "variant"));
        const char *osv = json_string_value(json_object_get(p, "os.version"));
        struct kiln_platform *pl = kiln_xcalloc(1, sizeof(*pl));
        pl->os = kiln_xstrdup(os);
        pl->architecture = kiln_xstrdup(arch);
        pl->variant = variant ? kiln_xstrdup(variant) : NULL;
        pl->os_version = osv ? kiln_xstrdup(osv) : NULL;
        *out = pl;
        return 0;
}

static int fill_top(json_t *e, const char *what, struct kiln_descriptor *d, struct kiln_err **err)
{
        const char *mt = json_string_value(json_object_get(e, "mediaType"));
        const char *digest = json_string_value(json_object_get(e, "digest"));
        json_t *size = json_object_get(e, "size");
        if (!mt)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: mediaType is missing", what);
        if (!digest)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: digest is missing", what);
        if (kiln_digest_validate(digest, err) < 0)
                return kiln_err_prefix(err, "%s", what);
        if (!json_is_integer(size) || json_integer_value(size) < 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: size is missing or negative",
                                    what);
        d->media_type = kiln_xstrdup(mt);
        d->digest = kiln_xstrdup(digest);
        d->size = json_integer_value(size);
        json_t *ann = json_object_get(e, "annotations");
        if (json_is_object(ann))
                d->annotations = json_deep_copy(ann);
        return fill_platform(json_object_get(e, "platform"), what, &d->platform, err);
}

static const char *entry_tag(json_t *e)
{
        return json_string_value(json_object_get(json_object_get(e, "annotations"), REF_NAME));
}

static char *tag_list(json_t *manifests)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        size_t i;
        json_t *e;
        json_array_foreach(manifests, i, e)
        {
                const char *t = entry_tag(e);
                if (!t)
                        continue;
                kiln_buf_printf(&b, "%s%s", b.len ? ", " : "", t);
        }
        if (!b.len)
                return kiln_xstrdup("it has no tagged images");
        return kiln_xasprintf("tags present: %s", b.data);
}

static int open_layout(const char *dir, const char *tag, const char *shown,
                       struct kiln_local_image *out, struct kiln_err **err)
{
        _cleanup_free_ char *marker = kiln_xasprintf("%s/oci-layout", dir);
        _cleanup_buf_ struct kiln_buf lb = {0};
        if (kiln_read_file(marker, OCI_LAYOUT_MAX, &lb, err) < 0) {
                if (*err && (*err)->domain == KILN_ERR_SYSTEM && (*err)->code == ENOENT) {
                        kiln_err_clear(err);
                        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                                            "%s is not an OCI layout (no oci-layout file)", shown);
                }
                return -1;
        }
        json_error_t jerr;
        _cleanup_json_ json_t *layout = json_loadb(lb.data, lb.len, 0, &jerr);
        const char *v = json_string_value(json_object_get(layout, "imageLayoutVersion"));
        if (!v || strcmp(v, "1.0.0") != 0)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: oci-layout: imageLayoutVersion %s is not 1.0.0", shown,
                                    v ? v : "(missing)");
        _cleanup_free_ char *ipath = kiln_xasprintf("%s/index.json", dir);
        _cleanup_buf_ struct kiln_buf ib = {0};
        if (kiln_read_file(ipath, KILN_MANIFEST_MAX, &ib, err) < 0)
                return kiln_err_prefix(err, "%s", shown);
        _cleanup_json_ json_t *idx = json_loadb(ib.data, ib.len, 0, &jerr);
        if (!json_is_object(idx))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: index.json: invalid JSON: %s",
                                    shown, idx ? "not an object" : jerr.text);
        json_t *manifests = json_object_get(idx, "manifests");
        if (!json_is_array(manifests))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: index.json: manifests is missing or not an array", shown);
        size_t n = json_array_size(manifests);
        json_t *chosen = NULL;
        size_t chosen_i = 0;
        if (tag) {
                for (size_t i = 0; i < n && !chosen; i++) {
                        const char *t = entry_tag(json_array_get(manifests, i));
                        if (t && !strcmp(t, tag)) {
                                chosen = json_array_get(manifests, i);
                                chosen_i = i;
                        }
                }
                if (!chosen) {
                        _cleanup_free_ char *tags = tag_list(manifests);
                        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                                            "%s: no image tagged %s (%s)", shown, tag, tags);
                }
        } else {
                /* Referrers (entries with an artifactType, as kiln and ORAS
                 * write attestations) are not images to choose from. */
                size_t images = 0;
                for (size_t i = 0; i < n; i++) {
                        json_t *e = json_array_get(manifests, i);
                        if (json_object_get(e, "artifactType"))
                                continue;
                        images++;
                        chosen = e;
                        chosen_i = i;
                }
                if (images == 0)
                        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0, "%s holds no images",
                                            shown);
                if (images > 1) {
                        _cleanup_free_ char *tags = tag_list(manifests);
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "%s holds %zu images; name one with :TAG (%s)", shown,
                                            images, tags);
                }
        }
        _cleanup_free_ char *what =
            kiln_xasprintf("%s: index.json manifests[%zu]", shown, chosen_i);
        return fill_top(chosen, what, &out->top, err);
}

int kiln_local_image_open(const struct kiln_image_loc *src, struct kiln_local_image *out,
                          struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        if (!src->path || !*src->path)
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "no path given");
        _cleanup_local_image_ struct kiln_local_image img = {0};
        _cleanup_free_ char *shown = NULL;
        if (src->transport == KILN_TRANSPORT_OCI) {
                shown = kiln_xasprintf("oci:%s", src->path);
                img.dir = kiln_xstrdup(src->path);
        } else if (src->transport == KILN_TRANSPORT_OCI_ARCHIVE) {
                shown = kiln_xasprintf("oci-archive:%s", src->path);
                const char *tmpdir = getenv("TMPDIR");
                img.dir = kiln_xasprintf("%s/kiln-oci-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
                if (!mkdtemp(img.dir)) {
                        kiln_err_sys(err, "create temporary directory %s", img.dir);
                        return kiln_err_prefix(err, "open %s", shown);
                }
                img.cleanup = true;
                if (extract_archive(src->path, img.dir, err) < 0)
                        return kiln_err_prefix(err, "open %s", shown);
        } else {
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "kiln_local_image_open: not a local image transport");
        }
        if (open_layout(img.dir, src->tag, shown, &img, err) < 0)
                return -1;
        *out = img;
        img = (struct kiln_local_image){0};
        return 0;
}

char *kiln_local_image_blob_path(const struct kiln_local_image *img, const char *digest)
{
        const char *colon = strchr(digest, ':');
        if (!colon)
                return kiln_xasprintf("%s/blobs/%s", img->dir, digest);
        return kiln_xasprintf("%s/blobs/%.*s/%s", img->dir, (int)(colon - digest), digest,
                              colon + 1);
}

int kiln_local_image_read_blob(const struct kiln_local_image *img, const char *digest, size_t max,
                               struct kiln_buf *out, struct kiln_err **err)
{
        if (kiln_digest_validate(digest, err) < 0)
                return -1;
        if (!kiln_str_has_prefix(digest, "sha256:"))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "blob %s: only sha256 digests can be verified", digest);
        _cleanup_free_ char *path = kiln_local_image_blob_path(img, digest);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                                            "blob %s is not in the layout %s", digest, img->dir);
                return kiln_err_sys(err, "open %s", path);
        }
        _cleanup_buf_ struct kiln_buf buf = {0};
        if (kiln_read_fd(fd, path, max, &buf, err) < 0)
                return -1;
        char got[KILN_DIGEST_MAX];
        kiln_sha256_digest(buf.data, buf.len, got);
        if (strcmp(got, digest) != 0)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "blob %s in %s is corrupt (content hashes to %s)", digest,
                                    img->dir, got);
        kiln_buf_append(out, buf.data, buf.len);
        return 0;
}

int kiln_local_image_referrers(const struct kiln_local_image *img, const char *subject,
                               const char *artifact_type, struct kiln_descriptor **out, size_t *n,
                               struct kiln_err **err)
{
        *out = NULL;
        *n = 0;
        _cleanup_free_ char *ipath = kiln_xasprintf("%s/index.json", img->dir);
        _cleanup_buf_ struct kiln_buf ib = {0};
        if (kiln_read_file(ipath, KILN_MANIFEST_MAX, &ib, err) < 0)
                return -1;
        json_error_t jerr;
        _cleanup_json_ json_t *idx = json_loadb(ib.data, ib.len, 0, &jerr);
        json_t *manifests = json_object_get(idx, "manifests");
        size_t i;
        json_t *e;
        json_array_foreach(manifests, i, e)
        {
                const char *at = json_string_value(json_object_get(e, "artifactType"));
                if (!at || (artifact_type && strcmp(at, artifact_type)))
                        continue;
                _cleanup_free_ char *what = kiln_xasprintf("%s manifests[%zu]", ipath, i);
                _cleanup_descriptor_ struct kiln_descriptor d = {0};
                if (fill_top(e, what, &d, err) < 0)
                        return -1;
                /* The entry's word is not enough: the manifest names its
                 * subject, and only that makes it this image's referrer. */
                _cleanup_buf_ struct kiln_buf mb = {0};
                if (kiln_local_image_read_blob(img, d.digest, KILN_MANIFEST_MAX, &mb, err) < 0)
                        return kiln_err_prefix(err, "%s", what);
                _cleanup_json_ json_t *m = json_loadb(mb.data, mb.len, 0, &jerr);
                const char *sd =
                    json_string_value(json_object_get(json_object_get(m, "subject"), "digest"));
                if (!sd || strcmp(sd, subject))
                        continue;
                d.artifact_type = kiln_xstrdup(at);
                *out = kiln_xrealloc(*out, (*n + 1) * sizeof(**out));
                (*out)[(*n)++] = d;
                d = (struct kiln_descriptor){0};
        }
        return 0;
}
