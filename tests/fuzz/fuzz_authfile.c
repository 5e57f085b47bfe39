/* Credential lookup (kiln_creds_lookup) with a fuzzed auth file as
 * $REGISTRY_AUTH_FILE. PATH is an empty directory, so a "credHelpers" or
 * "credsStore" entry can never run a program: the lookup reports the helper
 * missing instead. */
#include "fuzz-common.h"

#include "kiln/registry.h"

static char *scratch;
static char *auth_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        scratch = fuzz_scratch("authfile");
        _cleanup_free_ char *bin = kiln_xasprintf("%s/empty-path", scratch);
        _cleanup_free_ char *docker = kiln_xasprintf("%s/docker-config", scratch);
        fuzz_mkdir(bin);
        fuzz_mkdir(docker);
        auth_file = kiln_xasprintf("%s/auth.json", scratch);
        /* Only the fuzzed file may be read: the other places in the search
         * order point at nothing. */
        if (setenv("PATH", bin, 1) < 0 || setenv("REGISTRY_AUTH_FILE", auth_file, 1) < 0 ||
            setenv("DOCKER_CONFIG", docker, 1) < 0 || setenv("HOME", scratch, 1) < 0 ||
            unsetenv("XDG_RUNTIME_DIR") < 0)
                fuzz_die("setenv: %s", strerror(errno));
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_write_file(auth_file, data, size);
        static const char *const hosts[] = {"example.com", "docker.io"};
        for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
                struct kiln_creds c = {0};
                bool found = false;
                _cleanup_err_ struct kiln_err *err = NULL;
                int rc = kiln_creds_lookup(hosts[i], &c, &found, &err);
                fuzz_debug_err(found ? "found" : "lookup", err);
                if (rc < 0 && (!err || !err->msg))
                        abort(); /* a failure must say why */
                if (rc == 0 && found && !c.source)
                        abort(); /* found credentials always name where from */
                kiln_creds_release(&c);
        }
        return 0;
}
