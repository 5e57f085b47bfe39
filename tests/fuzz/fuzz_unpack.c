/* kiln_archive_unpack of the input as an uncompressed tar layer into a fresh
 * root directory per run. The layer must stay inside the root: a sentinel
 * directory beside it has to stay empty, and the scratch directory must
 * hold nothing but the two. */
#include "fuzz-common.h"

#include "kiln/archive.h"

static char *scratch;
static char *sentinel;
static char *blob;
static char *root;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        scratch = fuzz_scratch("unpack");
        sentinel = kiln_xasprintf("%s/sentinel", scratch);
        blob = kiln_xasprintf("%s/layer.tar", scratch);
        root = kiln_xasprintf("%s/root", scratch);
        fuzz_mkdir(sentinel);
        /* Quiet the unpacker's info lines: at thousands of runs per second
         * they drown the fuzzer's own output. */
        kiln_log_set_level(KILN_LOG_QUIET);
        return 0;
}

static void check_scratch(void)
{
        DIR *d = opendir(scratch);
        if (!d)
                fuzz_die("opendir %s: %s", scratch, strerror(errno));
        struct dirent *e;
        while ((e = readdir(d))) {
                const char *n = e->d_name;
                if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "sentinel") ||
                    !strcmp(n, "root") || !strcmp(n, "layer.tar"))
                        continue;
                fprintf(stderr, "fuzz_unpack: the layer wrote %s/%s outside its root\n", scratch,
                        n);
                abort();
        }
        closedir(d);
        fuzz_assert_empty(sentinel, "the layer wrote outside its root");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_write_file(blob, data, size);
        fuzz_mkdir(root);
        int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int blobfd = open(blob, O_RDONLY | O_CLOEXEC);
        if (rootfd < 0 || blobfd < 0)
                fuzz_die("open %s: %s", rootfd < 0 ? root : blob, strerror(errno));
        struct kiln_unpack_stats stats = {0};
        _cleanup_err_ struct kiln_err *err = NULL;
        int rc = kiln_archive_unpack(rootfd, blobfd, KILN_MT_OCI_LAYER, NULL, "fuzz layer", &stats,
                                     &err);
        if (rc < 0 && (!err || !err->msg))
                abort(); /* a failure must say why */
        fuzz_debug_err("unpack", err);
        close(rootfd);
        close(blobfd);
        check_scratch();
        fuzz_rm_rf(root);
        return 0;
}
