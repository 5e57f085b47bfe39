/* Output writers and local image reader, checked against a synthetic image
 * built here (real gzip/zstd layer tarballs) and, when installed, against
 * skopeo and umoci as independent judges. */
#include "kiln/attest.h"
#include "kiln/output.h"
#include "test.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static struct kiln_store *store;
static char root[] = "/tmp/kiln-test-output-XXXXXX";

struct file {
        const char *name;
        const char *content; /* NULL: directory */
};

struct image {
        char manifest[KILN_DIGEST_MAX];
        size_t manifest_len;
        char config[KILN_DIGEST_MAX];
        char diff_ids[3][KILN_DIGEST_MAX];
        char layers[3][KILN_DIGEST_MAX];
        size_t n_layers;
};

static struct image img_amd64, img_arm64, img_bad;
static char index_digest[KILN_DIGEST_MAX];
static size_t index_len;

/* ---------- building blobs ---------- */

static la_ssize_t buf_write_cb(struct archive *a, void *ud, const void *p, size_t n)
{
        (void)a;
        kiln_buf_append(ud, p, n);
        return (la_ssize_t)n;
}

static void make_tar(const struct file *files, struct kiln_buf *out)
{
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        archive_write_open(a, out, NULL, buf_write_cb, NULL);
        for (const struct file *f = files; f->name; f++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, f->name);
                archive_entry_set_filetype(e, f->content ? AE_IFREG : AE_IFDIR);
                archive_entry_set_perm(e, f->content ? 0644 : 0755);
                archive_entry_set_size(e, f->content ? (la_int64_t)strlen(f->content) : 0);
                archive_entry_set_mtime(e, 1700000000, 0);
                archive_write_header(a, e);
                if (f->content)
                        archive_write_data(a, f->content, strlen(f->content));
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
}

static void compress(const struct kiln_buf *in, int filter, struct kiln_buf *out)
{
        struct archive *a = archive_write_new();
        archive_write_set_format_raw(a);
        archive_write_add_filter(a, filter);
        archive_write_set_bytes_in_last_block(a, 1);
        archive_write_open(a, out, NULL, buf_write_cb, NULL);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "data");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t)in->len);
        archive_write_header(a, e);
        archive_write_data(a, in->data, in->len);
        archive_entry_free(e);
        archive_write_close(a);
        archive_write_free(a);
}

static void put(const void *p, size_t n, char out[KILN_DIGEST_MAX])
{
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_store_put(store, p, n, out, &err) < 0) {
                fprintf(stderr, "store put: %s\n", err->msg);
                exit(2);
        }
}

static size_t blob_size(const char *digest)
{
        _cleanup_free_ char *p = kiln_store_blob_path(store, digest);
        struct stat st;
        return stat(p, &st) == 0 ? (size_t)st.st_size : 0;
}

/* One layer: its tar goes in compressed with filter; diff_id is the tar's. */
static void add_layer(struct image *im, const struct file *files, int filter)
{
        _cleanup_buf_ struct kiln_buf tar = {0};
        _cleanup_buf_ struct kiln_buf z = {0};
        make_tar(files, &tar);
        kiln_sha256_digest(tar.data, tar.len, im->diff_ids[im->n_layers]);
        if (filter == ARCHIVE_FILTER_NONE)
                put(tar.data, tar.len, im->layers[im->n_layers]);
        else {
                compress(&tar, filter, &z);
                put(z.data, z.len, im->layers[im->n_layers]);
        }
        im->n_layers++;
}

static const char *layer_mt(int filter)
{
        return filter == ARCHIVE_FILTER_GZIP   ? KILN_MT_OCI_LAYER_GZIP
               : filter == ARCHIVE_FILTER_ZSTD ? KILN_MT_OCI_LAYER_ZSTD
                                               : KILN_MT_OCI_LAYER;
}

static void finish_image(struct image *im, const char *arch, const int *filters,
                         const char *wrong_diff_id)
{
        _cleanup_buf_ struct kiln_buf cfg = {0};
        kiln_buf_printf(&cfg,
                        "{\"architecture\":\"%s\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/"
                        "sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[",
                        arch);
        for (size_t i = 0; i < im->n_layers; i++)
                kiln_buf_printf(&cfg, "%s\"%s\"", i ? "," : "",
                                i == 0 && wrong_diff_id ? wrong_diff_id : im->diff_ids[i]);
        kiln_buf_puts(&cfg, "]}}");
        put(cfg.data, cfg.len, im->config);
        _cleanup_buf_ struct kiln_buf m = {0};
        kiln_buf_printf(
            &m,
            "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
            "\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
            KILN_MT_OCI_MANIFEST, KILN_MT_OCI_CONFIG, im->config, cfg.len);
        for (size_t i = 0; i < im->n_layers; i++)
                kiln_buf_printf(&m, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
                                i ? "," : "", layer_mt(filters[i]), im->layers[i],
                                blob_size(im->layers[i]));
        kiln_buf_puts(&m, "]}");
        put(m.data, m.len, im->manifest);
        im->manifest_len = m.len;
}

