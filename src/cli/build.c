#include "cli.h"

#include "kiln/builder.h"

#include <string.h>

static const char build_usage[] =
    "Usage: kiln build [OPTIONS] [SPEC.yaml ...]\n"
    "\n"
    "Builds a flytekit ImageSpec without a daemon: pulls the base image, runs the\n"
    "spec's steps in a user-namespace sandbox (copies need none), and writes the\n"
    "image under flytekit's name for the spec to the registry and/or outputs.\n"
    "The spec comes from SPEC.yaml, from stdin with -f -, and/or from flags.\n"
    "Several specs build in one run: each base is pulled and unpacked once, a\n"
    "spec whose base_image is another of them waits for it, the rest run side by\n"
    "side (spec flags then amend every spec).\n"
    "\n"
    "Options:\n"
    "  -f, --file SPEC           a spec file (- for stdin; repeatable)\n"
    "  -j, --jobs N              with several specs, build at most N at once\n"
    "                            (default: one per CPU)\n"
    "  --push                    push to the spec's registry; skipped when the registry\n"
    "                            already has the image name (flytekit's check)\n"
    "  --force                   build and push even if it exists (also\n"
    "                            FLYTE_FORCE_PUSH_IMAGE_SPEC=true)\n"
    "  -o, --output DEST         also write to oci:DIR[:TAG], oci-archive:FILE[:TAG] or\n"
    "                            docker-archive:FILE[:REF] (repeatable); several specs\n"
    "                            go to one oci:DIR, each tagged with its own tag (a '0'\n"
    "                            put where the OCI ref grammar needs one)\n"
    "  --dry-run                 print the steps, whether each is cached, and the image\n"
    "                            name; build nothing\n"
    "  --no-cache                run every step even when its result is cached\n"
    "  --follow-external-symlinks  copy source_root and copy symlinks whose target is\n"
    "                            outside the tree (refused by default: the target's\n"
    "                            bytes would go into the image)\n"
    "  --cache-repo REF          also keep step results in this registry repository and\n"
    "                            look there on a local miss (default $KILN_CACHE_REPO):\n"
    "                            builders that share the registry share results\n"
    "  --digest-file FILE        write the manifest digest to FILE (one spec)\n"
    "  --progress auto|tty|plain|json\n"
    "                            how progress goes to stderr: tty is a live view (a line\n"
    "                            per step, a bar per transfer, a summary), plain the log\n"
    "                            lines with each step's number, json one event per line\n"
    "                            (docs/progress.md); auto: tty on a terminal, else the\n"
    "                            log lines unprefixed. -q: only the image name on\n"
    "                            stdout (one line of JSON with --json)\n"
    "  --compression gzip|zstd   for new layers (default gzip)\n"
    "  --provenance[=true|false] attach SLSA v1 provenance to the image as an OCI 1.1\n"
    "                            referrer (default true; kiln provenance IMAGE reads it)\n"
    "  --sbom[=true|false]       attach an SBOM likewise (default true; kiln sbom IMAGE)\n"
    "  --sbom-format spdx|cyclonedx  SPDX 2.3 (default) or CycloneDX 1.5 JSON\n"
    "  --network private|host|none\n"
    "                            the network of build steps (default private): private\n"
    "                            is a namespace of its own that reaches the outside\n"
    "                            through slirp4netns, not the host's loopback services,\n"
    "                            abstract unix sockets or traffic; none has loopback\n"
    "                            only; host shares the host's network. With private and\n"
    "                            none, loopback ports of the spec's pip index URLs and\n"
    "                            of --allow-host stay reachable\n"
    "  --allow-host HOST:PORT    a host loopback port build steps may reach (HOST:\n"
    "                            127.0.0.0/8, [::1] or localhost; repeatable)\n"
    "  --security-opt seccomp=unconfined\n"
    "                            run steps without the system call filter (Docker's\n"
    "                            default profile); capabilities stay bounded\n"
    "  --flytekit-requirement REQ|none\n"
    "                            add the pip requirement REQ (flytekit==1.16.24) to the\n"
    "                            python packages unless packages or requirements name\n"
    "                            flytekit, as flytekit's default builder adds its own\n"
    "                            version (not for uv.lock/poetry.lock); never part of\n"
    "                            the image name. Default none: kiln cannot know the\n"
    "                            client's flytekit (the flytekit plugin passes it)\n";
