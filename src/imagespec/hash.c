/* Image name, tag and id, bit-for-bit as flytekit computes them: md5 over
 * Python's str() of a dict of the spec's fields (see the ImageSpec
 * reference). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>

#include "kiln/imagespec.h"
#include "imagespec-internal.h"

static void evp_freep(EVP_MD_CTX **c)
{
        EVP_MD_CTX_free(*c);
}
#define _cleanup_evp_ _cleanup_(evp_freep)

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}
#define _cleanup_dir_ _cleanup_(closedirp)

static void hex(const unsigned char *d, unsigned n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        for (unsigned i = 0; i < n; i++) {
                out[2 * i] = digits[d[i] >> 4];
                out[2 * i + 1] = digits[d[i] & 15];
        }
        out[2 * n] = '\0';
}

static int hash_fd(EVP_MD_CTX *md, int fd, const char *path, struct kiln_err **err)
{
        char buf[65536];

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return kiln_err_sys(err, "copy: reading %s", path);
                if (n == 0)
                        return 0;
                EVP_DigestUpdate(md, buf, (size_t)n);
        }
}

/* flytekit's compute_digest_for_file: the bytes, then the path relative to
 * the walked directory with its separators removed. Broken symlinks and
 * sockets are skipped, as flytekit skips them. */
static int digest_file(EVP_MD_CTX *md, const char *path, const char *rel, struct kiln_err **err)
{
        struct stat st;
        _cleanup_close_ int fd = -1;

        if (stat(path, &st) < 0) {
                if (errno == ENOENT || errno == ELOOP)
                        return 0;
                return kiln_err_sys(err, "copy: %s", path);
        }
        if (S_ISSOCK(st.st_mode))
                return 0;
        if (!S_ISREG(st.st_mode))
                return kiln_err_set(err, KILN_ERR_SPEC, 0,
                                    "copy: %s is a device or fifo, which cannot be copied", path);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return kiln_err_sys(err, "copy: opening %s", path);
        if (hash_fd(md, fd, path, err) < 0)
                return -1;
        for (const char *p = rel; *p; p++)
                if (*p != '/')
                        EVP_DigestUpdate(md, p, 1);
        return 0;
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* os.walk(top, topdown=True): a directory's files (sorted, as flytekit
 * sorts them) before its subdirectories. Subdirectories are visited in
 * name order where os.walk takes the file system's order; symlinks to
 * directories are not descended into (followlinks=False). */
static int digest_dir(EVP_MD_CTX *md, const char *top, const char *rel, int depth,
                      struct kiln_err **err)
{
        _cleanup_free_ char *dirpath =
            rel[0] ? kiln_xasprintf("%s/%s", top, rel) : kiln_xstrdup(top);
        _cleanup_dir_ DIR *d = NULL;
        struct dirent *de;
        _cleanup_strv_ char **files = NULL;
        _cleanup_strv_ char **dirs = NULL;
        size_t nf = 0, nd = 0;

        if (depth > 256)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "copy: %s: directories nest too deep",
                                    dirpath);
        d = opendir(dirpath);
        if (!d)
                return kiln_err_sys(err, "copy: opening directory %s", dirpath);
        files = kiln_xcalloc(1, sizeof(char *));
        dirs = kiln_xcalloc(1, sizeof(char *));
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                struct stat st;
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                p = kiln_xasprintf("%s/%s", dirpath, de->d_name);
                /* DirEntry.is_dir() follows symlinks */
                if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                        struct stat lst;
                        if (lstat(p, &lst) == 0 && S_ISLNK(lst.st_mode))
                                continue; /* listed by os.walk, never walked */
                        dirs = kiln_xrealloc(dirs, (nd + 2) * sizeof(char *));
                        dirs[nd++] = kiln_xstrdup(de->d_name);
                        dirs[nd] = NULL;
                } else {
                        files = kiln_xrealloc(files, (nf + 2) * sizeof(char *));
                        files[nf++] = kiln_xstrdup(de->d_name);
                        files[nf] = NULL;
                }
        }
        if (errno)
                return kiln_err_sys(err, "copy: reading directory %s", dirpath);
        closedir(steal_pointer(&d)); /* before recursing: not one descriptor per level */
        qsort(files, nf, sizeof(char *), name_cmp);
        qsort(dirs, nd, sizeof(char *), name_cmp);
        for (size_t i = 0; i < nf; i++) {
                _cleanup_free_ char *frel =
                    rel[0] ? kiln_xasprintf("%s/%s", rel, files[i]) : kiln_xstrdup(files[i]);
                _cleanup_free_ char *fpath = kiln_xasprintf("%s/%s", top, frel);
                if (digest_file(md, fpath, frel, err) < 0)
                        return -1;
        }
        for (size_t i = 0; i < nd; i++) {
                _cleanup_free_ char *drel =
                    rel[0] ? kiln_xasprintf("%s/%s", rel, dirs[i]) : kiln_xstrdup(dirs[i]);
                if (digest_dir(md, top, drel, depth + 1, err) < 0)
                        return -1;
        }
        return 0;
}