static void build_images(void)
{
        static const struct file l1[] = {{"etc/", NULL},
                                         {"etc/kiln-release", "kiln test image\n"},
                                         {"hello.txt", "hello from layer 1\n"},
                                         {NULL, NULL}};
        static const struct file l2[] = {{"layer2.txt", "second layer, zstd\n"}, {NULL, NULL}};
        static const struct file l3[] = {{"arm.txt", "arm64 only\n"}, {NULL, NULL}};
        static const int f_amd64[] = {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD};
        static const int f_arm64[] = {ARCHIVE_FILTER_GZIP};
        add_layer(&img_amd64, l1, ARCHIVE_FILTER_GZIP);
        add_layer(&img_amd64, l2, ARCHIVE_FILTER_ZSTD);
        finish_image(&img_amd64, "amd64", f_amd64, NULL);
        add_layer(&img_arm64, l3, ARCHIVE_FILTER_GZIP);
        finish_image(&img_arm64, "arm64", f_arm64, NULL);
        add_layer(&img_bad, l3, ARCHIVE_FILTER_GZIP);
        finish_image(&img_bad, "arm64", f_arm64,
                     "sha256:0000000000000000000000000000000000000000000000000000000000000000");

        _cleanup_buf_ struct kiln_buf idx = {0};
        kiln_buf_printf(&idx,
                        "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
                        "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
                        "\"architecture\":\"amd64\",\"os\":\"linux\"}},"
                        "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
                        "\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}",
                        KILN_MT_OCI_INDEX, KILN_MT_OCI_MANIFEST, img_amd64.manifest,
                        img_amd64.manifest_len, KILN_MT_OCI_MANIFEST, img_arm64.manifest,
                        img_arm64.manifest_len);
        put(idx.data, idx.len, index_digest);
        index_len = idx.len;
}

static struct kiln_descriptor desc(const char *mt, const char *digest, size_t size)
{
        return (struct kiln_descriptor){
            .media_type = (char *)mt, .digest = (char *)digest, .size = (int64_t)size};
}

static struct kiln_image_loc loc(enum kiln_transport t, const char *path, const char *tag)
{
        return (struct kiln_image_loc){.transport = t, .path = (char *)path, .tag = (char *)tag};
}

/* ---------- reading results ---------- */

static json_t *load_json(const char *path)
{
        json_error_t je;
        return json_load_file(path, 0, &je);
}

static const char *entry_ref(json_t *e)
{
        return json_string_value(json_object_get(json_object_get(e, "annotations"),
                                                 "org.opencontainers.image.ref.name"));
}

static json_t *find_ref(json_t *index, const char *tag)
{
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(index, "manifests"), i, e)
        {
                const char *r = entry_ref(e);
                if (r && !strcmp(r, tag))
                        return e;
        }
        return NULL;
}

static bool exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

static void check_blob_file(const char *dir, const char *digest)
{
        _cleanup_free_ char *p = kiln_xasprintf("%s/blobs/sha256/%s", dir, kiln_digest_hex(digest));
        char got[KILN_DIGEST_MAX] = "";
        _cleanup_err_ struct kiln_err *err = NULL;
        kiln_sha256_file(p, got, &err);
        CHECK_STR(got, digest);
}

/* Files left next to dest (temp siblings) after a failed write. */
static int count_prefix(const char *dir, const char *prefix)
{
        int n = 0;
        _cleanup_free_ char *cmd = kiln_xasprintf("ls -a '%s'", dir);
        FILE *f = popen(cmd, "r");
        char line[512];
        while (f && fgets(line, sizeof(line), f))
                if (kiln_str_has_prefix(line, prefix))
                        n++;
        if (f)
                pclose(f);
        return n;
}

/* Tar entries of an archive: names in order, and contents by name. */
struct tar_entry {
        char *name;
        struct kiln_buf data;
        mode_t mode;
        int64_t mtime;
        int64_t uid;
};
struct tar_list {
        struct tar_entry v[64];
        size_t n;
};

static void tar_list_release(struct tar_list *t)
{
        for (size_t i = 0; i < t->n; i++) {
                free(t->v[i].name);
                kiln_buf_release(&t->v[i].data);
        }
        t->n = 0;
}

static int read_tar(const char *path, struct tar_list *out)
{
        struct archive *a = archive_read_new();
        archive_read_support_format_tar(a);
        if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
                archive_read_free(a);
                return -1;
        }
        struct archive_entry *e;
        while (archive_read_next_header(a, &e) == ARCHIVE_OK && out->n < 64) {
                struct tar_entry *t = &out->v[out->n++];
                memset(t, 0, sizeof(*t));
                t->name = kiln_xstrdup(archive_entry_pathname(e));
                t->mode = archive_entry_mode(e);
                t->mtime = archive_entry_mtime(e);
                t->uid = archive_entry_uid(e);
                char buf[65536];
                la_ssize_t n;
                while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
                        kiln_buf_append(&t->data, buf, (size_t)n);
                if (!t->data.data)
                        kiln_buf_append(&t->data, "", 0);
        }
        archive_read_free(a);
        return 0;
}

static struct tar_entry *tar_find(struct tar_list *t, const char *name)
{
        for (size_t i = 0; i < t->n; i++)
                if (!strcmp(t->v[i].name, name))
                        return &t->v[i];
        return NULL;
}

/* ---------- external judges ---------- */

static bool have_tools;

static int run(const char *cmd)
{
        _cleanup_free_ char *full = kiln_xasprintf("%s >%s/judge.log 2>&1", cmd, root);
        int st = system(full);
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
        if (rc != 0) {
                _cleanup_free_ char *log = kiln_xasprintf("%s/judge.log", root);
                _cleanup_buf_ struct kiln_buf b = {0};
                kiln_read_file(log, 1 << 16, &b, NULL);
                fprintf(stderr, "$ %s\n%s\n", cmd, b.data ? b.data : "");
        }
        return rc;
}

static void check_tools(void)
{
        have_tools = access("/usr/bin/skopeo", X_OK) == 0 && access("/usr/bin/umoci", X_OK) == 0;
        const char *ci = getenv("CI");
        if (!have_tools && ci && !strcmp(ci, "true"))
                CHECK(have_tools, "skopeo and umoci are required when CI=true");
        if (!have_tools)
                printf("skopeo/umoci not installed: skipping the external checks\n");
}

/* ---------- tests ---------- */

