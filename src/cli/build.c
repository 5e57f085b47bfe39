#include "cli.h"

#include "kiln/build.h"

#include <string.h>

static const char build_usage[] =
    "Usage: kiln build [OPTIONS] [SPEC.yaml]\n"
    "\n"
    "Builds a flytekit ImageSpec without a daemon: pulls the base image, runs the\n"
    "spec's steps in a user-namespace sandbox (copies need none), and writes the\n"
    "image under flytekit's name for the spec to the registry and/or outputs.\n"
    "The spec comes from SPEC.yaml, from stdin with -f -, and/or from flags.\n"
    "\n"
    "Options:\n"
    "  -f, --file SPEC           the spec file (- for stdin)\n"
    "  --push                    push to the spec's registry; skipped when the registry\n"
    "                            already has the image name (flytekit's check)\n"
    "  --force                   build and push even if it exists (also\n"
    "                            FLYTE_FORCE_PUSH_IMAGE_SPEC=true)\n"
    "  -o, --output DEST         also write to oci:DIR[:TAG], oci-archive:FILE[:TAG] or\n"
    "                            docker-archive:FILE[:REF] (repeatable)\n"
    "  --dry-run                 print the steps and the image name; build nothing\n"
    "  --digest-file FILE        write the manifest digest to FILE\n"
    "  --compression gzip|zstd   for new layers (default gzip)\n"
    "Spec fields as flags (they change the name as the same YAML would):\n"
    "  --name NAME  --registry REG  --base-image REF  --platform OS/ARCH\n"
    "  --env K=V  --command CMD  --copy PATH  --entrypoint ARG  --tag-format FMT\n"
    "  --package PKG  --apt-package PKG  --python-version V  --pip-index URL\n"
    "Registry options:\n"
    "  --creds USER:PASSWORD  --cert-dir DIR  --insecure-registry HOST  --parallel N\n"
    "  --cache-dir DIR  --json  -q, --quiet  --debug\n";

enum {
        OPT_PUSH = OPT_COMMON_END,
        OPT_DRY_RUN,
        OPT_DIGEST_FILE,
        OPT_COMPRESSION,
        OPT_FORCE,
        OPT_S_NAME,
        OPT_S_REGISTRY,
        OPT_S_BASE,
        OPT_S_ENV,
        OPT_S_COMMAND,
        OPT_S_COPY,
        OPT_S_ENTRYPOINT,
        OPT_S_TAG_FORMAT,
        OPT_S_PACKAGE,
        OPT_S_APT,
        OPT_S_PIP_INDEX,
        OPT_S_PYTHON, /* last: the spec flags are OPT_S_NAME..OPT_S_PYTHON */
};

struct flag_edit {
        int opt;
        const char *arg;
};

/* Spec flags are applied after the file is read, in command-line order. */
static int apply_flag(struct kiln_spec *s, const struct flag_edit *f, struct kiln_err **err)
{
        switch (f->opt) {
        case OPT_S_NAME:
                return kiln_spec_set_str(s, "name", f->arg, err);
        case OPT_S_REGISTRY:
                return kiln_spec_set_str(s, "registry", f->arg, err);
        case OPT_S_BASE:
                return kiln_spec_set_str(s, "base_image", f->arg, err);
        case OPT_PLATFORM:
                return kiln_spec_set_str(s, "platform", f->arg, err);
        case OPT_S_TAG_FORMAT:
                return kiln_spec_set_str(s, "tag_format", f->arg, err);
        case OPT_S_PYTHON:
                return kiln_spec_set_str(s, "python_version", f->arg, err);
        case OPT_S_PIP_INDEX:
                return kiln_spec_set_str(s, "pip_index", f->arg, err);
        case OPT_S_COMMAND:
                return kiln_spec_append(s, "commands", f->arg, err);
        case OPT_S_COPY:
                return kiln_spec_append(s, "copy", f->arg, err);
        case OPT_S_ENTRYPOINT:
                return kiln_spec_append(s, "entrypoint", f->arg, err);
        case OPT_S_PACKAGE:
                return kiln_spec_append(s, "packages", f->arg, err);
        case OPT_S_APT:
                return kiln_spec_append(s, "apt_packages", f->arg, err);
        case OPT_S_ENV: {
                const char *eq = strchr(f->arg, '=');
                if (!eq || eq == f->arg)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0, "--env %s: want KEY=VALUE",
                                            f->arg);
                _cleanup_free_ char *k = kiln_xstrndup(f->arg, (size_t)(eq - f->arg));
                return kiln_spec_set_env(s, k, eq + 1, err);
        }
        default:
                return 0;
        }
}

static int print_result(const struct cli_common *c, const struct kiln_build_result *r, bool dry_run,
                        const char *digest_file, struct kiln_err **err)
{
        if (dry_run && !c->json)
                return 0;
        if (r->skipped && !c->json) {
                printf("%s\n  exists in the registry: nothing to build (--force rebuilds)\n",
                       r->name.full);
                return 0;
        }
        if (c->json) {
                json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "image", r->name.full, "tag",
                                      r->name.tag, "id", r->name.id, "skipped", r->skipped);
                if (!dry_run && r->manifest.digest) {
                        json_object_set_new(o, "digest", json_string(r->manifest.digest));
                        if (r->manifest.media_type)
                                json_object_set_new(o, "mediaType",
                                                    json_string(r->manifest.media_type));
                        json_object_set_new(o, "newLayers",
                                            json_integer((json_int_t)r->n_new_layers));
                }
                cli_print_json(o);
                json_decref(o);
        } else {
                printf("%s\n  digest: %s\n", r->name.full, r->manifest.digest);
        }
        if (digest_file && !dry_run && r->manifest.digest) {
                _cleanup_free_ char *line = kiln_xasprintf("%s\n", r->manifest.digest);
                if (kiln_write_file_atomic(digest_file, line, strlen(line), 0644, err) < 0)
                        return kiln_err_prefix(err, "--digest-file");
        }
        return 0;
}

