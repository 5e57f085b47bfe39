/* CycloneDX 1.5 JSON. metadata.component is the image (type container,
 * its purl and manifest digest); the OS is an operating-system component
 * (what trivy and grype read to pick the distribution's advisories);
 * every package is a library component whose bom-ref is its purl (with a
 * suffix when the same purl is in two places). Layer attribution is in
 * properties under kiln's own namespace, as the CycloneDX property
 * taxonomy asks of tools it does not list: kiln:layer:digest,
 * kiln:layer:diffID, kiln:layer:index, kiln:layer:step,
 * kiln:package:location. */
#include "attest-internal.h"

#include <jansson.h>
#include <string.h>

static void prop(json_t *props, const char *name, const char *value)
{
        if (value)
                json_array_append_new(props, json_pack("{s:s,s:s}", "name", name, "value", value));
}

/* A license id CycloneDX validates against the SPDX list, else an
 * expression of such ids, else the text as the package says it. */
static json_t *licenses(const char *license)
{
        const char *id = kiln_sbom_spdx_id(license);
        if (id)
                return json_pack("[{s:{s:s}}]", "license", "id", id);
        _cleanup_free_ char *ref = NULL;
        _cleanup_free_ char *e = kiln_sbom_license_expression(license, &ref);
        if (!ref)
                return json_pack("[{s:s}]", "expression", e);
        return json_pack("[{s:{s:s}}]", "license", "name", license);
}

static char *bom_ref(const struct kiln_sbom *s, size_t i)
{
        const struct kiln_sbom_pkg *p = &s->pkgs[i];
        bool shared = false;
        for (size_t j = 0; j < s->n_pkgs; j++)
                shared |= j != i && !strcmp(s->pkgs[j].purl, p->purl);
        if (!shared)
                return kiln_xstrdup(p->purl);
        char ref[17];
        kiln_sbom_pkg_ref(p, ref);
        return kiln_xasprintf("%s#%s", p->purl, ref);
}

static json_t *component(const struct kiln_sbom *s, size_t i, const struct kiln_sbom_layer *l)
{
        const struct kiln_sbom_pkg *p = &s->pkgs[i];
        _cleanup_free_ char *ref = bom_ref(s, i);
        _cleanup_free_ char *index = kiln_xasprintf("%zu", p->layer);
        _cleanup_free_ char *where = kiln_xasprintf("/%s", p->location);
        json_t *props = json_array();
        prop(props, "kiln:layer:digest", l->digest);
        prop(props, "kiln:layer:diffID", l->diff_id);
        prop(props, "kiln:layer:index", index);
        prop(props, "kiln:layer:step", l->step);
        prop(props, "kiln:package:location", where);
        json_t *c =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:o}", "bom-ref", ref, "type", "library", "name",
                      p->name, "version", p->version, "purl", p->purl, "properties", props);
        if (c && p->license)
                json_object_set_new(c, "licenses", licenses(p->license));
        return c;
}

/* urn:uuid, a version-5-shaped UUID from the manifest digest and name */
static char *serial(const struct kiln_sbom_image *im)
{
        _cleanup_free_ char *in = kiln_xasprintf("kiln cyclonedx %s %s", im->digest, im->name);
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(in, strlen(in), d);
        char h[33];
        memcpy(h, kiln_digest_hex(d), 32);
        h[32] = '\0';
        h[12] = '5';
        h[16] = "89ab"[(h[16] >= 'a' ? h[16] - 'a' + 10 : h[16] - '0') & 3];
        return kiln_xasprintf("urn:uuid:%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16,
                              h + 20);
}

int kiln_sbom_cyclonedx(const struct kiln_sbom *s, const struct kiln_sbom_image *im,
                        const struct kiln_sbom_layer *layers, size_t n_layers, json_t **out)
{
        (void)n_layers;
        _cleanup_json_ json_t *comps = json_array(), *refs = json_array();
        if (s->os_id) {
                _cleanup_free_ char *r =
                    kiln_xasprintf("os:%s@%s", s->os_id, s->os_version_id ? s->os_version_id : "");
                json_array_append_new(comps,
                                      json_pack("{s:s,s:s,s:s,s:s}", "bom-ref", r, "type",
                                                "operating-system", "name", s->os_id, "version",
                                                s->os_version_id ? s->os_version_id : ""));
                json_array_append_new(refs, json_string(r));
        }
        for (size_t i = 0; i < s->n_pkgs; i++) {
                json_t *c = component(s, i, &layers[s->pkgs[i].layer]);
                if (!c)
                        return -1;
                json_array_append(refs, json_object_get(c, "bom-ref"));
                json_array_append_new(comps, c);
        }
        json_t *iprops = json_array();
        prop(iprops, "kiln:image:name", im->name);
        prop(iprops, "kiln:image:platform", im->platform);
        _cleanup_free_ char *sn = serial(im);
        json_t *doc = json_pack(
            "{s:s,s:s,s:s,s:i,s:{s:s,s:{s:[{s:s,s:s,s:s}]},s:{s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:"
            "o}},"
            "s:O,s:[{s:s,s:O}]}",
            "bomFormat", "CycloneDX", "specVersion", "1.5", "serialNumber", sn, "version", 1,
            "metadata", "timestamp", im->created, "tools", "components", "type", "application",
            "name", "kiln", "version", im->tool_version, "component", "bom-ref", im->purl, "type",
            "container", "name", im->repo, "version", im->digest, "purl", im->purl, "hashes", "alg",
            "SHA-256", "content", im->hex, "properties", iprops, "components", comps,
            "dependencies", "ref", im->purl, "dependsOn", refs);
        *out = doc;
        return doc ? 0 : -1;
}