static void test_oci_layout(void)
{
        _cleanup_free_ char *dir = kiln_xasprintf("%s/layout", root);
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_descriptor top =
            desc(KILN_MT_OCI_MANIFEST, img_amd64.manifest, img_amd64.manifest_len);
        struct kiln_image_loc d = loc(KILN_TRANSPORT_OCI, dir, "v1");
        CHECK(kiln_output_write(&d, store, &top, NULL, &err) == 0, "write oci: %s",
              err ? err->msg : "");

        _cleanup_free_ char *marker = kiln_xasprintf("%s/oci-layout", dir);
        json_t *layout = load_json(marker);
        CHECK_STR(json_string_value(json_object_get(layout, "imageLayoutVersion")), "1.0.0");
        json_decref(layout);

        _cleanup_free_ char *ipath = kiln_xasprintf("%s/index.json", dir);
        json_t *idx = load_json(ipath);
        CHECK(json_integer_value(json_object_get(idx, "schemaVersion")) == 2, "schemaVersion");
        CHECK_STR(json_string_value(json_object_get(idx, "mediaType")), KILN_MT_OCI_INDEX);
        CHECK(json_array_size(json_object_get(idx, "manifests")) == 1, "one entry");
        json_t *e = find_ref(idx, "v1");
        CHECK(e != NULL, "entry v1");
        CHECK_STR(json_string_value(json_object_get(e, "digest")), img_amd64.manifest);
        CHECK_STR(json_string_value(json_object_get(e, "mediaType")), KILN_MT_OCI_MANIFEST);
        CHECK(json_integer_value(json_object_get(e, "size")) == (json_int_t)img_amd64.manifest_len,
              "size");
        json_decref(idx);

        check_blob_file(dir, img_amd64.manifest);
        check_blob_file(dir, img_amd64.config);
        for (size_t i = 0; i < img_amd64.n_layers; i++)
                check_blob_file(dir, img_amd64.layers[i]);
        _cleanup_free_ char *other =
            kiln_xasprintf("%s/blobs/sha256/%s", dir, kiln_digest_hex(img_arm64.manifest));
        CHECK(!exists(other), "only the image's blobs are written");

        /* Same filesystem as the store: hardlinked, not copied. */
        _cleanup_free_ char *lp =
            kiln_xasprintf("%s/blobs/sha256/%s", dir, kiln_digest_hex(img_amd64.layers[0]));
        _cleanup_free_ char *sp = kiln_store_blob_path(store, img_amd64.layers[0]);
        struct stat a, b;
        CHECK(stat(lp, &a) == 0 && stat(sp, &b) == 0 && a.st_ino == b.st_ino,
              "layer blob is a hardlink of the store's");

        /* Manifests are copies (tools rewrite them in place), never links. */
        _cleanup_free_ char *mp =
            kiln_xasprintf("%s/blobs/sha256/%s", dir, kiln_digest_hex(img_amd64.manifest));
        _cleanup_free_ char *smp = kiln_store_blob_path(store, img_amd64.manifest);
        CHECK(stat(mp, &a) == 0 && stat(smp, &b) == 0 && a.st_ino != b.st_ino &&
                  (a.st_mode & 0777) == 0644,
              "manifest blob is a 0644 copy");

        /* Second tag: the index, into the same layout. */
        struct kiln_descriptor itop = desc(KILN_MT_OCI_INDEX, index_digest, index_len);
        d.tag = "multi";
        CHECK(kiln_output_write(&d, store, &itop, NULL, &err) == 0, "write index: %s",
              err ? err->msg : "");
        idx = load_json(ipath);
        CHECK(json_array_size(json_object_get(idx, "manifests")) == 2, "two entries");
        CHECK(find_ref(idx, "v1") != NULL, "v1 still there");
        e = find_ref(idx, "multi");
        CHECK_STR(json_string_value(json_object_get(e, "digest")), index_digest);
        CHECK_STR(json_string_value(json_object_get(e, "mediaType")), KILN_MT_OCI_INDEX);
        json_decref(idx);
        check_blob_file(dir, index_digest);
        check_blob_file(dir, img_arm64.manifest);
        check_blob_file(dir, img_arm64.layers[0]);

        /* Same tag again, other image: replaced, not duplicated. */
        struct kiln_platform arm = {.os = "linux", .architecture = "arm64", .variant = "v8"};
        struct kiln_descriptor atop = desc(NULL, img_arm64.manifest, img_arm64.manifest_len);
        atop.platform = &arm;
        d.tag = "v1";
        CHECK(kiln_output_write(&d, store, &atop, NULL, &err) == 0, "overwrite v1: %s",
              err ? err->msg : "");
        idx = load_json(ipath);
        CHECK(json_array_size(json_object_get(idx, "manifests")) == 2, "still two entries");
        e = find_ref(idx, "v1");
        CHECK_STR(json_string_value(json_object_get(e, "digest")), img_arm64.manifest);
        CHECK_STR(json_string_value(json_object_get(e, "mediaType")), KILN_MT_OCI_MANIFEST);
        CHECK_STR(json_string_value(json_object_get(json_object_get(e, "platform"), "variant")),
                  "v8");
        json_decref(idx);

        /* Reopen as a local image. */
        struct kiln_local_image li;
        struct kiln_image_loc s = loc(KILN_TRANSPORT_OCI, dir, "multi");
        CHECK(kiln_local_image_open(&s, &li, &err) == 0, "open: %s", err ? err->msg : "");
        if (!err) {
                CHECK_STR(li.top.digest, index_digest);
                CHECK(!li.cleanup, "layout dir is not removed");
                _cleanup_buf_ struct kiln_buf blob = {0};
                CHECK(kiln_local_image_read_blob(&li, img_arm64.config, KILN_CONFIG_MAX, &blob,
                                                 &err) == 0,
                      "read blob");
                kiln_local_image_release(&li);
        }
        kiln_err_clear(&err);
        s.tag = NULL;
        CHECK(kiln_local_image_open(&s, &li, &err) < 0, "two images, no tag");
        CHECK(err && strstr(err->msg, "v1") && strstr(err->msg, "multi"), "lists tags: %s",
              err ? err->msg : "");
        kiln_err_clear(&err);
        s.tag = "nope";
        CHECK(kiln_local_image_open(&s, &li, &err) < 0 && err && err->domain == KILN_ERR_NOT_FOUND,
              "unknown tag is NOT_FOUND");
        CHECK(err && strstr(err->msg, "nope") && strstr(err->msg, "multi"), "names tags: %s",
              err ? err->msg : "");
        kiln_err_clear(&err);

        if (have_tools) {
                _cleanup_free_ char *c1 = kiln_xasprintf("skopeo inspect oci:%s:multi", dir);
                CHECK(run(c1) == 0, "skopeo inspect oci:multi");
                _cleanup_free_ char *c2 = kiln_xasprintf("skopeo inspect oci:%s:v1", dir);
                CHECK(run(c2) == 0, "skopeo inspect oci:v1");
                _cleanup_free_ char *bundle = kiln_xasprintf("%s/bundle", root);
                _cleanup_free_ char *c3 =
                    kiln_xasprintf("umoci unpack --rootless --image %s:v1 %s", dir, bundle);
                CHECK(run(c3) == 0, "umoci unpack");
                /* skopeo writing into the layout must not touch the store. */
                _cleanup_free_ char *c4 =
                    kiln_xasprintf("skopeo copy -q oci:%s:v1 oci:%s:copied", dir, dir);
                CHECK(run(c4) == 0, "skopeo copy into the same layout");
                _cleanup_buf_ struct kiln_buf sb = {0};
                CHECK(kiln_store_read(store, img_arm64.manifest, KILN_MANIFEST_MAX, &sb, NULL) == 0,
                      "store intact");
                /* And kiln reads what skopeo wrote: an oci-archive of it. */
                _cleanup_free_ char *sk = kiln_xasprintf("%s/skopeo.oci.tar", root);
                _cleanup_free_ char *c5 =
                    kiln_xasprintf("skopeo copy -q oci:%s:v1 oci-archive:%s:sk", dir, sk);
                CHECK(run(c5) == 0, "skopeo copy to oci-archive");
                struct kiln_image_loc ss = loc(KILN_TRANSPORT_OCI_ARCHIVE, sk, "sk");
                CHECK(kiln_local_image_open(&ss, &li, &err) == 0, "open skopeo's archive: %s",
                      err ? err->msg : "");
                if (!err) {
                        _cleanup_buf_ struct kiln_buf mb = {0};
                        CHECK(kiln_local_image_read_blob(&li, li.top.digest, KILN_MANIFEST_MAX, &mb,
                                                         &err) == 0 &&
                                  strstr(mb.data, img_arm64.layers[0]) != NULL &&
                                  strstr(mb.data, img_arm64.config) != NULL,
                              "skopeo's manifest read back (same config)");
                        kiln_local_image_release(&li);
                }
                kiln_err_clear(&err);
                _cleanup_free_ char *f = kiln_xasprintf("%s/rootfs/arm.txt", bundle);
                _cleanup_buf_ struct kiln_buf fb = {0};
                CHECK(kiln_read_file(f, 4096, &fb, NULL) == 0 && fb.data &&
                          !strcmp(fb.data, "arm64 only\n"),
                      "umoci unpacked the layer's file");
        }
}