/* after the spec flags (cli_spec_help) */
static const char build_usage_registry[] =
    "Registry options:\n"
    "  --creds USER:PASSWORD  --cert-dir DIR  --insecure-registry HOST  --parallel N\n"
    "  --timeout DURATION (each pull and push; default 1h, 0: never)\n"
    "  --cache-dir DIR  --json  -q, --quiet  --debug\n";

enum {
        OPT_PUSH = OPT_COMMON_END,
        OPT_DRY_RUN,
        OPT_DIGEST_FILE,
        OPT_COMPRESSION,
        OPT_FORCE,
        OPT_NO_CACHE,
        OPT_CACHE_REPO,
        OPT_FOLLOW_SYMLINKS,
        OPT_NETWORK,
        OPT_ALLOW_HOST,
        OPT_SECURITY_OPT,
        OPT_FLYTEKIT_REQ,
        OPT_SBOM,
        OPT_SBOM_FORMAT,
        OPT_PROVENANCE,
        OPT_PROGRESS,
};

/* --sbom / --provenance: no value or true turns it on, false off. */
static int bool_flag(const char *name, const char *v, bool *off, struct kiln_err **err)
{
        if (!v || !strcmp(v, "true"))
                *off = false;
        else if (!strcmp(v, "false"))
                *off = true;
        else
                return kiln_err_set(err, KILN_ERR_USAGE, 0, "--%s=%s: want true or false", name, v);
        return 0;
}

static json_t *result_json(const struct kiln_build_result *r, const struct kiln_build_opts *bo)
{
        bool dry_run = bo->dry_run;
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:b, s:s}", "image", r->name.full, "tag", r->name.tag, "id",
                      r->name.id, "skipped", r->skipped, "network", kiln_network_name(bo->network));
        if (!dry_run && r->manifest.digest) {
                json_object_set_new(o, "digest", json_string(r->manifest.digest));
                if (r->manifest.media_type)
                        json_object_set_new(o, "mediaType", json_string(r->manifest.media_type));
                json_object_set_new(o, "newLayers", json_integer((json_int_t)r->n_new_layers));
                json_object_set_new(o, "cachedSteps", json_integer((json_int_t)r->n_cached_steps));
                json_object_set_new(o, "remoteHits", json_integer((json_int_t)r->n_remote_hits));
                json_t *outs = json_array();
                for (size_t i = 0; r->outputs && r->outputs[i]; i++)
                        json_array_append_new(outs, json_string(r->outputs[i]));
                json_object_set_new(o, "outputs", outs);
                if (r->n_platform_manifests) {
                        json_t *ps = json_array();
                        for (size_t i = 0; i < r->n_platform_manifests; i++)
                                json_array_append_new(
                                    ps, kiln_descriptor_to_json(&r->platform_manifests[i]));
                        json_object_set_new(o, "platforms", ps);
                }
        }
        return o;
}

static void print_text(const struct kiln_build_result *r, bool quiet)
{
        if (quiet) {
                printf("%s\n", r->name.full);
                return;
        }
        if (r->skipped)
                printf("%s\n  exists in the registry: nothing to build (--force rebuilds)\n",
                       r->name.full);
        else
                printf("%s\n  digest: %s\n", r->name.full, r->manifest.digest);
        for (size_t i = 0; !r->skipped && i < r->n_platform_manifests; i++) {
                _cleanup_free_ char *p = kiln_platform_string(r->platform_manifests[i].platform);
                printf("  %s: %s\n", p, r->platform_manifests[i].digest);
        }
        for (size_t i = 0; !r->skipped && r->outputs && r->outputs[i]; i++)
                printf("  written: %s\n", r->outputs[i]);
}

/* -q: one line, as docker build -q prints one id */
static void print_json(const struct cli_common *c, json_t *o)
{
        if (!c->reg.quiet) {
                cli_print_json(o);
                return;
        }
        _cleanup_free_ char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
                puts(s);
}

static int print_result(const struct cli_common *c, const struct kiln_build_result *r,
                        const struct kiln_build_opts *bo, const char *digest_file,
                        struct kiln_err **err)
{
        bool dry_run = bo->dry_run;
        if (dry_run && !c->json)
                return 0;
        if (c->json) {
                json_t *o = result_json(r, bo);
                print_json(c, o);
                json_decref(o);
        } else {
                print_text(r, c->reg.quiet);
        }
        if (digest_file && !dry_run && r->manifest.digest) {
                _cleanup_free_ char *line = kiln_xasprintf("%s\n", r->manifest.digest);
                if (kiln_write_file_atomic(digest_file, line, strlen(line), 0644, err) < 0)
                        return kiln_err_prefix(err, "--digest-file");
        }
        return 0;
}

