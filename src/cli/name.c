#include "cli.h"

#include "kiln/imagespec.h"

static const char name_usage[] =
    "Usage: kiln name [--json] [--explain] [-f SPEC | SPEC.yaml] [SPEC FLAGS]\n"
    "\n"
    "Prints the image name flytekit gives the spec (registry/name:tag); --json adds\n"
    "the tag and the id baked in as _F_IMG_ID; --explain prints the text hashed.\n"
    "The spec comes from SPEC.yaml, from stdin with -f -, and/or from flags.\n"
    "\n";

int cmd_name(int argc, char **argv, struct kiln_err **err)
{
        enum { OPT_EXPLAIN = OPT_COMMON_END };
        static const struct option longopts[] = {
            {"file", required_argument, NULL, 'f'},
            {"json", no_argument, NULL, OPT_JSON},
            {"explain", no_argument, NULL, OPT_EXPLAIN},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        bool json = false, explain = false;
        const char *file = NULL;
        _cleanup_(cli_spec_flags_release) struct cli_spec_flags flags = {0};
        _cleanup_free_ struct option *all = cli_spec_longopts(longopts);
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "f:h", all, NULL)) != -1) {
                if (cli_spec_flag(&flags, opt, optarg))
                        continue;
                if (opt == 'f')
                        file = optarg;
                else if (opt == OPT_JSON)
                        json = true;
                else if (opt == OPT_EXPLAIN)
                        explain = true;
                else if (opt == 'h')
                        return fputs(name_usage, stdout), cli_spec_help(stdout), 0;
                else
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "name: bad option (see kiln help name)");
        }
        if (optind < argc && !file)
                file = argv[optind++];
        if (optind != argc)
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "name: unexpected argument \"%s\"",
                                    argv[optind]);
        _cleanup_spec_ struct kiln_spec *spec = NULL;
        if (cli_spec_load(file, &flags, &spec, err) < 0)
                return kiln_err_prefix(err, "name");
        for (size_t i = 0; spec->warnings && spec->warnings[i]; i++)
                kiln_warn("%s", spec->warnings[i]);
        struct kiln_image_name n = {0};
        if (kiln_spec_image_name(spec, &n, err) < 0)
                return -1;
        if (json) {
                json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", n.full, "repository",
                                      n.repository, "tag", n.tag, "id", n.id);
                if (explain) {
                        json_object_set_new(o, "tagDict", json_string(n.tag_dict));
                        json_object_set_new(o, "idDict", json_string(n.id_dict));
                }
                cli_print_json(o);
                json_decref(o);
        } else {
                printf("%s\n", n.full);
                if (explain)
                        printf("tag hashes: %s\nid hashes:  %s\nid: %s\n", n.tag_dict, n.id_dict,
                               n.id);
        }
        kiln_image_name_release(&n);
        return 0;
}
