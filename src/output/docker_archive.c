#include "output-internal.h"

#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CHUNK (1 << 16)

/* ---------- RepoTag ---------- */

/* "name:tag" as docker prints it: Docker Hub names short, others in full. */
static char *repo_tag_format(const char *domain, const char *path, const char *tag)
{
        if (!strcmp(domain, KILN_DOCKER_HUB_DOMAIN)) {
                if (kiln_str_has_prefix(path, "library/") && !strchr(path + 8, '/'))
                        return kiln_xasprintf("%s:%s", path + 8, tag);
                return kiln_xasprintf("%s:%s", path, tag);
        }
        return kiln_xasprintf("%s/%s:%s", domain, path, tag);
}

/* source_name is a full reference produced by kiln ("docker.io/library/x:1",
 * maybe "@sha256:..."); normalise the short forms too, the way docker does. */
static char *repo_tag_from_string(const char *s)
{
        if (kiln_str_has_prefix(s, "docker://"))
                s += 9;
        _cleanup_free_ char *name = kiln_xstrdup(s);
        char *at = strchr(name, '@');
        if (at)
                *at = '\0';
        char *slash = strrchr(name, '/');
        char *colon = strrchr(slash ? slash : name, ':');
        if (!colon || !colon[1] || !*name)
                return NULL; /* digest only: docker cannot tag that */
        *colon = '\0';
        const char *tag = colon + 1;
        char *first = strchr(name, '/');
        if (first) {
                *first = '\0';
                if (strchr(name, '.') || strchr(name, ':') || !strcmp(name, "localhost"))
                        return repo_tag_format(name, first + 1, tag);
                *first = '/';
        }
        _cleanup_free_ char *path = first ? kiln_xstrdup(name) : kiln_xasprintf("library/%s", name);
        return repo_tag_format(KILN_DOCKER_HUB_DOMAIN, path, tag);
}

static char *repo_tag(const struct kiln_image_loc *dest, const char *source_name)
{
        if (dest->ref.domain && dest->ref.path) {
                if (!dest->ref.tag)
                        return NULL;
                return repo_tag_format(dest->ref.domain, dest->ref.path, dest->ref.tag);
        }
        return source_name && *source_name ? repo_tag_from_string(source_name) : NULL;
}

/* ---------- layer decompression ---------- */

enum comp { COMP_NONE, COMP_GZIP, COMP_ZSTD };

static const char *comp_name(enum comp c)
{
        return c == COMP_GZIP ? "gzip" : c == COMP_ZSTD ? "zstd" : "uncompressed";
}

static bool mt_says(const char *mt, const char *suffix)
{
        return mt && kiln_str_has_suffix(mt, suffix);
}

/* The content decides (docker does the same); the media type only has to
 * agree when it names a compression. */
static int detect_comp(int fd, const char *mt, const char *what, enum comp *out,
                       struct kiln_err **err)
{
        unsigned char m[4] = {0};
        ssize_t n = pread(fd, m, sizeof(m), 0);
        if (n < 0)
                return kiln_err_sys(err, "read %s", what);
        if (n >= 2 && m[0] == 0x1f && m[1] == 0x8b)
                *out = COMP_GZIP;
        else if (n >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
                *out = COMP_ZSTD;
        else
                *out = COMP_NONE;
        enum comp declared = mt_says(mt, "gzip")   ? COMP_GZIP
                             : mt_says(mt, "zstd") ? COMP_ZSTD
                                                   : COMP_NONE;
        if (declared != COMP_NONE && declared != *out)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: media type %s says %s but the content is %s", what, mt,
                                    comp_name(declared), comp_name(*out));
        return 0;
}

struct sink {
        int fd;
        struct kiln_sha256 *h;
        uint64_t size;
        const char *what;
};

static int sink_write(struct sink *s, const void *p, size_t n, struct kiln_err **err)
{
        kiln_sha256_update(s->h, p, n);
        s->size += n;
        if (kiln_write_all(s->fd, p, n) < 0)
                return kiln_err_sys(err, "write temporary file for %s", s->what);
        return 0;
}

static ssize_t read_some(int fd, void *buf, size_t n)
{
        ssize_t r;
        do
                r = read(fd, buf, n);
        while (r < 0 && errno == EINTR);
        return r;
}

static int copy_plain(int in, struct sink *s, struct kiln_err **err)
{
        _cleanup_free_ char *buf = kiln_xmalloc(CHUNK);
        for (;;) {
                ssize_t n = read_some(in, buf, CHUNK);
                if (n < 0)
                        return kiln_err_sys(err, "read %s", s->what);
                if (n == 0)
                        return 0;
                if (sink_write(s, buf, (size_t)n, err) < 0)
                        return -1;
        }
}

