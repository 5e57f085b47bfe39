/* kiln_local_image_open on an oci-archive made of the input bytes, then a
 * read of the selected manifest blob. Extraction goes to $TMPDIR, which is
 * a scratch directory that must be empty again after every run (released
 * images clean up after themselves, failed opens too). */
#include "fuzz-common.h"

#include "kiln/output.h"
#include "kiln/ref.h"

static char *scratch;
static char *archive;
static char *tmpdir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        scratch = fuzz_scratch("localimage");
        archive = kiln_xasprintf("%s/image.tar", scratch);
        tmpdir = kiln_xasprintf("%s/tmp", scratch);
        fuzz_mkdir(tmpdir);
        if (setenv("TMPDIR", tmpdir, 1) < 0)
                fuzz_die("setenv: %s", strerror(errno));
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_write_file(archive, data, size);
        struct kiln_image_loc loc = {
            .transport = KILN_TRANSPORT_OCI_ARCHIVE,
            .path = archive,
            .tag = NULL,
        };
        struct kiln_local_image img = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        int rc = kiln_local_image_open(&loc, &img, &err);
        fuzz_debug_err("open", err);
        if (rc == 0) {
                _cleanup_buf_ struct kiln_buf b = {0};
                _cleanup_err_ struct kiln_err *rerr = NULL;
                if (kiln_local_image_read_blob(&img, img.top.digest, (size_t)1 << 20, &b, &rerr) ==
                    0) {
                        fuzz_debug_err("read_blob", rerr);
                        struct kiln_manifest m = {0};
                        _cleanup_err_ struct kiln_err *merr = NULL;
                        if (kiln_manifest_parse(b.data, b.len, img.top.media_type, &m, &merr) == 0)
                                kiln_manifest_release(&m);
                }
                kiln_local_image_release(&img);
        } else if (!err || !err->msg) {
                abort(); /* a failure must say why */
        }
        fuzz_assert_empty(tmpdir, "extracted archive left behind");
        return 0;
}