/* A layout on another filesystem than the store gets real 0644 copies. */
static void test_oci_layout_copy(void)
{
        struct stat shm, st_root;
        if (stat("/dev/shm", &shm) < 0 || stat(root, &st_root) < 0 ||
            shm.st_dev == st_root.st_dev || access("/dev/shm", W_OK) < 0) {
                printf("no second filesystem: skipping the copy test\n");
                return;
        }
        char dir[] = "/dev/shm/kiln-test-layout-XXXXXX";
        CHECK(mkdtemp(dir) != NULL, "mkdtemp");
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_descriptor top =
            desc(KILN_MT_OCI_MANIFEST, img_amd64.manifest, img_amd64.manifest_len);
        struct kiln_image_loc d = loc(KILN_TRANSPORT_OCI, dir, NULL);
        CHECK(kiln_output_write(&d, store, &top, NULL, &err) == 0, "write: %s",
              err ? err->msg : "");
        _cleanup_free_ char *lp =
            kiln_xasprintf("%s/blobs/sha256/%s", dir, kiln_digest_hex(img_amd64.layers[1]));
        struct stat st;
        CHECK(stat(lp, &st) == 0 && (st.st_mode & 0777) == 0644 && st.st_nlink == 1,
              "copied blob is 0644");
        check_blob_file(dir, img_amd64.layers[1]);
        _cleanup_free_ char *ipath = kiln_xasprintf("%s/index.json", dir);
        json_t *idx = load_json(ipath);
        CHECK(find_ref(idx, "latest") != NULL, "default tag is latest");
        json_decref(idx);
        kiln_rm_rf(dir, NULL);
}

