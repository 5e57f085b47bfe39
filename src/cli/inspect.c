#include "cli.h"

#include <string.h>

static const char inspect_usage[] =
    "Usage: kiln inspect [OPTIONS] IMAGE\n"
    "\n"
    "Shows an image's digest, media type, platform, layers and config (env,\n"
    "entrypoint, cmd, user, working dir). IMAGE is [docker://]REF, oci:DIR[:TAG] or\n"
    "oci-archive:FILE[:TAG]. For an index, the platform's image is shown\n"
    "(--platform, default this host) along with the platforms it offers.\n"
    "\n"
    "Options:\n"
    "  --raw                     print the exact manifest (or index) bytes\n" CLI_COMMON_HELP;

/* Where the manifest and config bytes come from: a registry or a layout. */
struct source {
        struct kiln_image_loc loc;
        struct kiln_registry *reg;
        struct kiln_store *store;
        struct kiln_local_image local;
        bool is_local;
};

static void source_release(struct source *s)
{
        kiln_registry_free(s->reg);
        kiln_store_free(s->store);
        if (s->is_local)
                kiln_local_image_release(&s->local);
        kiln_image_loc_release(&s->loc);
        *s = (struct source){0};
}
#define _cleanup_source_ _cleanup_(source_release)

/* The top manifest or index: its bytes, digest and declared media type. */
static int source_top(struct source *s, struct kiln_buf *body, char **mt,
                      char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        if (s->is_local) {
                snprintf(digest, KILN_DIGEST_MAX, "%s", s->local.top.digest);
                *mt = kiln_xstrdup(s->local.top.media_type);
                return kiln_local_image_read_blob(&s->local, s->local.top.digest, KILN_MANIFEST_MAX,
                                                  body, err);
        }
        return kiln_registry_get_manifest(s->reg, s->loc.ref.path, kiln_ref_object(&s->loc.ref),
                                          body, mt, digest, err);
}

static int source_manifest(struct source *s, const char *digest, struct kiln_buf *body,
                           struct kiln_err **err)
{
        if (s->is_local)
                return kiln_local_image_read_blob(&s->local, digest, KILN_MANIFEST_MAX, body, err);
        char got[KILN_DIGEST_MAX];
        return kiln_registry_get_manifest(s->reg, s->loc.ref.path, digest, body, NULL, got, err);
}

static int source_config(struct source *s, const struct kiln_descriptor *d, struct kiln_buf *body,
                         struct kiln_err **err)
{
        if (s->is_local)
                return kiln_local_image_read_blob(&s->local, d->digest, KILN_CONFIG_MAX, body, err);
        if (kiln_registry_fetch_blobs(s->reg, s->loc.ref.path, d, 1, s->store, NULL, err) < 0)
                return -1;
        return kiln_store_read(s->store, d->digest, KILN_CONFIG_MAX, body, err);
}

