/* Media types kiln understands and what they imply. */
#include "oci-internal.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

const char KILN_MANIFEST_ACCEPT[] = KILN_MT_OCI_MANIFEST
    ", " KILN_MT_OCI_INDEX ", " KILN_MT_DOCKER_MANIFEST ", " KILN_MT_DOCKER_LIST;

/* Docker's uncompressed and zstd layer types are rarely seen but containerd
 * defines them, so images produced by its tooling can carry them. */
#define MT_OCI_LAYER_ND       "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define MT_OCI_LAYER_ND_ZSTD  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#define MT_DOCKER_LAYER_TAR   "application/vnd.docker.image.rootfs.diff.tar"
#define MT_DOCKER_LAYER_ZSTD  "application/vnd.docker.image.rootfs.diff.tar.zstd"
#define MT_DOCKER_FOREIGN_TAR "application/vnd.docker.image.rootfs.foreign.diff.tar"

static const struct {
        const char *mt;
        enum kiln_compression comp;
} layer_types[] = {
    {KILN_MT_OCI_LAYER, KILN_COMP_NONE},         {KILN_MT_OCI_LAYER_GZIP, KILN_COMP_GZIP},
    {KILN_MT_OCI_LAYER_ZSTD, KILN_COMP_ZSTD},    {MT_OCI_LAYER_ND, KILN_COMP_NONE},
    {KILN_MT_OCI_LAYER_ND_GZIP, KILN_COMP_GZIP}, {MT_OCI_LAYER_ND_ZSTD, KILN_COMP_ZSTD},
    {KILN_MT_DOCKER_LAYER, KILN_COMP_GZIP},      {KILN_MT_DOCKER_FOREIGN, KILN_COMP_GZIP},
    {MT_DOCKER_LAYER_TAR, KILN_COMP_NONE},       {MT_DOCKER_LAYER_ZSTD, KILN_COMP_ZSTD},
    {MT_DOCKER_FOREIGN_TAR, KILN_COMP_NONE},
};

bool kiln_oci_mt_equal(const char *mt, const char *known)
{
        if (!mt || !known)
                return false;
        size_t n = strcspn(mt, ";");
        while (n > 0 && isspace((unsigned char)mt[n - 1]))
                n--;
        return n == strlen(known) && strncasecmp(mt, known, n) == 0;
}

bool kiln_mt_is_index(const char *mt)
{
        return kiln_oci_mt_equal(mt, KILN_MT_OCI_INDEX) ||
               kiln_oci_mt_equal(mt, KILN_MT_DOCKER_LIST);
}

bool kiln_mt_is_manifest(const char *mt)
{
        return kiln_oci_mt_equal(mt, KILN_MT_OCI_MANIFEST) ||
               kiln_oci_mt_equal(mt, KILN_MT_DOCKER_MANIFEST);
}

bool kiln_mt_is_layer(const char *mt)
{
        return kiln_mt_layer_compression(mt) != KILN_COMP_UNKNOWN;
}

enum kiln_compression kiln_mt_layer_compression(const char *mt)
{
        for (size_t i = 0; i < sizeof(layer_types) / sizeof(layer_types[0]); i++)
                if (kiln_oci_mt_equal(mt, layer_types[i].mt))
                        return layer_types[i].comp;
        return KILN_COMP_UNKNOWN;
}