static void test_oci_refuses(void)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_descriptor top =
            desc(KILN_MT_OCI_MANIFEST, img_amd64.manifest, img_amd64.manifest_len);
        /* A non-empty directory that is not a layout. */
        _cleanup_free_ char *dir = kiln_xasprintf("%s/not-a-layout", root);
        kiln_mkdir_p(dir, 0755, NULL);
        _cleanup_free_ char *mine = kiln_xasprintf("%s/notes.txt", dir);
        kiln_write_file_atomic(mine, "mine", 4, 0644, NULL);
        struct kiln_image_loc d = loc(KILN_TRANSPORT_OCI, dir, "x");
        CHECK(kiln_output_write(&d, store, &top, NULL, &err) < 0, "refuses a foreign dir");
        CHECK(err && strstr(err->msg, dir) && strstr(err->msg, "not an OCI layout"), "msg: %s",
              err ? err->msg : "");
        _cleanup_free_ char *blobs = kiln_xasprintf("%s/blobs", dir);
        CHECK(!exists(blobs), "nothing written into it");
        kiln_err_clear(&err);

        /* A child manifest missing from the store: error, no index.json. */
        char missing[KILN_DIGEST_MAX];
        kiln_sha256_digest("not stored", 10, missing);
        _cleanup_buf_ struct kiln_buf idx = {0};
        kiln_buf_printf(&idx,
                        "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
                        "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{"
                        "\"architecture\":\"amd64\",\"os\":\"linux\"}},"
                        "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":10,\"platform\":{"
                        "\"architecture\":\"s390x\",\"os\":\"linux\"}}]}",
                        KILN_MT_OCI_INDEX, KILN_MT_OCI_MANIFEST, img_amd64.manifest,
                        img_amd64.manifest_len, KILN_MT_OCI_MANIFEST, missing);
        char idx_digest[KILN_DIGEST_MAX];
        put(idx.data, idx.len, idx_digest);
        struct kiln_descriptor itop = desc(KILN_MT_OCI_INDEX, idx_digest, idx.len);
        _cleanup_free_ char *dir2 = kiln_xasprintf("%s/missing", root);
        d = loc(KILN_TRANSPORT_OCI, dir2, "x");
        CHECK(kiln_output_write(&d, store, &itop, NULL, &err) < 0, "missing child");
        CHECK(err && err->domain == KILN_ERR_NOT_FOUND && strstr(err->msg, missing) &&
                  strstr(err->msg, "linux/s390x") && strstr(err->msg, "not in the cache") &&
                  strstr(err->msg, dir2),
              "msg: %s", err ? err->msg : "");
        _cleanup_free_ char *ij = kiln_xasprintf("%s/index.json", dir2);
        CHECK(!exists(ij), "no index.json after a failure");
        kiln_err_clear(&err);

        /* Same for oci-archive: no file at all. */
        _cleanup_free_ char *ar = kiln_xasprintf("%s/missing.tar", root);
        d = loc(KILN_TRANSPORT_OCI_ARCHIVE, ar, NULL);
        CHECK(kiln_output_write(&d, store, &itop, NULL, &err) < 0, "missing child (archive)");
        CHECK(!exists(ar), "no archive after a failure");
        kiln_err_clear(&err);
}

static void test_oci_archive(void)
{
        _cleanup_free_ char *file = kiln_xasprintf("%s/image.oci.tar", root);
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_descriptor top = desc(KILN_MT_OCI_INDEX, index_digest, index_len);
        struct kiln_image_loc d = loc(KILN_TRANSPORT_OCI_ARCHIVE, file, "2.0");
        CHECK(kiln_output_write(&d, store, &top, NULL, &err) == 0, "write oci-archive: %s",
              err ? err->msg : "");

        struct tar_list t = {0};
        CHECK(read_tar(file, &t) == 0, "read back");
        for (size_t i = 1; i < t.n; i++)
                CHECK(strcmp(t.v[i - 1].name, t.v[i].name) < 0, "sorted: %s then %s",
                      t.v[i - 1].name, t.v[i].name);
        bool meta_ok = true;
        for (size_t i = 0; i < t.n; i++)
                meta_ok = meta_ok && t.v[i].mtime == 0 && t.v[i].uid == 0 &&
                          ((t.v[i].mode & 0777) == 0644 || (t.v[i].mode & 0777) == 0755);
        CHECK(meta_ok, "mtime 0, uid 0, modes 0644/0755");
        CHECK(tar_find(&t, "oci-layout") && tar_find(&t, "index.json"), "layout files");
        /* index + 2 manifests + 2 configs + 3 layers */
        size_t n_blobs = 0;
        for (size_t i = 0; i < t.n; i++)
                n_blobs += kiln_str_has_prefix(t.v[i].name, "blobs/sha256/") &&
                           strlen(t.v[i].name) > strlen("blobs/sha256/");
        CHECK(n_blobs == 8, "8 blobs, got %zu", n_blobs);
        tar_list_release(&t);

        /* Deterministic: a second write gives the same bytes. */
        _cleanup_free_ char *file2 = kiln_xasprintf("%s/image2.oci.tar", root);
        d.path = file2;
        CHECK(kiln_output_write(&d, store, &top, NULL, &err) == 0, "write again");
        char h1[KILN_DIGEST_MAX] = "", h2[KILN_DIGEST_MAX] = "x";
        kiln_sha256_file(file, h1, NULL);
        kiln_sha256_file(file2, h2, NULL);
        CHECK_STR(h1, h2);

        /* SOURCE_DATE_EPOCH sets every entry's mtime. */
        _cleanup_free_ char *file3 = kiln_xasprintf("%s/image3.oci.tar", root);
        d.path = file3;
        setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
        CHECK(kiln_output_write(&d, store, &top, NULL, &err) == 0, "write with epoch");
        unsetenv("SOURCE_DATE_EPOCH");
        struct tar_list t3 = {0};
        read_tar(file3, &t3);
        bool epoch_ok = t3.n > 0;
        for (size_t i = 0; i < t3.n; i++)
                epoch_ok = epoch_ok && t3.v[i].mtime == 1700000000;
        CHECK(epoch_ok, "mtime is SOURCE_DATE_EPOCH");
        tar_list_release(&t3);

        struct kiln_local_image li;
        struct kiln_image_loc s = loc(KILN_TRANSPORT_OCI_ARCHIVE, file, "2.0");
        CHECK(kiln_local_image_open(&s, &li, &err) == 0, "open archive: %s", err ? err->msg : "");
        if (!err) {
                CHECK_STR(li.top.digest, index_digest);
                CHECK_STR(li.top.media_type, KILN_MT_OCI_INDEX);
                CHECK(li.top.size == (int64_t)index_len, "size");
                CHECK(li.cleanup, "temp dir is cleaned up");
                _cleanup_buf_ struct kiln_buf got = {0};
                _cleanup_buf_ struct kiln_buf want = {0};
                CHECK(kiln_local_image_read_blob(&li, img_amd64.manifest, KILN_MANIFEST_MAX, &got,
                                                 &err) == 0,
                      "read manifest");
                kiln_store_read(store, img_amd64.manifest, KILN_MANIFEST_MAX, &want, NULL);
                CHECK(got.len == want.len && !memcmp(got.data, want.data, got.len),
                      "manifest byte-identical");
                /* Corrupt a blob inside the extraction: DIGEST error. */
                _cleanup_free_ char *bp = kiln_local_image_blob_path(&li, img_amd64.config);
                kiln_write_file_atomic(bp, "{}", 2, 0644, NULL);
                _cleanup_buf_ struct kiln_buf bad = {0};
                CHECK(kiln_local_image_read_blob(&li, img_amd64.config, KILN_CONFIG_MAX, &bad,
                                                 &err) < 0 &&
                          err && err->domain == KILN_ERR_DIGEST,
                      "corrupt blob detected");
                kiln_err_clear(&err);
                _cleanup_free_ char *tmpdir = kiln_xstrdup(li.dir);
                kiln_local_image_release(&li);
                CHECK(!exists(tmpdir), "temp dir removed");
        }
        kiln_err_clear(&err);
        s.tag = NULL; /* single image: found without a tag */
        CHECK(kiln_local_image_open(&s, &li, &err) == 0, "open without tag");
        if (!err)
                kiln_local_image_release(&li);
        kiln_err_clear(&err);

        if (have_tools) {
                _cleanup_free_ char *c = kiln_xasprintf("skopeo inspect oci-archive:%s:2.0", file);
                CHECK(run(c) == 0, "skopeo inspect oci-archive");
                _cleanup_free_ char *c2 = kiln_xasprintf(
                    "skopeo inspect --override-arch arm64 oci-archive:%s:2.0 | grep -q arm64",
                    file);
                CHECK(run(c2) == 0, "skopeo picks arm64 from the index");
        }
}