int cmd_build(int argc, char **argv, struct kiln_err **err)
{
        static const struct option longopts[] = {
            {"file", required_argument, NULL, 'f'},
            {"output", required_argument, NULL, 'o'},
            {"push", no_argument, NULL, OPT_PUSH},
            {"force", no_argument, NULL, OPT_FORCE},
            {"dry-run", no_argument, NULL, OPT_DRY_RUN},
            {"digest-file", required_argument, NULL, OPT_DIGEST_FILE},
            {"compression", required_argument, NULL, OPT_COMPRESSION},
            {"name", required_argument, NULL, OPT_S_NAME},
            {"registry", required_argument, NULL, OPT_S_REGISTRY},
            {"base-image", required_argument, NULL, OPT_S_BASE},
            {"env", required_argument, NULL, OPT_S_ENV},
            {"command", required_argument, NULL, OPT_S_COMMAND},
            {"copy", required_argument, NULL, OPT_S_COPY},
            {"entrypoint", required_argument, NULL, OPT_S_ENTRYPOINT},
            {"tag-format", required_argument, NULL, OPT_S_TAG_FORMAT},
            {"package", required_argument, NULL, OPT_S_PACKAGE},
            {"apt-package", required_argument, NULL, OPT_S_APT},
            {"python-version", required_argument, NULL, OPT_S_PYTHON},
            {"pip-index", required_argument, NULL, OPT_S_PIP_INDEX},
            {"help", no_argument, NULL, 'h'},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        struct cli_common c = {0};
        struct kiln_build_opts bo = {.compression = KILN_COMP_GZIP};
        struct kiln_image_loc *outs = NULL;
        size_t n_outs = 0;
        struct flag_edit *edits = kiln_xcalloc((size_t)argc + 1, sizeof(*edits));
        size_t n_edits = 0;
        const char *file = NULL, *digest_file = NULL;
        struct kiln_spec *spec = NULL;
        struct kiln_build_result res = {0};
        int opt, rc = -1;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "f:o:qh", longopts, NULL)) != -1) {
                if (opt == OPT_PLATFORM) {
                        /* For build, --platform is the spec's platform field. */
                        edits[n_edits++] = (struct flag_edit){opt, optarg};
                        continue;
                }
                int r = cli_common_option(&c, opt, optarg, err);
                if (r < 0)
                        goto out;
                if (r > 0)
                        continue;
                switch (opt) {
                case 'f':
                        file = optarg;
                        break;
                case 'o':
                        outs = kiln_xrealloc(outs, (n_outs + 1) * sizeof(*outs));
                        memset(&outs[n_outs], 0, sizeof(*outs));
                        if (kiln_image_loc_parse(optarg, false, &outs[n_outs], err) < 0)
                                goto out;
                        n_outs++;
                        if (outs[n_outs - 1].transport == KILN_TRANSPORT_DOCKER) {
                                kiln_err_set(err, KILN_ERR_USAGE, 0,
                                             "-o %s: use --push to write to the spec's registry",
                                             optarg);
                                goto out;
                        }
                        break;
                case OPT_PUSH:
                        bo.push = true;
                        break;
                case OPT_FORCE:
                        bo.force = true;
                        break;
                case OPT_DRY_RUN:
                        bo.dry_run = true;
                        break;
                case OPT_DIGEST_FILE:
                        digest_file = optarg;
                        break;
                case OPT_COMPRESSION:
                        if (!strcmp(optarg, "gzip"))
                                bo.compression = KILN_COMP_GZIP;
                        else if (!strcmp(optarg, "zstd"))
                                bo.compression = KILN_COMP_ZSTD;
                        else {
                                kiln_err_set(err, KILN_ERR_USAGE, 0,
                                             "--compression %s: want gzip or zstd", optarg);
                                goto out;
                        }
                        break;
                case 'h':
                        fputs(build_usage, stdout);
                        rc = 0;
                        goto out;
                default:
                        if (opt >= OPT_S_NAME && opt <= OPT_S_PYTHON) {
                                edits[n_edits++] = (struct flag_edit){opt, optarg};
                                break;
                        }
                        kiln_err_set(err, KILN_ERR_USAGE, 0,
                                     "build: bad option (see kiln help build)");
                        goto out;
                }
        }
        if (optind < argc && !file)
                file = argv[optind++];
        if (optind != argc) {
                kiln_err_set(err, KILN_ERR_USAGE, 0, "build: unexpected argument \"%s\"",
                             argv[optind]);
                goto out;
        }
        if (file) {
                if (kiln_spec_load_file(file, &spec, err) < 0)
                        goto out;
        } else if (n_edits) {
                spec = kiln_spec_new(NULL);
        } else {
                kiln_err_set(err, KILN_ERR_USAGE, 0,
                             "build: no spec (give SPEC.yaml, -f -, or spec flags)");
                goto out;
        }
        for (size_t i = 0; i < n_edits; i++)
                if (apply_flag(spec, &edits[i], err) < 0)
                        goto out;
        bo.reg = c.reg;
        bo.cache_dir = c.cache_dir;
        bo.outputs = outs;
        bo.n_outputs = n_outs;
        if (kiln_build(spec, &bo, &res, err) < 0)
                goto out;
        rc = print_result(&c, &res, bo.dry_run, digest_file, err);
out:
        kiln_build_result_release(&res);
        kiln_spec_free(spec);
        for (size_t i = 0; i < n_outs; i++)
                kiln_image_loc_release(&outs[i]);
        free(outs);
        free(edits);
        cli_common_release(&c);
        return rc;
}
