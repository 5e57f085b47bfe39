/* kiln sbom and kiln provenance: the attestations attached to an image
 * as OCI 1.1 referrers, read back from a registry (referrers API, or the
 * sha256-<hex> tag schema) or from an OCI layout or archive. */
#include "cli.h"

#include "kiln/attest.h"

#include <string.h>

/* An attestation is a document of this size at most. */
#define ATTEST_DOC_MAX ((size_t)64 << 20)

static const char sbom_usage[] =
    "Usage: kiln sbom [OPTIONS] IMAGE\n"
    "\n"
    "Prints the SBOM attached to IMAGE (kiln build attaches one unless --sbom=false).\n"
    "IMAGE is [docker://]REF, oci:DIR[:TAG] or oci-archive:FILE[:TAG]; for an index,\n"
    "the platform's image (--platform, default this host).\n"
    "\n"
    "Options:\n"
    "  --format spdx|cyclonedx   which SBOM (default: SPDX when both are "
    "attached)\n" CLI_COMMON_HELP;

static const char provenance_usage[] =
    "Usage: kiln provenance [OPTIONS] IMAGE\n"
    "\n"
    "Prints the SLSA v1 provenance (an in-toto statement) attached to IMAGE (kiln\n"
    "build attaches one unless --provenance=false). IMAGE as for kiln sbom.\n"
    "\n"
    "Options:\n" CLI_COMMON_HELP;

/* Where the image is: a registry session or an opened layout. */
struct attached {
        struct kiln_image_loc loc;
        struct kiln_registry *reg; /* NULL for a layout */
        struct kiln_store *store;
        struct kiln_local_image local;
};

static void attached_release(struct attached *a)
{
        kiln_registry_free(a->reg);
        kiln_store_free(a->store);
        kiln_local_image_release(&a->local);
        kiln_image_loc_release(&a->loc);
        memset(a, 0, sizeof(*a));
}

/* A manifest (or index) of the image by digest; NULL digest: the top. */
static int read_doc(struct attached *a, const char *digest, size_t max, struct kiln_buf *out,
                    char **mt, char got[KILN_DIGEST_MAX], struct kiln_err **err)
{
        if (!a->reg) {
                const char *d = digest ? digest : a->local.top.digest;
                snprintf(got, KILN_DIGEST_MAX, "%s", d);
                if (mt && !digest)
                        *mt = kiln_xstrdup(a->local.top.media_type);
                return kiln_local_image_read_blob(&a->local, d, max, out, err);
        }
        return kiln_registry_get_manifest(a->reg, a->loc.ref.path,
                                          digest ? digest : kiln_ref_object(&a->loc.ref), out, mt,
                                          got, err);
}

/* A blob (the document), verified against its digest either way. */
static int read_blob(struct attached *a, const struct kiln_descriptor *d, struct kiln_buf *out,
                     struct kiln_err **err)
{
        if ((uint64_t)d->size > ATTEST_DOC_MAX)
                return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                    "attestation %s is %lld bytes, more than kiln reads (%zu)",
                                    d->digest, (long long)d->size, ATTEST_DOC_MAX);
        if (!a->reg)
                return kiln_local_image_read_blob(&a->local, d->digest, ATTEST_DOC_MAX, out, err);
        if (kiln_registry_fetch_blobs(a->reg, a->loc.ref.path, d, 1, a->store, NULL, err) < 0)
                return -1;
        return kiln_store_read(a->store, d->digest, ATTEST_DOC_MAX, out, err);
}

/* The image manifest's digest: the top, or the platform's entry of an index. */
static int subject_digest(struct attached *a, const struct cli_common *c,
                          char digest[KILN_DIGEST_MAX], struct kiln_err **err)
{
        _cleanup_buf_ struct kiln_buf body = {0};
        _cleanup_free_ char *mt = NULL;
        if (read_doc(a, NULL, KILN_MANIFEST_MAX, &body, &mt, digest, err) < 0)
                return -1;
        _cleanup_manifest_ struct kiln_manifest m = {0};
        if (kiln_manifest_parse(body.data, body.len, mt, &m, err) < 0)
                return -1;
        if (!m.is_index)
                return 0;
        const struct kiln_descriptor *pick = NULL;
        if (cli_select_platform(c, &m, &pick, err) < 0)
                return -1;
        snprintf(digest, KILN_DIGEST_MAX, "%s", pick->digest);
        return 0;
}

/* The referrers of digest of type mt. */
static int referrers(struct attached *a, const char *digest, const char *mt,
                     struct kiln_manifest *out, struct kiln_err **err)
{
        *out = (struct kiln_manifest){0};
        if (a->reg)
                return kiln_registry_referrers(a->reg, a->loc.ref.path, digest, mt, out, err);
        out->is_index = true;
        return kiln_local_image_referrers(&a->local, digest, mt, &out->manifests, &out->n_manifests,
                                          err);
}

static const char *created_of(const struct kiln_descriptor *d)
{
        const char *c =
            json_string_value(json_object_get(d->annotations, "org.opencontainers.image.created"));
        return c ? c : "";
}