static void write_evil_tar(const char *path, const char *name, int type, const char *link)
{
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        archive_write_open_filename(a, path);
        const char *layout = "{\"imageLayoutVersion\":\"1.0.0\"}";
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "oci-layout");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)strlen(layout));
        archive_write_header(a, e);
        archive_write_data(a, layout, strlen(layout));
        archive_entry_clear(e);
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, (unsigned)type);
        archive_entry_set_perm(e, 0644);
        if (type == AE_IFLNK)
                archive_entry_set_symlink(e, link);
        else if (link)
                archive_entry_set_hardlink(e, link);
        archive_entry_set_size(e, type == AE_IFREG && !link ? 1 : 0);
        archive_write_header(a, e);
        if (type == AE_IFREG && !link)
                archive_write_data(a, "x", 1);
        archive_entry_free(e);
        archive_write_close(a);
        archive_write_free(a);
}

static void test_archive_refuses(void)
{
        static const struct {
                const char *name;
                int type;
                const char *link;
        } cases[] = {
            {"../evil", AE_IFREG, NULL},
            {"/etc/evil", AE_IFREG, NULL},
            {"blobs/../../evil", AE_IFREG, NULL},
            {"blobs/sha256/abc", AE_IFLNK, "/etc/passwd"},
            {"index.json", AE_IFLNK, "/etc/passwd"},
            {"blobs/sha256/abc", AE_IFREG, "oci-layout"},
            {"etc/passwd", AE_IFREG, NULL},
            {"blobs/sha256/a/b", AE_IFREG, NULL},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *f = kiln_xasprintf("%s/evil-%zu.tar", root, i);
                write_evil_tar(f, cases[i].name, cases[i].type, cases[i].link);
                _cleanup_err_ struct kiln_err *err = NULL;
                struct kiln_local_image li;
                struct kiln_image_loc s = loc(KILN_TRANSPORT_OCI_ARCHIVE, f, NULL);
                CHECK(kiln_local_image_open(&s, &li, &err) < 0 && err &&
                          err->domain == KILN_ERR_FORMAT && strstr(err->msg, f),
                      "case %zu (%s) refused: %s", i, cases[i].name, err ? err->msg : "accepted");
        }
        _cleanup_free_ char *evil = kiln_xasprintf("%s/evil", root);
        CHECK(!exists(evil), "nothing escaped");
}