/* inflateEnd at scope exit; a zeroed stream (never initialised) is left
 * alone by zlib. */
static void inflate_endp(z_stream *z)
{
        inflateEnd(z);
}

/* Multi-member gzip (pigz, concatenated streams) is legal and Go's reader,
 * which docker uses, accepts it; trailing garbage is not. */
static int gunzip(int in, struct sink *s, struct kiln_err **err)
{
        _cleanup_free_ unsigned char *ibuf = kiln_xmalloc(CHUNK);
        _cleanup_free_ unsigned char *obuf = kiln_xmalloc(CHUNK);
        _cleanup_(inflate_endp) z_stream z = {0};
        if (inflateInit2(&z, 15 + 16) != Z_OK)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "%s: zlib init failed", s->what);
        bool in_member = true, eof = false, padding = false;
        for (;;) {
                if (z.avail_in == 0 && !eof) {
                        ssize_t n = read_some(in, ibuf, CHUNK);
                        if (n < 0)
                                return kiln_err_sys(err, "read %s", s->what);
                        eof = n == 0;
                        z.next_in = ibuf;
                        z.avail_in = (uInt)n;
                }
                if (!in_member) {
                        /* Zero padding after the last member (block-padded
                         * writers) is tolerated; anything else is not. */
                        while (z.avail_in > 0 && *z.next_in == 0) {
                                padding = true;
                                z.next_in++;
                                z.avail_in--;
                        }
                        if (z.avail_in == 0 && eof)
                                return 0;
                        if (z.avail_in == 0)
                                continue;
                        if (padding)
                                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                                    "%s: garbage after the gzip data", s->what);
                        inflateReset(&z);
                        in_member = true;
                }
                if (z.avail_in == 0 && eof)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: gzip stream is truncated",
                                            s->what);
                z.next_out = obuf;
                z.avail_out = CHUNK;
                int zr = inflate(&z, Z_NO_FLUSH);
                if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: corrupt gzip data: %s",
                                            s->what, z.msg ? z.msg : "inflate failed");
                size_t have = CHUNK - z.avail_out;
                if (have && sink_write(s, obuf, have, err) < 0)
                        return -1;
                if (zr == Z_STREAM_END)
                        in_member = false;
        }
}

/* libzstd is reached through libarchive's raw reader, which links it and
 * streams with bounded memory. */
static int unzstd(int in, struct sink *s, struct kiln_err **err)
{
        _cleanup_archive_read_ struct archive *a = archive_read_new();
        if (!a)
                abort();
        struct archive_entry *e = NULL;
        if (archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_format_raw(a) != ARCHIVE_OK ||
            archive_read_open_fd(a, in, CHUNK) != ARCHIVE_OK ||
            archive_read_next_header(a, &e) != ARCHIVE_OK)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: cannot read zstd data: %s",
                                    s->what,
                                    archive_error_string(a) ? archive_error_string(a) : "");
        _cleanup_free_ char *buf = kiln_xmalloc(CHUNK);
        for (;;) {
                la_ssize_t n = archive_read_data(a, buf, CHUNK);
                if (n < 0) {
                        const char *m = archive_error_string(a);
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: corrupt zstd data: %s",
                                            s->what, m ? m : "read failed");
                }
                if (n == 0)
                        return 0;
                if (sink_write(s, buf, (size_t)n, err) < 0)
                        return -1;
        }
}

/* Decompresses one layer into an unlinked temp file next to the
 * destination (layers can be larger than memory or /tmp) and checks it
 * against its diff_id. */
static int layer_to_temp(struct kiln_store *store, const struct kiln_output_desc *layer,
                         const char *diff_id, const char *dest, size_t idx, int *out_fd,
                         uint64_t *out_size, struct kiln_err **err)
{
        _cleanup_free_ char *what = kiln_xasprintf("layer %zu (%s)", idx, layer->digest);
        _cleanup_close_ int in = -1;
        if (kiln_store_open_blob(store, layer->digest, &in, NULL, err) < 0)
                return kiln_err_prefix(err, "%s", what);
        enum comp c = COMP_NONE;
        if (detect_comp(in, layer->media_type, what, &c, err) < 0)
                return -1;
        _cleanup_free_ char *tmp = kiln_xasprintf("%s.layer-XXXXXX", dest);
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return kiln_err_sys(err, "create temporary file for %s", what);
        unlink(tmp);
        _cleanup_sha256_ struct kiln_sha256 *h = kiln_sha256_new();
        struct sink s = {.fd = fd, .h = h, .size = 0, .what = what};
        int rc = c == COMP_GZIP   ? gunzip(in, &s, err)
                 : c == COMP_ZSTD ? unzstd(in, &s, err)
                                  : copy_plain(in, &s, err);
        if (rc < 0)
                return -1;
        char got[KILN_DIGEST_MAX];
        kiln_sha256_final(h, got);
        if (strcmp(got, diff_id) != 0)
                return kiln_err_set(err, KILN_ERR_DIGEST, 0,
                                    "%s: uncompressed content hashes to %s but the config's "
                                    "rootfs.diff_ids[%zu] is %s",
                                    what, got, idx, diff_id);
        if (lseek(fd, 0, SEEK_SET) < 0)
                return kiln_err_sys(err, "rewind temporary file for %s", what);
        *out_size = s.size;
        *out_fd = steal_fd(&fd);
        return 0;
}