static int copy_digest(const struct kiln_spec *s, char out[33], struct kiln_err **err)
{
        _cleanup_evp_ EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (!md || !EVP_DigestInit_ex(md, EVP_md5(), NULL))
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "md5 is not available");
        for (size_t i = 0; s->copy_paths[i]; i++) {
                const char *path = s->copy_paths[i];
                struct stat st;
                if (stat(path, &st) < 0)
                        return kiln_err_sys(err, "%s: copy: '%s'", s->errname, s->copy[i]);
                if (S_ISDIR(st.st_mode)) {
                        if (digest_dir(md, path, "", 0, err) < 0)
                                return kiln_err_prefix(err, "%s", s->errname);
                } else {
                        const char *base = strrchr(s->copy[i], '/');
                        if (digest_file(md, path, base ? base + 1 : s->copy[i], err) < 0)
                                return kiln_err_prefix(err, "%s", s->errname);
                }
        }
        EVP_DigestFinal_ex(md, d, &n);
        hex(d, n, out);
        return 0;
}

/* flytekit's ls_files digest for source_root: the listed files in path
 * order, each its bytes then its relative path without separators. */
static int source_digest(const struct kiln_spec *s, char out[33], struct kiln_err **err)
{
        _cleanup_free_ char *root = NULL;
        _cleanup_strv_ char **files = NULL;
        if (kiln_spec_source_files(s, &root, &files, err) < 0)
                return -1;
        _cleanup_evp_ EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        if (!md || !EVP_DigestInit_ex(md, EVP_md5(), NULL))
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "md5 is not available");
        for (size_t i = 0; files && files[i]; i++) {
                _cleanup_free_ char *path = kiln_xasprintf("%s/%s", root, files[i]);
                if (digest_file(md, path, files[i], err) < 0)
                        return kiln_err_prefix(err, "%s: source_root", s->errname);
        }
        EVP_DigestFinal_ex(md, d, &n);
        hex(d, n, out);
        return 0;
}

static int requirements_digest(const struct kiln_spec *s, char out[41], struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        const unsigned char *p;
        size_t start = 0, end;
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (kiln_read_file(s->requirements_path, KILN_SPEC_REQUIREMENTS_MAX, &b, err) < 0)
                return kiln_err_prefix(err, "%s: requirements", s->errname);
        /* bytes.strip(): ASCII whitespace only */
        p = (const unsigned char *)b.data;
        end = b.len;
        while (start < end && strchr(" \t\n\r\v\f", p[start]) && p[start])
                start++;
        while (end > start && strchr(" \t\n\r\v\f", p[end - 1]) && p[end - 1])
                end--;
        if (!EVP_Digest(p ? p + start : (const unsigned char *)"", end - start, d, &n, EVP_sha1(),
                        NULL))
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "sha1 is not available");
        hex(d, n, out);
        return 0;
}

static void b64url_nopad(const unsigned char *d, size_t n, char *out)
{
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t o = 0, i = 0;

        for (; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
                out[o++] = tbl[v >> 18];
                out[o++] = tbl[(v >> 12) & 63];
                out[o++] = tbl[(v >> 6) & 63];
                out[o++] = tbl[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t)d[i] << 16;
                out[o++] = tbl[v >> 18];
                out[o++] = tbl[(v >> 12) & 63];
        } else if (n - i == 2) {
                uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
                out[o++] = tbl[v >> 18];
                out[o++] = tbl[(v >> 12) & 63];
                out[o++] = tbl[(v >> 6) & 63];
        }
        out[o] = '\0';
}

/* urlsafe_b64encode(md5(text)).rstrip("=") */
static void md5_b64(const char *text, size_t len, char out[23])
{
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        EVP_Digest(text, len, d, &n, EVP_md5(), NULL);
        b64url_nopad(d, n, out);
}

/* Left out of both texts (ImageSpec.id's parameters_to_exclude); the tag
 * also drops registry_config ("won't rebuild the image if we change the
 * registry_config path"), which the id keeps, so a pod's _F_IMG_ID
 * matches image_spec.id. */
static bool excluded(const char *field, bool for_tag)
{
        return !strcmp(field, "builder") || !strcmp(field, "pip_secret_mounts") ||
               !strcmp(field, "runtime_packages") || (for_tag && !strcmp(field, "registry_config"));
}

static int image_name(const struct kiln_spec *s, struct kiln_image_name *out, int depth,
                      struct kiln_err **err);

/* repr() of flytekit's CopyFileDetection member that the typed mode (set,
 * or defaulted by source_root) names: an Enum's repr, not a string. */
static const char *copy_mode_repr(const char *mode)
{
        if (!strcmp(mode, "loaded_modules"))
                return "<CopyFileDetection.LOADED_MODULES: 1>";
        if (!strcmp(mode, "all"))
                return "<CopyFileDetection.ALL: 2>";
        return "<CopyFileDetection.NO_COPY: 3>";
}

