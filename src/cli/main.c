#include "cli.h"

#include <string.h>

static const char usage[] =
    "kiln " KILN_VERSION " — build and move OCI images without a daemon\n"
    "\n"
    "Usage: kiln COMMAND [OPTIONS] ...\n"
    "\n"
    "Commands:\n"
    "  build SPEC.yaml       build a flytekit ImageSpec (push, or -o a layout/archive)\n"
    "  name SPEC.yaml        the image name flytekit gives the spec\n"
    "  pull SOURCE -o DEST   copy an image from a registry to a layout or archive\n"
    "  inspect IMAGE         show an image's digest, platform, layers and config\n"
    "  cache ls|prune|verify the local cache: cached build steps, sizes, upkeep\n"
    "  sbom IMAGE            print the SBOM attached to an image (SPDX or CycloneDX)\n"
    "  provenance IMAGE      print the SLSA provenance attached to an image\n"
    "  version               print the version\n"
    "  help [COMMAND]        this text, or a command's options\n"
    "\n"
    "Images are named as skopeo names them:\n"
    "  docker://REF               a registry image (docker:// may be left out where a\n"
    "                             registry image is expected); REF as Docker parses it:\n"
    "                             debian -> docker.io/library/debian:latest\n"
    "  oci:DIR[:TAG]              an OCI image layout directory\n"
    "  oci-archive:FILE[:TAG]     a tar of an OCI layout\n"
    "  docker-archive:FILE[:REF]  a docker save tarball\n"
    "\n"
    "Credentials come from $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,\n"
    "$DOCKER_CONFIG/config.json or ~/.docker/config.json (credHelpers and credsStore\n"
    "run docker-credential-NAME). Plain HTTP is allowed for loopback registries and\n"
    "hosts named with --insecure-registry; credentials for an HTTPS registry never go\n"
    "to a plain-HTTP token realm that is not loopback. --timeout (default 1h) bounds\n"
    "each pull and push; a transfer under 4 KiB/s over 30s is retried.\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  system or internal error\n"
    "  2  usage: bad option, argument or reference\n"
    "  3  not found: image, tag, blob or platform\n"
    "  4  authentication failed or access denied\n"
    "  5  network or registry error\n"
    "  6  content does not match its digest\n"
    "  7  malformed manifest, config, index or archive\n"
    "  8  invalid ImageSpec\n"
    "  9  a build step failed\n";

static const struct {
        const char *name;
        int (*fn)(int argc, char **argv, struct kiln_err **err);
} commands[] = {
    {"build", cmd_build},           {"name", cmd_name},   {"pull", cmd_pull},
    {"inspect", cmd_inspect},       {"cache", cmd_cache}, {"sbom", cmd_sbom},
    {"provenance", cmd_provenance},
};

static int find_command(const char *name)
{
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(commands[i].name, name))
                        return (int)i;
        return -1;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fputs(usage, stderr);
                return 2;
        }
        const char *cmd = argv[1];
        _cleanup_err_ struct kiln_err *err = NULL;
        if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
                printf("kiln %s\n", KILN_VERSION);
                return 0;
        }
        if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
                int k = argc > 2 ? find_command(argv[2]) : -1;
                if (k < 0) {
                        fputs(usage, stdout);
                        return 0;
                }
                char *a[] = {argv[2], "--help", NULL};
                return commands[k].fn(2, a, &err) < 0 ? 1 : 0;
        }
        int k = find_command(cmd);
        if (k < 0) {
                fprintf(stderr, "kiln: unknown command \"%s\" (see kiln --help)\n", cmd);
                return 2;
        }
        /* Errors carry their whole context; main is the only place that
         * prints them. */
        if (commands[k].fn(argc - 1, argv + 1, &err) == 0)
                return 0;
        cli_print_error(err);
        return err ? kiln_err_exit_code(err) : 1;
}