/* ---------- the archive ---------- */

enum entry_kind { ENTRY_LAYER, ENTRY_CONFIG, ENTRY_MANIFEST, ENTRY_REPOSITORIES };
struct entry {
        char *name;
        enum entry_kind kind;
        size_t layer; /* ENTRY_LAYER: first index with this diff_id */
};

static int cmp_entry(const void *a, const void *b)
{
        return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int read_diff_ids(const char *data, size_t len, const char *what, size_t want, char ***out,
                         struct kiln_err **err)
{
        json_error_t jerr;
        _cleanup_json_ json_t *cfg = json_loadb(data, len, 0, &jerr);
        if (!json_is_object(cfg))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: invalid JSON: %s", what,
                                    cfg ? "not an object" : jerr.text);
        json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        if (!json_is_array(ids))
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "%s: rootfs.diff_ids is missing",
                                    what);
        if (json_array_size(ids) != want)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "%s: rootfs.diff_ids has %zu entries but the manifest has %zu "
                                    "layers",
                                    what, json_array_size(ids), want);
        _cleanup_strv_ char **v = kiln_xcalloc(want + 1, sizeof(char *));
        for (size_t i = 0; i < want; i++) {
                const char *d = json_string_value(json_array_get(ids, i));
                if (!d)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: rootfs.diff_ids[%zu] is not a string", what, i);
                if (kiln_digest_validate(d, err) < 0)
                        return kiln_err_prefix(err, "%s: rootfs.diff_ids[%zu]", what, i);
                if (!kiln_str_has_prefix(d, "sha256:"))
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s: rootfs.diff_ids[%zu]: only sha256 is supported",
                                            what, i);
                v[i] = kiln_xstrdup(d);
        }
        *out = steal_pointer(&v);
        return 0;
}

static char *manifest_json(const char *config_name, const char *tag, char **diff_ids)
{
        _cleanup_json_ json_t *root = json_array();
        json_t *m = json_object();
        json_object_set_new(m, "Config", json_string(config_name));
        json_t *tags = json_array();
        if (tag)
                json_array_append_new(tags, json_string(tag));
        json_object_set_new(m, "RepoTags", tags);
        json_t *layers = json_array();
        for (size_t i = 0; diff_ids[i]; i++)
                json_array_append_new(layers, json_sprintf("%s.tar", kiln_digest_hex(diff_ids[i])));
        json_object_set_new(m, "Layers", layers);
        json_array_append_new(root, m);
        char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                abort();
        return s;
}

/* The legacy file docker load still reads for its tag when a tarball has
 * no manifest.json; harmless otherwise. */
static char *repositories_json(const char *tag, const char *top_diff_id)
{
        _cleanup_free_ char *name = kiln_xstrdup(tag);
        char *colon = strrchr(name, ':');
        *colon = '\0';
        _cleanup_json_ json_t *root = json_object();
        json_t *t = json_object();
        json_object_set_new(t, colon + 1, json_string(kiln_digest_hex(top_diff_id)));
        json_object_set_new(root, name, t);
        char *s = json_dumps(root, JSON_COMPACT);
        if (!s)
                abort();
        return s;
}

/* The archive's entries, sorted by name. */
struct entries {
        struct entry *v;
        size_t n;
};

static void entries_release(struct entries *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].name);
        free(l->v);
        *l = (struct entries){0};
}
#define _cleanup_entries_ _cleanup_(entries_release)

/* What goes into the archive for one entry. */
struct docker_image {
        struct kiln_store *store;
        const struct kiln_image_loc *dest;
        const struct kiln_output_doc *m;
        char **diff_ids;
        const struct kiln_buf *config;
        const char *manifest;
        const char *repositories;
};

