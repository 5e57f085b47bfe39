/* kiln_spec_load_string on YAML text, then kiln_spec_image_name on specs
 * that load. base_dir is an empty directory, so copy entries and
 * requirements files are missing and naming fails cleanly for them. */
#include "fuzz-common.h"

#include "kiln/imagespec.h"

static char *base_dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        base_dir = fuzz_scratch("spec");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_spec_ struct kiln_spec *s = NULL;
        _cleanup_err_ struct kiln_err *err = NULL;
        int rc = kiln_spec_load_string((const char *)data, size, "<fuzz>", base_dir, &s, &err);
        fuzz_debug_err("load", err);
        if (rc < 0) {
                if (!err || !err->msg)
                        abort(); /* a failure must say why */
                return 0;
        }
        struct kiln_image_name n = {0};
        _cleanup_err_ struct kiln_err *nerr = NULL;
        rc = kiln_spec_image_name(s, &n, &nerr);
        fuzz_debug_err("image_name", nerr);
        if (rc == 0) {
                if (!n.full || !n.tag || !n.repository)
                        abort();
                kiln_image_name_release(&n);
        }
        /* Nothing may have been written next to the spec. */
        fuzz_assert_empty(base_dir, "spec base_dir changed");
        return 0;
}