static json_t *strv_json(char **v)
{
        if (!v)
                return json_null();
        json_t *a = json_array();
        for (size_t i = 0; v[i]; i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

static void print_strv(const char *label, char **v)
{
        printf("  %-12s", label);
        if (!v) {
                printf("(unset)\n");
                return;
        }
        json_t *a = strv_json(v);
        char *s = json_dumps(a, JSON_COMPACT);
        printf("%s\n", s ? s : "");
        free(s);
        json_decref(a);
}

static json_t *index_json(const struct kiln_manifest *idx, const char *digest)
{
        json_t *list = json_array();
        for (size_t i = 0; i < idx->n_manifests; i++) {
                const struct kiln_descriptor *d = &idx->manifests[i];
                json_t *e = json_pack("{s:s, s:s, s:I}", "digest", d->digest, "mediaType",
                                      d->media_type, "size", (json_int_t)d->size);
                if (d->platform) {
                        _cleanup_free_ char *p = kiln_platform_string(d->platform);
                        json_object_set_new(e, "platform", json_string(p));
                }
                json_array_append_new(list, e);
        }
        return json_pack("{s:s, s:s, s:o}", "digest", digest, "mediaType", idx->media_type,
                         "manifests", list);
}

static void print_text(const char *name, const char *digest, const struct kiln_manifest *m,
                       const struct kiln_config_summary *cfg, json_t *index)
{
        char sz[32];
        printf("Name:        %s\n", name);
        printf("Digest:      %s\n", digest);
        printf("Media type:  %s\n", m->media_type);
        if (index) {
                printf("Index:       %s\n", json_string_value(json_object_get(index, "digest")));
                size_t i;
                json_t *e;
                json_array_foreach(json_object_get(index, "manifests"), i, e)
                {
                        const char *p = json_string_value(json_object_get(e, "platform"));
                        printf("  %-20s %s\n", p ? p : "(no platform)",
                               json_string_value(json_object_get(e, "digest")));
                }
        }
        _cleanup_free_ char *plat = kiln_platform_string(&cfg->platform);
        printf("Platform:    %s\n", plat);
        if (cfg->created)
                printf("Created:     %s\n", cfg->created);
        uint64_t total = 0;
        for (size_t i = 0; i < m->n_layers; i++)
                total += (uint64_t)m->layers[i].size;
        printf("Layers:      %zu (%s)\n", m->n_layers, kiln_human_size(total, sz, sizeof(sz)));
        for (size_t i = 0; i < m->n_layers; i++)
                printf("  %s  %10s  %s\n", m->layers[i].digest,
                       kiln_human_size((uint64_t)m->layers[i].size, sz, sizeof(sz)),
                       m->layers[i].media_type);
        printf("Config:      %s\n", m->config.digest);
        print_strv("Env:", cfg->env);
        print_strv("Entrypoint:", cfg->entrypoint);
        print_strv("Cmd:", cfg->cmd);
        printf("  %-12s%s\n", "User:", cfg->user && *cfg->user ? cfg->user : "(unset)");
        printf("  %-12s%s\n",
               "WorkingDir:", cfg->working_dir && *cfg->working_dir ? cfg->working_dir : "(unset)");
}

static json_t *image_json(const char *name, const char *digest, const struct kiln_manifest *m,
                          const struct kiln_config_summary *cfg, json_t *index)
{
        _cleanup_free_ char *plat = kiln_platform_string(&cfg->platform);
        json_t *layers = json_array();
        for (size_t i = 0; i < m->n_layers; i++)
                json_array_append_new(layers,
                                      json_pack("{s:s, s:I, s:s}", "digest", m->layers[i].digest,
                                                "size", (json_int_t)m->layers[i].size, "mediaType",
                                                m->layers[i].media_type));
        json_t *config =
            json_pack("{s:s, s:o, s:o, s:o, s:s, s:s}", "digest", m->config.digest, "env",
                      strv_json(cfg->env), "entrypoint", strv_json(cfg->entrypoint), "cmd",
                      strv_json(cfg->cmd), "user", cfg->user ? cfg->user : "", "workingDir",
                      cfg->working_dir ? cfg->working_dir : "");
        if (cfg->labels)
                json_object_set(config, "labels", cfg->labels);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "digest", digest, "mediaType",
                              m->media_type, "platform", plat);
        if (cfg->created)
                json_object_set_new(o, "created", json_string(cfg->created));
        if (index)
                json_object_set(o, "index", index);
        json_object_set_new(o, "layers", layers);
        json_object_set_new(o, "diffIds", strv_json(cfg->diff_ids));
        json_object_set_new(o, "config", config);
        return o;
}

/* An index is resolved to the platform's image (--platform, default this
 * host): m and body become that manifest, digest its digest. */
static int resolve_index(struct source *s, const struct cli_common *c, struct kiln_manifest *m,
                         struct kiln_buf *body, char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        const struct kiln_descriptor *pick = NULL;
        if (cli_select_platform(c, m, &pick, err) < 0)
                return -1;
        _cleanup_free_ char *child = kiln_xstrdup(pick->digest);
        _cleanup_free_ char *child_mt = kiln_xstrdup(pick->media_type);
        kiln_manifest_release(m);
        body->len = 0;
        if (source_manifest(s, child, body, err) < 0 ||
            kiln_manifest_parse(body->data, body->len, child_mt, m, err) < 0)
                return -1;
        if (m->is_index)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0, "nested index %s", child);
        snprintf(digest, KILN_DIGEST_MAX, "%s", child);
        return 0;
}