static int write_entry(struct kiln_output_tar *t, const struct docker_image *img,
                       const struct entry *e, struct kiln_err **err)
{
        switch (e->kind) {
        case ENTRY_LAYER: {
                _cleanup_close_ int fd = -1;
                uint64_t size = 0;
                if (layer_to_temp(img->store, &img->m->layers[e->layer], img->diff_ids[e->layer],
                                  img->dest->path, e->layer, &fd, &size, err) < 0)
                        return -1;
                return kiln_output_tar_add_fd(t, e->name, fd, size, NULL, err);
        }
        case ENTRY_CONFIG:
                return kiln_output_tar_add_mem(t, e->name, img->config->data, img->config->len,
                                               err);
        case ENTRY_MANIFEST:
                return kiln_output_tar_add_mem(t, e->name, img->manifest, strlen(img->manifest),
                                               err);
        case ENTRY_REPOSITORIES:
                return kiln_output_tar_add_mem(t, e->name, img->repositories,
                                               strlen(img->repositories), err);
        }
        return 0;
}

/* Checks every blob is present before anything is written. */
static int check_blobs(struct kiln_store *store, const struct kiln_descriptor *top,
                       struct kiln_err **err)
{
        _cleanup_output_blobs_ struct kiln_output_blobs blobs = {0};
        return kiln_output_collect(store, top, &blobs, err);
}

int kiln_output_write_docker_archive(const struct kiln_image_loc *dest, struct kiln_store *store,
                                     const struct kiln_descriptor *top, const char *source_name,
                                     struct kiln_err **err)
{
        if (!dest->path || !*dest->path)
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "no file given");
        if (!top || !top->digest)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "no image to write");
        if (kiln_output_mt_is_index(top->media_type))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "docker-archive holds a single image; choose a platform");
        if (check_blobs(store, top, err) < 0)
                return -1;

        _cleanup_buf_ struct kiln_buf mbuf = {0};
        if (kiln_store_read(store, top->digest, KILN_MANIFEST_MAX, &mbuf, err) < 0)
                return -1;
        _cleanup_free_ char *mwhat = kiln_xasprintf("manifest %s", top->digest);
        _cleanup_output_doc_ struct kiln_output_doc m = {0};
        if (kiln_output_doc_parse(mbuf.data, mbuf.len, top->media_type, mwhat, &m, err) < 0)
                return -1;
        if (m.is_index)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "docker-archive holds a single image; choose a platform");
        _cleanup_buf_ struct kiln_buf cbuf = {0};
        _cleanup_strv_ char **diff_ids = NULL;
        _cleanup_free_ char *cwhat = kiln_xasprintf("config %s", m.config.digest);
        if (kiln_store_read(store, m.config.digest, KILN_CONFIG_MAX, &cbuf, err) < 0 ||
            read_diff_ids(cbuf.data, cbuf.len, cwhat, m.n_layers, &diff_ids, err) < 0)
                return -1;

        _cleanup_free_ char *tag = repo_tag(dest, source_name);
        _cleanup_free_ char *config_name =
            kiln_xasprintf("%s.json", kiln_digest_hex(m.config.digest));
        _cleanup_free_ char *manifest = manifest_json(config_name, tag, diff_ids);
        _cleanup_free_ char *repositories =
            tag && m.n_layers ? repositories_json(tag, diff_ids[m.n_layers - 1]) : NULL;

        _cleanup_entries_ struct entries entries = {0};
        entries.v = kiln_xcalloc(m.n_layers + 3, sizeof(*entries.v));
        for (size_t i = 0; i < m.n_layers; i++) {
                bool dup = false;
                for (size_t j = 0; j < i; j++)
                        dup = dup || !strcmp(diff_ids[i], diff_ids[j]);
                if (dup)
                        continue; /* an empty layer twice: stored once, listed twice */
                entries.v[entries.n++] = (struct entry){
                    kiln_xasprintf("%s.tar", kiln_digest_hex(diff_ids[i])), ENTRY_LAYER, i};
        }
        entries.v[entries.n++] = (struct entry){kiln_xstrdup(config_name), ENTRY_CONFIG, 0};
        entries.v[entries.n++] = (struct entry){kiln_xstrdup("manifest.json"), ENTRY_MANIFEST, 0};
        if (repositories)
                entries.v[entries.n++] =
                    (struct entry){kiln_xstrdup("repositories"), ENTRY_REPOSITORIES, 0};
        qsort(entries.v, entries.n, sizeof(*entries.v), cmp_entry);

        const struct docker_image img = {.store = store,
                                         .dest = dest,
                                         .m = &m,
                                         .diff_ids = diff_ids,
                                         .config = &cbuf,
                                         .manifest = manifest,
                                         .repositories = repositories};
        _cleanup_output_tar_ struct kiln_output_tar t = {.fd = -1};
        if (kiln_output_tar_begin(dest->path, &t, err) < 0)
                return -1;
        for (size_t i = 0; i < entries.n; i++)
                if (write_entry(&t, &img, &entries.v[i], err) < 0)
                        return -1;
        return kiln_output_tar_commit(&t, err);
}