/* Prints the newest attached document among types (tried in order). */
static int print_attached(struct attached *a, const struct cli_common *c, const char *what,
                          const char *const *types, struct kiln_err **err)
{
        char digest[KILN_DIGEST_MAX];
        if (subject_digest(a, c, digest, err) < 0)
                return -1;
        for (size_t t = 0; types[t]; t++) {
                _cleanup_manifest_ struct kiln_manifest refs = {0};
                if (referrers(a, digest, types[t], &refs, err) < 0)
                        return -1;
                const struct kiln_descriptor *pick = NULL;
                /* RFC 3339 in UTC compares as text; a tie goes to the later entry */
                for (size_t i = 0; i < refs.n_manifests; i++)
                        if (!pick || strcmp(created_of(&refs.manifests[i]), created_of(pick)) >= 0)
                                pick = &refs.manifests[i];
                if (!pick)
                        continue;
                _cleanup_buf_ struct kiln_buf body = {0};
                char got[KILN_DIGEST_MAX];
                _cleanup_manifest_ struct kiln_manifest m = {0};
                if (read_doc(a, pick->digest, KILN_MANIFEST_MAX, &body, NULL, got, err) < 0 ||
                    kiln_manifest_parse(body.data, body.len, pick->media_type, &m, err) < 0)
                        return kiln_err_prefix(err, "%s %s", what, pick->digest);
                const struct kiln_descriptor *doc = NULL;
                for (size_t i = 0; i < m.n_layers && !doc; i++)
                        if (!strcmp(m.layers[i].media_type, types[t]))
                                doc = &m.layers[i];
                if (!doc)
                        return kiln_err_set(err, KILN_ERR_FORMAT, 0,
                                            "%s %s has no layer of type %s", what, pick->digest,
                                            types[t]);
                _cleanup_buf_ struct kiln_buf text = {0};
                if (read_blob(a, doc, &text, err) < 0)
                        return kiln_err_prefix(err, "%s %s", what, pick->digest);
                kiln_debug("%s of %s: %s", what, digest, pick->digest);
                fwrite(text.data, 1, text.len, stdout);
                return fflush(stdout) == 0 ? 0 : kiln_err_sys(err, "write stdout");
        }
        _cleanup_free_ char *name = kiln_image_loc_string(&a->loc);
        return kiln_err_set(err, KILN_ERR_NOT_FOUND, 0,
                            "no %s is attached to %s (image manifest %s): build it with kiln "
                            "build and --%s left on",
                            what, name, digest, !strcmp(what, "SBOM") ? "sbom" : "provenance");
}

enum { OPT_FORMAT = OPT_COMMON_END };

static int attest_cmd(int argc, char **argv, bool sbom, struct kiln_err **err)
{
        static const struct option longopts[] = {
            {"format", required_argument, NULL, OPT_FORMAT},
            {"help", no_argument, NULL, 'h'},
            CLI_COMMON_LONGOPTS,
            {NULL, 0, NULL, 0},
        };
        const char *cmd = sbom ? "sbom" : "provenance";
        _cleanup_cli_common_ struct cli_common c = {0};
        _cleanup_(attached_release) struct attached a = {0};
        const char *spdx_first[] = {KILN_MT_SPDX_JSON, KILN_MT_CYCLONEDX_JSON, NULL};
        const char *spdx_only[] = {KILN_MT_SPDX_JSON, NULL};
        const char *cdx_only[] = {KILN_MT_CYCLONEDX_JSON, NULL};
        const char *prov[] = {KILN_MT_INTOTO_JSON, NULL};
        const char *const *types = sbom ? spdx_first : prov;
        int opt;
        optind = 1;
        while ((opt = cli_getopt(argc, argv, longopts, &c, err)) >= 0) {
                if (opt == OPT_FORMAT && sbom && !strcmp(optarg, "spdx")) {
                        types = spdx_only;
                } else if (opt == OPT_FORMAT && sbom && !strcmp(optarg, "cyclonedx")) {
                        types = cdx_only;
                } else if (opt == OPT_FORMAT && sbom) {
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "sbom: --format %s: want spdx or cyclonedx", optarg);
                } else if (opt == 'h') {
                        fputs(sbom ? sbom_usage : provenance_usage, stdout);
                        return 0;
                } else {
                        return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                            "%s: bad option (see kiln help %s)", cmd, cmd);
                }
        }
        if (opt == -2)
                return -1;
        if (optind != argc - 1)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "%s: expected one image (see kiln help %s)", cmd, cmd);
        if (kiln_image_loc_parse(argv[optind], true, &a.loc, err) < 0)
                return -1;
        if (a.loc.transport == KILN_TRANSPORT_DOCKER) {
                if (kiln_store_open(c.cache_dir, &a.store, err) < 0 ||
                    cli_registry_open(&c, &a.loc.ref, &a.reg, err) < 0)
                        return -1;
        } else if (a.loc.transport == KILN_TRANSPORT_OCI ||
                   a.loc.transport == KILN_TRANSPORT_OCI_ARCHIVE) {
                if (kiln_local_image_open(&a.loc, &a.local, err) < 0)
                        return -1;
        } else {
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "%s: %s: a docker-archive holds no attestations", cmd,
                                    argv[optind]);
        }
        if (print_attached(&a, &c, sbom ? "SBOM" : "provenance", types, err) < 0)
                return kiln_err_prefix(err, "%s %s", cmd, argv[optind]);
        return 0;
}

int cmd_sbom(int argc, char **argv, struct kiln_err **err)
{
        return attest_cmd(argc, argv, true, err);
}

int cmd_provenance(int argc, char **argv, struct kiln_err **err)
{
        return attest_cmd(argc, argv, false, err);
}
