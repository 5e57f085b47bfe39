/* kiln_manifest_parse on manifest/index bytes, with the declared media type
 * chosen by the first input byte (NULL or one of the known types), then
 * kiln_index_select on indexes. */
#include "fuzz-common.h"

#include "kiln/oci.h"

static const char *const declared[] = {
    NULL,
    KILN_MT_OCI_MANIFEST,
    KILN_MT_OCI_INDEX,
    KILN_MT_DOCKER_MANIFEST,
    KILN_MT_DOCKER_LIST,
    KILN_MT_DOCKER_V1_SIGNED,
    KILN_MT_OCI_CONFIG,
    "application/json",
};

static const char *const wants[] = {"linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        const char *mt = declared[data[0] % (sizeof(declared) / sizeof(declared[0]))];
        struct kiln_manifest m = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        if (kiln_manifest_parse((const char *)data + 1, size - 1, mt, &m, &err) < 0)
                return 0;
        if (!m.media_type)
                abort(); /* a parsed manifest always knows its type */
        if (m.is_index) {
                for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
                        struct kiln_platform want = {0};
                        _cleanup_err_ struct kiln_err *perr = NULL;
                        if (kiln_platform_parse(wants[i], &want, &perr) < 0)
                                fuzz_die("platform %s: %s", wants[i], perr->msg);
                        const struct kiln_descriptor *d = NULL;
                        _cleanup_err_ struct kiln_err *serr = NULL;
                        if (kiln_index_select(&m, &want, &d, &serr) == 0) {
                                if (d < m.manifests || d >= m.manifests + m.n_manifests)
                                        abort(); /* must point into the index */
                                json_decref(kiln_descriptor_to_json(d));
                        }
                        kiln_platform_release(&want);
                }
        } else {
                json_decref(kiln_descriptor_to_json(&m.config));
                for (size_t i = 0; i < m.n_layers; i++) {
                        struct kiln_descriptor copy = {0};
                        kiln_descriptor_copy(&copy, &m.layers[i]);
                        json_decref(kiln_descriptor_to_json(&copy));
                        kiln_descriptor_release(&copy);
                }
        }
        kiln_manifest_release(&m);
        return 0;
}