static void test_docker_archive(void)
{
        _cleanup_free_ char *file = kiln_xasprintf("%s/image.docker.tar", root);
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_descriptor top =
            desc(KILN_MT_OCI_MANIFEST, img_amd64.manifest, img_amd64.manifest_len);
        struct kiln_image_loc d = loc(KILN_TRANSPORT_DOCKER_ARCHIVE, file, NULL);
        d.ref = (struct kiln_ref){.domain = "docker.io", .path = "library/kilntest", .tag = "1.0"};
        CHECK(kiln_output_write(&d, store, &top, "ghcr.io/x/y:2", &err) == 0,
              "write docker-archive: %s", err ? err->msg : "");

        struct tar_list t = {0};
        CHECK(read_tar(file, &t) == 0, "read back");
        struct tar_entry *m = tar_find(&t, "manifest.json");
        CHECK(m != NULL, "manifest.json present");
        json_error_t je;
        json_t *mj = m ? json_loadb(m->data.data, m->data.len, 0, &je) : NULL;
        json_t *m0 = json_array_get(mj, 0);
        CHECK(json_array_size(mj) == 1, "one image");
        _cleanup_free_ char *cfg_name =
            kiln_xasprintf("%s.json", kiln_digest_hex(img_amd64.config));
        CHECK_STR(json_string_value(json_object_get(m0, "Config")), cfg_name);
        CHECK_STR(json_string_value(json_array_get(json_object_get(m0, "RepoTags"), 0)),
                  "kilntest:1.0");
        json_t *layers = json_object_get(m0, "Layers");
        CHECK(json_array_size(layers) == img_amd64.n_layers, "layer count");
        for (size_t i = 0; i < img_amd64.n_layers; i++) {
                _cleanup_free_ char *want =
                    kiln_xasprintf("%s.tar", kiln_digest_hex(img_amd64.diff_ids[i]));
                CHECK_STR(json_string_value(json_array_get(layers, i)), want);
                struct tar_entry *le = tar_find(&t, want);
                char got[KILN_DIGEST_MAX] = "";
                if (le)
                        kiln_sha256_digest(le->data.data, le->data.len, got);
                CHECK_STR(got, img_amd64.diff_ids[i]);
        }
        struct tar_entry *ce = tar_find(&t, cfg_name);
        char cg[KILN_DIGEST_MAX] = "";
        if (ce)
                kiln_sha256_digest(ce->data.data, ce->data.len, cg);
        CHECK_STR(cg, img_amd64.config);
        struct tar_entry *re = tar_find(&t, "repositories");
        json_t *rj = re ? json_loadb(re->data.data, re->data.len, 0, &je) : NULL;
        CHECK(json_object_get(json_object_get(rj, "kilntest"), "1.0") != NULL,
              "repositories names the tag");
        json_decref(rj);
        json_decref(mj);
        tar_list_release(&t);

        if (have_tools) {
                _cleanup_free_ char *c = kiln_xasprintf("skopeo inspect docker-archive:%s", file);
                CHECK(run(c) == 0, "skopeo inspect docker-archive");
                _cleanup_free_ char *oci = kiln_xasprintf("%s/from-docker", root);
                _cleanup_free_ char *c2 =
                    kiln_xasprintf("skopeo copy docker-archive:%s oci:%s:t", file, oci);
                CHECK(run(c2) == 0, "skopeo copy docker-archive: -> oci:");
        }

        /* RepoTag from source_name when dest has none. */
        static const struct {
                const char *source;
                const char *want; /* NULL: no RepoTag */
        } names[] = {
            {"docker.io/library/debian:12", "debian:12"},
            {"docker.io/flyteorg/flytekit:py3.11", "flyteorg/flytekit:py3.11"},
            {"ghcr.io/org/app:v1", "ghcr.io/org/app:v1"},
            {"127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c"},
            {"localhost/x:y", "localhost/x:y"},
            {"alpine:3", "alpine:3"},
            {"ghcr.io/org/app:v1@sha256:"
             "0000000000000000000000000000000000000000000000000000000000000000",
             "ghcr.io/org/app:v1"},
            {"ghcr.io/org/app@sha256:"
             "0000000000000000000000000000000000000000000000000000000000000000",
             NULL},
            {NULL, NULL},
        };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct kiln_image_loc d2 = loc(KILN_TRANSPORT_DOCKER_ARCHIVE, file, NULL);
                CHECK(kiln_output_write(&d2, store, &top, names[i].source, &err) == 0, "write %zu",
                      i);
                struct tar_list t2 = {0};
                read_tar(file, &t2);
                struct tar_entry *me = tar_find(&t2, "manifest.json");
                json_t *j = me ? json_loadb(me->data.data, me->data.len, 0, &je) : NULL;
                json_t *tags = json_object_get(json_array_get(j, 0), "RepoTags");
                CHECK_STR(json_string_value(json_array_get(tags, 0)), names[i].want);
                CHECK((tar_find(&t2, "repositories") != NULL) == (names[i].want != NULL),
                      "repositories iff tagged (%zu)", i);
                json_decref(j);
                tar_list_release(&t2);
        }

        /* A diff_id that does not match: error, nothing left behind. */
        _cleanup_free_ char *bad = kiln_xasprintf("%s/bad.docker.tar", root);
        struct kiln_descriptor btop =
            desc(KILN_MT_OCI_MANIFEST, img_bad.manifest, img_bad.manifest_len);
        d = loc(KILN_TRANSPORT_DOCKER_ARCHIVE, bad, NULL);
        CHECK(kiln_output_write(&d, store, &btop, "x:y", &err) < 0, "bad diff_id fails");
        CHECK(err && err->domain == KILN_ERR_DIGEST && strstr(err->msg, "diff_ids[0]") &&
                  strstr(err->msg, bad),
              "msg: %s", err ? err->msg : "");
        kiln_err_clear(&err);
        CHECK(!exists(bad), "no destination file");
        CHECK(count_prefix(root, "bad.docker.tar") == 0, "no temp files left");

        /* An index is refused, whether or not the media type says so. */
        struct kiln_descriptor itop = desc(KILN_MT_OCI_INDEX, index_digest, index_len);
        CHECK(kiln_output_write(&d, store, &itop, "x:y", &err) < 0 && err &&
                  strstr(err->msg, "choose a platform"),
              "index refused: %s", err ? err->msg : "");
        kiln_err_clear(&err);
        itop.media_type = NULL;
        CHECK(kiln_output_write(&d, store, &itop, "x:y", &err) < 0 && err &&
                  strstr(err->msg, "choose a platform"),
              "index (no media type) refused: %s", err ? err->msg : "");
        kiln_err_clear(&err);
        CHECK(!exists(bad), "no destination file");
}

