#include "cli.h"

#include <errno.h>
#include <string.h>

int cli_common_option(struct cli_common *c, int opt, const char *arg, struct kiln_err **err)
{
        switch (opt) {
        case OPT_INSECURE:
                c->insecure = kiln_xrealloc(c->insecure, (c->n_insecure + 2) * sizeof(char *));
                c->insecure[c->n_insecure++] = kiln_xstrdup(arg);
                c->insecure[c->n_insecure] = NULL;
                c->reg.insecure_hosts = c->insecure;
                return 1;
        case OPT_CERT_DIR:
                c->reg.cert_dir = arg;
                return 1;
        case OPT_CREDS:
                c->reg.creds = arg;
                return 1;
        case OPT_PLATFORM:
                kiln_platform_release(&c->platform);
                if (kiln_platform_parse(arg, &c->platform, err) < 0)
                        return kiln_err_prefix(err, "--platform");
                return 1;
        case OPT_PARALLEL: {
                char *end = NULL;
                errno = 0;
                long n = strtol(arg, &end, 10);
                if (errno || *end || n < 1 || n > 64)
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "--parallel: \"%s\" is not a number from 1 to 64", arg);
                c->reg.parallel = (int)n;
                return 1;
        }
        case OPT_TIMEOUT: {
                uint64_t ms = 0;
                if (kiln_duration_parse(arg, &ms, err) < 0)
                        return kiln_err_prefix(err, "--timeout");
                c->reg.timeout_ms = ms ? ms : KILN_TIMEOUT_NONE;
                return 1;
        }
        case OPT_CACHE_DIR:
                c->cache_dir = arg;
                return 1;
        case OPT_JSON:
                c->json = true;
                return 1;
        case OPT_DEBUG:
                kiln_log_set_level(KILN_LOG_DEBUG);
                return 1;
        case 'q':
                c->reg.quiet = true;
                kiln_log_set_level(KILN_LOG_QUIET);
                return 1;
        default:
                return 0;
        }
}

void cli_common_release(struct cli_common *c)
{
        kiln_strv_free(c->insecure);
        kiln_platform_release(&c->platform);
        *c = (struct cli_common){0};
}

int cli_registry_open(const struct cli_common *c, const struct kiln_ref *ref,
                      struct kiln_registry **out, struct kiln_err **err)
{
        return kiln_registry_new(ref->domain, &c->reg, out, err);
}

void cli_print_json(json_t *v)
{
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s) {
                puts(s);
                free(s);
        }
}

int cli_getopt(int argc, char **argv, const struct option *longopts, struct cli_common *c,
               struct kiln_err **err)
{
        for (;;) {
                int opt = getopt_long(argc, argv, "qh", longopts, NULL);
                if (opt == -1)
                        return -1;
                int r = cli_common_option(c, opt, optarg, err);
                if (r < 0)
                        return -2;
                if (r == 0)
                        return opt;
        }
}

int cli_select_platform(const struct cli_common *c, const struct kiln_manifest *idx,
                        const struct kiln_descriptor **pick, struct kiln_err **err)
{
        _cleanup_platform_ struct kiln_platform want = {0};
        if (c->platform.os)
                kiln_platform_copy(&want, &c->platform);
        else
                kiln_platform_host(&want);
        return kiln_index_select(idx, &want, pick, err);
}
