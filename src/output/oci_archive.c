#include "output-internal.h"

#include <string.h>

static int cmp_blob(const void *a, const void *b)
{
        return strcmp(((const struct kiln_output_blob *)a)->digest,
                      ((const struct kiln_output_blob *)b)->digest);
}

/* Entries in byte order of their names (blobs/, blobs/sha256/, the blobs,
 * index.json, oci-layout), so the same image always gives the same bytes. */
int kiln_output_write_oci_archive(const struct kiln_image_loc *dest, struct kiln_store *store,
                                  const struct kiln_descriptor *top,
                                  const struct kiln_descriptor *refs, size_t n_refs,
                                  struct kiln_err **err)
{
        if (!dest->path || !*dest->path)
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "no file given");
        const char *tag = dest->tag ? dest->tag : KILN_OUTPUT_DEFAULT_TAG;
        _cleanup_output_blobs_ struct kiln_output_blobs blobs = {0};
        if (kiln_output_collect(store, top, &blobs, err) < 0 ||
            kiln_output_collect_referrers(store, refs, n_refs, &blobs, err) < 0)
                return -1;
        qsort(blobs.v, blobs.n, sizeof(*blobs.v), cmp_blob);

        _cleanup_json_ json_t *list = json_array();
        json_array_append_new(
            list, kiln_output_index_entry(top, blobs.top_media_type, blobs.top_size, tag));
        _cleanup_json_ json_t *rl = kiln_output_referrers_entries(refs, n_refs);
        json_array_extend(list, rl);
        _cleanup_free_ char *index = kiln_output_index_dump(list);
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

        _cleanup_output_tar_ struct kiln_output_tar t = {.fd = -1};
        if (kiln_output_tar_begin(dest->path, &t, err) < 0 ||
            kiln_output_tar_add_dir(&t, "blobs/", err) < 0 ||
            kiln_output_tar_add_dir(&t, "blobs/sha256/", err) < 0)
                return -1;
        for (size_t i = 0; i < blobs.n; i++) {
                const struct kiln_output_blob *b = &blobs.v[i];
                _cleanup_free_ char *name =
                    kiln_xasprintf("blobs/sha256/%s", kiln_digest_hex(b->digest));
                _cleanup_close_ int fd = -1;
                uint64_t size = 0;
                if (kiln_store_open_blob(store, b->digest, &fd, &size, err) < 0 ||
                    kiln_output_tar_add_fd(&t, name, fd, size, b->digest, err) < 0)
                        return -1;
        }
        if (kiln_output_tar_add_mem(&t, "index.json", index, strlen(index), err) < 0 ||
            kiln_output_tar_add_mem(&t, "oci-layout", layout, strlen(layout), err) < 0)
                return -1;
        return kiln_output_tar_commit(&t, err);
}