/* Referrers go into index.json without a ref name, with their
 * artifactType; a reader by tag (skopeo, kiln) still sees the image. */
static void test_oci_referrers(void)
{
        _cleanup_err_ struct kiln_err *err = NULL;
        struct kiln_descriptor top =
            desc(KILN_MT_OCI_MANIFEST, img_amd64.manifest, img_amd64.manifest_len);
        static const char doc[] = "{\"_type\":\"https://in-toto.io/Statement/v1\"}";
        _cleanup_descriptor_ struct kiln_descriptor art = {0};
        CHECK(kiln_attest_artifact(store, &top, KILN_MT_INTOTO_JSON, KILN_MT_INTOTO_JSON, doc,
                                   strlen(doc), "2024-01-01T00:00:00Z", &art, &err) == 0,
              "artifact: %s", err ? err->msg : "");
        _cleanup_free_ char *dir = kiln_xasprintf("%s/refs-layout", root);
        _cleanup_free_ char *file = kiln_xasprintf("%s/refs.tar", root);
        for (int pass = 0; pass < 2; pass++) { /* twice: no duplicate entry */
                struct kiln_image_loc d = loc(KILN_TRANSPORT_OCI, dir, "v1");
                CHECK(kiln_output_write_referrers(&d, store, &top, NULL, &art, 1, &err) == 0,
                      "write: %s", err ? err->msg : "");
        }
        struct kiln_image_loc a = loc(KILN_TRANSPORT_OCI_ARCHIVE, file, "v1");
        CHECK(kiln_output_write_referrers(&a, store, &top, NULL, &art, 1, &err) == 0,
              "write archive: %s", err ? err->msg : "");
        _cleanup_free_ char *ipath = kiln_xasprintf("%s/index.json", dir);
        _cleanup_json_ json_t *idx = load_json(ipath);
        json_t *ms = json_object_get(idx, "manifests");
        CHECK(json_array_size(ms) == 2, "image and referrer: %zu entries", json_array_size(ms));
        json_t *r = json_array_get(ms, 1);
        CHECK_STR(json_string_value(json_object_get(r, "digest")), art.digest);
        CHECK_STR(json_string_value(json_object_get(r, "artifactType")), KILN_MT_INTOTO_JSON);
        CHECK(!entry_ref(r), "a referrer has no ref name");
        CHECK_STR(entry_ref(json_array_get(ms, 0)), "v1");
        check_blob_file(dir, art.digest);
        check_blob_file(dir, KILN_EMPTY_DIGEST);

        const struct kiln_image_loc srcs[] = {loc(KILN_TRANSPORT_OCI, dir, NULL),
                                              loc(KILN_TRANSPORT_OCI_ARCHIVE, file, NULL)};
        for (size_t i = 0; i < 2; i++) {
                _cleanup_local_image_ struct kiln_local_image img = {0};
                _cleanup_err_ struct kiln_err *e = NULL;
                CHECK(kiln_local_image_open(&srcs[i], &img, &e) == 0, "open without a tag: %s",
                      e ? e->msg : "");
                CHECK_STR(img.top.digest, img_amd64.manifest);
                struct kiln_descriptor *found = NULL;
                size_t n = 0;
                CHECK(kiln_local_image_referrers(&img, img_amd64.manifest, KILN_MT_INTOTO_JSON,
                                                 &found, &n, &e) == 0,
                      "referrers: %s", e ? e->msg : "");
                CHECK(n == 1 && !strcmp(found[0].digest, art.digest), "found %zu", n);
                for (size_t k = 0; k < n; k++)
                        kiln_descriptor_release(&found[k]);
                free(found);
                found = NULL;
                CHECK(kiln_local_image_referrers(&img, img_amd64.manifest, KILN_MT_SPDX_JSON,
                                                 &found, &n, &e) == 0 &&
                          n == 0,
                      "no SPDX referrer: %zu", n);
                free(found);
                found = NULL;
                CHECK(kiln_local_image_referrers(&img, img_arm64.manifest, NULL, &found, &n, &e) ==
                              0 &&
                          n == 0,
                      "no referrer of another image: %zu", n);
                free(found);
        }
        if (!have_tools)
                return;
        _cleanup_free_ char *c1 =
            kiln_xasprintf("skopeo inspect --raw oci:%s:v1 | grep -q '%s'", dir, img_amd64.config);
        CHECK(run(c1) == 0, "skopeo reads the image by tag");
        _cleanup_free_ char *c2 = kiln_xasprintf(
            "skopeo inspect --raw oci-archive:%s:v1 | grep -q '%s'", file, img_amd64.config);
        CHECK(run(c2) == 0, "skopeo reads the archive by tag");
}

int main(void)
{
        if (!mkdtemp(root)) {
                perror("mkdtemp");
                return 2;
        }
        _cleanup_free_ char *sroot = kiln_xasprintf("%s/store", root);
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_store_open(sroot, &store, &err) < 0) {
                fprintf(stderr, "%s\n", err->msg);
                return 2;
        }
        unsetenv("SOURCE_DATE_EPOCH");
        check_tools();
        build_images();
        test_oci_layout();
        test_oci_layout_copy();
        test_oci_refuses();
        test_oci_archive();
        test_oci_referrers();
        test_archive_refuses();
        test_docker_archive();
        kiln_store_free(store);
        if (!test_failures && !getenv("KILN_TEST_KEEP"))
                kiln_rm_rf(root, NULL);
        else
                fprintf(stderr, "kept %s for inspection\n", root);
        TEST_DONE();
}