/* REQ reaches pip as one argument of its own: one starting with '-' would
 * be read as an option (-e, --index-url), and a line break or a blank one
 * is no requirement. */
static int parse_flytekit_requirement(const char *arg, const char **out, struct kiln_err **err)
{
        *out = NULL;
        if (!strcmp(arg, "none"))
                return 0;
        if (!arg[strspn(arg, " \t")])
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "--flytekit-requirement: empty; want a pip requirement "
                                    "(flytekit==1.16.24) or none");
        if (strpbrk(arg, "\n\r"))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "--flytekit-requirement: a line break in the requirement");
        if (arg[0] == '-')
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "--flytekit-requirement %s: a requirement, not a pip option, "
                                    "is wanted",
                                    arg);
        *out = arg;
        return 0;
}

/* The requirement goes to a nested base spec too: flytekit's builder
 * builds it the same way. */
static void set_flytekit_requirement(struct kiln_spec *s, const char *req)
{
        for (; s; s = s->base_spec)
                s->flytekit_requirement = req;
}

/* Several specs: results in argument order; every failure in one error. */
static int print_many(const struct cli_common *c, const struct kiln_build_opts *bo,
                      struct kiln_build_job *jobs, size_t n, struct kiln_err **err)
{
        _cleanup_json_ json_t *all = c->json ? json_array() : NULL;
        _cleanup_buf_ struct kiln_buf why = {0};
        size_t failed = 0;
        const struct kiln_err *first = NULL;
        for (size_t i = 0; i < n; i++) {
                if (jobs[i].err) {
                        failed++;
                        first = first ? first : jobs[i].err;
                        kiln_buf_printf(&why, "\n  %s: %s", jobs[i].label, jobs[i].err->msg);
                }
                if (all) {
                        json_t *o =
                            jobs[i].res.name.full ? result_json(&jobs[i].res, bo) : json_object();
                        json_object_set_new(o, "spec", json_string(jobs[i].label));
                        if (jobs[i].err)
                                json_object_set_new(o, "error", json_string(jobs[i].err->msg));
                        json_array_append_new(all, o);
                } else if (!jobs[i].err) {
                        print_text(&jobs[i].res, c->reg.quiet);
                }
                if (!jobs[i].err)
                        cli_progress_result(&jobs[i].res);
        }
        if (all)
                print_json(c, all);
        if (failed)
                return kiln_err_set(err, first->domain, first->code, "%zu of %zu specs failed:%s",
                                    failed, n, why.data);
        return 0;
}

/* The jobs of a run of several specs, each owning its spec, result and
 * error. */
struct build_jobs {
        struct kiln_build_job *v;
        size_t n;
};

static void build_jobs_release(struct build_jobs *l)
{
        for (size_t i = 0; i < l->n; i++) {
                kiln_spec_free((struct kiln_spec *)l->v[i].spec);
                kiln_build_result_release(&l->v[i].res);
                kiln_err_free(l->v[i].err);
        }
        free(l->v);
        *l = (struct build_jobs){0};
}
#define _cleanup_build_jobs_ _cleanup_(build_jobs_release)

/* The -o destinations given. */
struct image_locs {
        struct kiln_image_loc *v;
        size_t n;
};

static void image_locs_release(struct image_locs *l)
{
        for (size_t i = 0; i < l->n; i++)
                kiln_image_loc_release(&l->v[i]);
        free(l->v);
        *l = (struct image_locs){0};
}
#define _cleanup_image_locs_ _cleanup_(image_locs_release)