/* str(asdict(spec)) with None fields left out; for_tag replaces copy,
 * requirements and a nested base spec by their digests / image name. */
static int render_dict(const struct kiln_spec *s, bool for_tag, int depth, struct kiln_buf *b,
                       struct kiln_err **err)
{
        bool first = true;

        kiln_buf_puts(b, "{");
        for (size_t i = 0; kiln_spec_field_name(i); i++) {
                const char *f = kiln_spec_field_name(i);
                const struct kiln_spec_value *v = kiln_spec_value_get(s->raw, f);
                bool is_name = !strcmp(f, "name"), is_platform = !strcmp(f, "platform");

                bool is_mode = !strcmp(f, "source_copy_mode");

                if (excluded(f, for_tag))
                        continue;
                if (is_mode ? !s->source_copy_mode
                            : !is_name && !is_platform && (!v || v->type == KILN_SPEC_NULL))
                        continue;
                if (!first)
                        kiln_buf_puts(b, ", ");
                first = false;
                kiln_spec_str_repr(b, f, strlen(f));
                kiln_buf_puts(b, ": ");

                if (is_name) {
                        kiln_spec_str_repr(b, s->name, strlen(s->name));
                } else if (is_mode) {
                        kiln_buf_puts(b, copy_mode_repr(s->source_copy_mode));
                } else if (is_platform && !v) {
                        kiln_spec_str_repr(b, s->platform, strlen(s->platform));
                } else if (!strcmp(f, "registry")) {
                        const char *r = s->registry ? s->registry : "";
                        kiln_spec_str_repr(b, r, strlen(r));
                } else if (for_tag && !strcmp(f, "source_root") && kiln_spec_copies_source(s)) {
                        char d[33];
                        if (source_digest(s, d, err) < 0)
                                return -1;
                        kiln_spec_str_repr(b, d, strlen(d));
                } else if (for_tag && !strcmp(f, "copy") && v->n > 0) {
                        char d[33];
                        if (copy_digest(s, d, err) < 0)
                                return -1;
                        kiln_spec_str_repr(b, d, strlen(d));
                } else if (for_tag && !strcmp(f, "requirements")) {
                        char d[41];
                        if (requirements_digest(s, d, err) < 0)
                                return -1;
                        kiln_spec_str_repr(b, d, strlen(d));
                } else if (!strcmp(f, "base_image") && s->base_spec) {
                        if (for_tag) {
                                _cleanup_image_name_ struct kiln_image_name n = {0};
                                if (image_name(s->base_spec, &n, depth + 1, err) < 0)
                                        return kiln_err_prefix(err, "base_image");
                                kiln_spec_str_repr(b, n.full, strlen(n.full));
                        } else if (render_dict(s->base_spec, false, depth + 1, b, err) < 0) {
                                return -1;
                        }
                } else {
                        kiln_spec_value_repr(b, v);
                }
        }
        kiln_buf_puts(b, "}");
        return 0;
}

static int image_name(const struct kiln_spec *s, struct kiln_image_name *out, int depth,
                      struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf tag_dict = {0};
        _cleanup_buf_ struct kiln_buf id_dict = {0};
        char h[23];

        if (depth > 8)
                return kiln_err_set(err, KILN_ERR_SPEC, 0, "base_image: nested too deep");
        if (render_dict(s, true, depth, &tag_dict, err) < 0 ||
            render_dict(s, false, depth, &id_dict, err) < 0)
                return -1;

        md5_b64(id_dict.data, id_dict.len, h);
        out->id = kiln_xstrdup(h);
        md5_b64(tag_dict.data, tag_dict.len, h);
        for (char *p = h; *p; p++)
                if (*p == '-')
                        *p = '_';
        out->tag = s->tag_format ? kiln_spec_apply_tag_format(s->tag_format, h) : kiln_xstrdup(h);
        out->repository =
            s->registry ? kiln_xasprintf("%s/%s", s->registry, s->name) : kiln_xstrdup(s->name);
        out->full = kiln_xasprintf("%s:%s", out->repository, out->tag);
        out->tag_dict = kiln_buf_steal(&tag_dict);
        out->id_dict = kiln_buf_steal(&id_dict);
        return 0;
}

int kiln_spec_image_name(const struct kiln_spec *s, struct kiln_image_name *out,
                         struct kiln_err **err)
{
        _cleanup_image_name_ struct kiln_image_name n = {0};

        if (image_name(s, &n, 0, err) < 0)
                return -1;
        *out = n;
        n = (struct kiln_image_name){0};
        return 0;
}

void kiln_image_name_release(struct kiln_image_name *n)
{
        free(n->full);
        free(n->repository);
        free(n->tag);
        free(n->id);
        free(n->tag_dict);
        free(n->id_dict);
        *n = (struct kiln_image_name){0};
}