static int inspect_image(struct source *s, const struct cli_common *c, const char *name,
                         struct kiln_buf *body, const char *mt, char digest[KILN_DIGEST_MAX],
                         struct kiln_err **err)
{
        _cleanup_manifest_ struct kiln_manifest m = {0};
        _cleanup_config_summary_ struct kiln_config_summary cfg = {0};
        _cleanup_json_ json_t *index = NULL;
        _cleanup_buf_ struct kiln_buf cbuf = {0};
        if (kiln_manifest_parse(body->data, body->len, mt, &m, err) < 0)
                return -1;
        if (m.is_index) {
                index = index_json(&m, digest);
                if (resolve_index(s, c, &m, body, digest, err) < 0)
                        return -1;
        }
        if (source_config(s, &m.config, &cbuf, err) < 0 ||
            kiln_config_summary_parse(cbuf.data, cbuf.len, &cfg, err) < 0)
                return -1;
        if (c->json) {
                _cleanup_json_ json_t *o = image_json(name, digest, &m, &cfg, index);
                cli_print_json(o);
        } else {
                print_text(name, digest, &m, &cfg, index);
        }
        return 0;
}

static int inspect(struct source *s, const struct cli_common *c, bool raw, struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_free_ char *mt = NULL;
        _cleanup_free_ char *name = kiln_image_loc_string(&s->loc);
        char digest[KILN_DIGEST_MAX];
        if (source_top(s, &body, &mt, digest, err) < 0)
                return -1;
        if (raw) {
                fwrite(body.data, 1, body.len, stdout);
                return fflush(stdout) == 0 ? 0 : kiln_err_sys(err, "write stdout");
        }
        if (inspect_image(s, c, name, &body, mt, digest, err) < 0)
                return kiln_err_prefix(err, "inspect %s", name);
        return 0;
}

int cmd_inspect(int argc, char **argv, struct kiln_err **err)
{
        enum { OPT_RAW = OPT_COMMON_END };
        static const struct option longopts[] = {
            {"raw", no_argument, NULL, OPT_RAW},
            {"help", no_argument, NULL, 'h'},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        _cleanup_cli_common_ struct cli_common c = {0};
        _cleanup_source_ struct source s = {0};
        bool raw = false;
        int opt;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
                int r = cli_common_option(&c, opt, optarg, err);
                if (r < 0)
                        return -1;
                if (r > 0)
                        continue;
                if (opt == OPT_RAW) {
                        raw = true;
                } else if (opt == 'h') {
                        fputs(inspect_usage, stdout);
                        return 0;
                } else {
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "inspect: bad option (see kiln help inspect)");
                }
        }
        if (optind != argc - 1)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "inspect: expected one image (see kiln help inspect)");
        if (kiln_image_loc_parse(argv[optind], true, &s.loc, err) < 0)
                return -1;
        switch (s.loc.transport) {
        case KILN_TRANSPORT_DOCKER:
                if (kiln_store_open(c.cache_dir, &s.store, err) < 0 ||
                    cli_registry_open(&c, &s.loc.ref, &s.reg, err) < 0)
                        return -1;
                break;
        case KILN_TRANSPORT_OCI:
        case KILN_TRANSPORT_OCI_ARCHIVE:
                if (kiln_local_image_open(&s.loc, &s.local, err) < 0)
                        return -1;
                s.is_local = true;
                break;
        default:
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "inspect: %s: docker-archive images cannot be inspected yet",
                                    argv[optind]);
        }
        return inspect(&s, &c, raw, err);
}