static int build_many(const struct cli_common *c, const struct kiln_build_opts *bo,
                      char *const *files, size_t n, const struct cli_spec_flags *flags, int jobs_n,
                      const char *flytekit_req, struct kiln_err **err)
{
        for (size_t i = 0; i < bo->n_outputs; i++)
                if (bo->outputs[i].transport != KILN_TRANSPORT_OCI || bo->outputs[i].tag)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "-o: several specs need an OCI layout without a tag "
                                            "(oci:DIR), where each image gets its own tag");
        _cleanup_build_jobs_ struct build_jobs jobs = {.v = kiln_xcalloc(n, sizeof(*jobs.v)),
                                                       .n = n};
        for (size_t i = 0; i < n; i++) {
                struct kiln_spec *s = NULL;
                int r = cli_spec_load(files[i], flags, &s, err);
                jobs.v[i].spec = s;
                jobs.v[i].label = files[i];
                if (r < 0)
                        return kiln_err_prefix(err, "build");
                set_flytekit_requirement(s, flytekit_req);
        }
        if (bo->dry_run) {
                /* The plans, one after another: nothing runs. */
                for (size_t i = 0; i < n; i++) {
                        printf("%s== %s\n", i ? "\n" : "", files[i]);
                        fflush(stdout);
                        if (kiln_build(jobs.v[i].spec, bo, &jobs.v[i].res, err) < 0)
                                return -1;
                }
                return 0;
        }
        if (kiln_build_many(jobs.v, n, bo, jobs_n, err) < 0)
                return -1;
        return print_many(c, bo, jobs.v, n, err);
}

static void progress_stop(bool *started)
{
        if (*started)
                cli_progress_stop();
}

