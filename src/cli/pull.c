#include "cli.h"

#include <string.h>

static const char pull_usage[] =
    "Usage: kiln pull [OPTIONS] [docker://]REF [-o DEST]\n"
    "\n"
    "Copies an image from a registry into the blob cache and, with -o, into an OCI\n"
    "layout, an oci-archive or a docker-archive. Blobs already cached are not\n"
    "downloaded again; every blob is checked against its digest.\n"
    "\n"
    "Options:\n"
    "  -o, --output DEST         oci:DIR[:TAG], oci-archive:FILE[:TAG] or\n"
    "                            docker-archive:FILE[:REF]\n"
    "  --all-platforms           keep the whole index (every platform)\n" CLI_COMMON_HELP;

int cmd_pull(int argc, char **argv, struct kiln_err **err)
{
        enum { OPT_ALL = OPT_COMMON_END };
        static const struct option longopts[] = {
            {"output", required_argument, NULL, 'o'},
            {"all-platforms", no_argument, NULL, OPT_ALL},
            {"help", no_argument, NULL, 'h'},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        _cleanup_cli_common_ struct cli_common c = {0};
        const char *dest_s = NULL;
        bool all = false;
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
                int r = cli_common_option(&c, opt, optarg, err);
                if (r < 0)
                        return -1;
                if (r > 0)
                        continue;
                switch (opt) {
                case 'o':
                        dest_s = optarg;
                        break;
                case OPT_ALL:
                        all = true;
                        break;
                case 'h':
                        fputs(pull_usage, stdout);
                        return 0;
                default:
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "pull: bad option (see kiln help pull)");
                }
        }
        if (optind != argc - 1)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "pull: expected one image (see kiln help pull)");
        _cleanup_image_loc_ struct kiln_image_loc src = {0};
        _cleanup_image_loc_ struct kiln_image_loc dest = {0};
        if (kiln_image_loc_parse(argv[optind], true, &src, err) < 0)
                return -1;
        if (src.transport != KILN_TRANSPORT_DOCKER)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "pull: %s is not a registry image (pull reads docker://REF)",
                                    argv[optind]);
        if (dest_s && kiln_image_loc_parse(dest_s, false, &dest, err) < 0)
                return -1;
        if (dest_s && dest.transport == KILN_TRANSPORT_DOCKER)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "pull: -o %s: pushing to a registry is not what pull does",
                                    dest_s);
        if (all && dest_s && dest.transport == KILN_TRANSPORT_DOCKER_ARCHIVE)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "pull: a docker-archive holds one image; --all-platforms "
                                    "needs oci: or oci-archive:");
        _cleanup_free_ char *name = kiln_ref_string(&src.ref);
        _cleanup_store_ struct kiln_store *store = NULL;
        _cleanup_registry_ struct kiln_registry *reg = NULL;
        if (kiln_store_open(c.cache_dir, &store, err) < 0 ||
            cli_registry_open(&c, &src.ref, &reg, err) < 0)
                return -1;
        _cleanup_progress_ struct kiln_progress *progress = kiln_progress_new("pull", c.reg.quiet);
        struct kiln_pull_opts po = {.all_platforms = all};
        po.platform = c.platform;
        _cleanup_descriptor_ struct kiln_descriptor top = {0};
        if (kiln_pull(reg, &src.ref, &po, store, progress, &top, err) < 0)
                return -1;
        if (dest_s && kiln_output_write(&dest, store, &top, name, err) < 0)
                return -1;
        _cleanup_free_ char *plat = top.platform ? kiln_platform_string(top.platform) : NULL;
        _cleanup_free_ char *where = dest_s ? kiln_image_loc_string(&dest) : NULL;
        if (c.json) {
                _cleanup_json_ json_t *o =
                    json_pack("{s:s, s:s, s:s, s:I}", "source", name, "digest", top.digest,
                              "mediaType", top.media_type, "size", (json_int_t)top.size);
                if (plat)
                        json_object_set_new(o, "platform", json_string(plat));
                if (where)
                        json_object_set_new(o, "destination", json_string(where));
                cli_print_json(o);
        } else {
                printf("%s\n  digest:     %s\n  media type: %s\n", name, top.digest,
                       top.media_type);
                if (plat)
                        printf("  platform:   %s\n", plat);
                printf("  written to: %s\n", where ? where : kiln_store_root(store));
        }
        return 0;
}