int cmd_build(int argc, char **argv, struct kiln_err **err)
{
        static const struct option longopts[] = {
            {"file", required_argument, NULL, 'f'},
            {"jobs", required_argument, NULL, 'j'},
            {"output", required_argument, NULL, 'o'},
            {"push", no_argument, NULL, OPT_PUSH},
            {"force", no_argument, NULL, OPT_FORCE},
            {"no-cache", no_argument, NULL, OPT_NO_CACHE},
            {"cache-repo", required_argument, NULL, OPT_CACHE_REPO},
            {"follow-external-symlinks", no_argument, NULL, OPT_FOLLOW_SYMLINKS},
            {"dry-run", no_argument, NULL, OPT_DRY_RUN},
            {"digest-file", required_argument, NULL, OPT_DIGEST_FILE},
            {"compression", required_argument, NULL, OPT_COMPRESSION},
            {"network", required_argument, NULL, OPT_NETWORK},
            {"allow-host", required_argument, NULL, OPT_ALLOW_HOST},
            {"security-opt", required_argument, NULL, OPT_SECURITY_OPT},
            {"flytekit-requirement", required_argument, NULL, OPT_FLYTEKIT_REQ},
            {"sbom", optional_argument, NULL, OPT_SBOM},
            {"sbom-format", required_argument, NULL, OPT_SBOM_FORMAT},
            {"provenance", optional_argument, NULL, OPT_PROVENANCE},
            {"progress", required_argument, NULL, OPT_PROGRESS},
            {"help", no_argument, NULL, 'h'},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        _cleanup_cli_common_ struct cli_common c = {0};
        struct kiln_build_opts bo = {.compression = KILN_COMP_GZIP};
        _cleanup_image_locs_ struct image_locs outs = {0};
        _cleanup_net_ports_ struct kiln_net_ports allow = {0};
        _cleanup_(cli_spec_flags_release) struct cli_spec_flags flags = {0};
        _cleanup_free_ struct option *all = cli_spec_longopts(longopts);
        const char *digest_file = NULL;
        const char *flytekit_req = NULL;
        _cleanup_strv_ char **files = NULL;
        size_t n_files = 0;
        int jobs_n = 0;
        enum cli_progress_mode progress = CLI_PROGRESS_AUTO;
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "f:j:o:qh", all, NULL)) != -1) {
                if (cli_spec_flag(&flags, opt, optarg))
                        continue;
                int r = cli_common_option(&c, opt, optarg, err);
                if (r < 0)
                        return -1;
                if (r > 0)
                        continue;
                switch (opt) {
                case 'f':
                        files = kiln_xrealloc(files, (n_files + 2) * sizeof(char *));
                        files[n_files++] = kiln_xstrdup(optarg);
                        files[n_files] = NULL;
                        break;
                case 'j': {
                        char *end = NULL;
                        long v = strtol(optarg, &end, 10);
                        if (end == optarg || *end || v < 1 || v > 1024)
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "--jobs %s: want a number from 1 to 1024",
                                                    optarg);
                        jobs_n = (int)v;
                        break;
                }
                case 'o':
                        outs.v = kiln_xrealloc(outs.v, (outs.n + 1) * sizeof(*outs.v));
                        memset(&outs.v[outs.n], 0, sizeof(*outs.v));
                        if (kiln_image_loc_parse(optarg, false, &outs.v[outs.n], err) < 0)
                                return -1;
                        outs.n++;
                        if (outs.v[outs.n - 1].transport == KILN_TRANSPORT_DOCKER)
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "-o %s: use --push to write to the spec's "
                                                    "registry",
                                                    optarg);
                        break;
                case OPT_PUSH:
                        bo.push = true;
                        break;
                case OPT_FORCE:
                        bo.force = true;
                        break;
                case OPT_NO_CACHE:
                        bo.no_cache = true;
                        break;
                case OPT_CACHE_REPO:
                        bo.cache_repo = optarg;
                        break;
                case OPT_FOLLOW_SYMLINKS:
                        bo.follow_external_symlinks = true;
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
                        else
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "--compression %s: want gzip or zstd", optarg);
                        break;
                case OPT_SBOM:
                        if (bool_flag("sbom", optarg, &bo.no_sbom, err) < 0)
                                return -1;
                        break;
                case OPT_PROVENANCE:
                        if (bool_flag("provenance", optarg, &bo.no_provenance, err) < 0)
                                return -1;
                        break;
                case OPT_SBOM_FORMAT:
                        if (!strcmp(optarg, "spdx"))
                                bo.sbom_format = KILN_SBOM_SPDX;
                        else if (!strcmp(optarg, "cyclonedx"))
                                bo.sbom_format = KILN_SBOM_CYCLONEDX;
                        else
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "--sbom-format %s: want spdx or cyclonedx",
                                                    optarg);
                        break;
                case OPT_NETWORK:
                        if (kiln_network_parse(optarg, &bo.network, err) < 0)
                                return -1;
                        break;
                case OPT_ALLOW_HOST:
                        if (kiln_net_ports_add(&allow, optarg, err) < 0)
                                return -1;
                        break;
                case OPT_SECURITY_OPT:
                        if (strcmp(optarg, "seccomp=unconfined") != 0)
                                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                                    "--security-opt %s: only seccomp=unconfined "
                                                    "is known",
                                                    optarg);
                        bo.seccomp_unconfined = true;
                        break;
                case OPT_PROGRESS:
                        if (cli_progress_parse(optarg, &progress, err) < 0)
                                return -1;
                        break;
                case OPT_FLYTEKIT_REQ:
                        if (parse_flytekit_requirement(optarg, &flytekit_req, err) < 0)
                                return -1;
                        break;
                case 'h':
                        fputs(build_usage, stdout);
                        cli_spec_help(stdout);
                        fputs(build_usage_registry, stdout);
                        return 0;
                default:
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "build: bad option (see kiln help build)");
                }
        }
        for (; optind < argc; optind++) {
                files = kiln_xrealloc(files, (n_files + 2) * sizeof(char *));
                files[n_files++] = kiln_xstrdup(argv[optind]);
                files[n_files] = NULL;
        }
        size_t stdin_uses = 0;
        for (size_t i = 0; i < n_files; i++)
                stdin_uses += !strcmp(files[i], "-");
        if (stdin_uses > 1)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "build: stdin (-) can give only one spec");
        /* a dry run prints its plan on stdout and runs nothing */
        _cleanup_(progress_stop) bool started = !bo.dry_run;
        if (started)
                cli_progress_start(progress, c.reg.quiet, n_files > 1);
        if (bo.seccomp_unconfined)
                kiln_warn("--security-opt seccomp=unconfined: build steps run without the "
                          "system call filter");
        bo.reg = c.reg;
        bo.cache_dir = c.cache_dir;
        bo.outputs = outs.v;
        bo.n_outputs = outs.n;
        bo.allow_hosts = &allow;
        if (bo.network == KILN_NETWORK_HOST && !bo.dry_run)
                kiln_warn("--network host: build steps share this host's network: its loopback "
                          "services, abstract unix sockets and traffic are within their reach");
        if (n_files > 1) {
                if (digest_file)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "--digest-file takes one spec; with several, --json "
                                            "gives every digest");
                return build_many(&c, &bo, files, n_files, &flags, jobs_n, flytekit_req, err);
        }
        _cleanup_spec_ struct kiln_spec *spec = NULL;
        if (cli_spec_load(n_files ? files[0] : NULL, &flags, &spec, err) < 0)
                return kiln_err_prefix(err, "build");
        set_flytekit_requirement(spec, flytekit_req);
        _cleanup_build_result_ struct kiln_build_result res = {0};
        if (kiln_build(spec, &bo, &res, err) < 0)
                return -1;
        if (!bo.dry_run)
                cli_progress_result(&res);
        return print_result(&c, &res, &bo, digest_file, err);
}
