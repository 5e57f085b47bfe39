/* SPDX 2.3 JSON. The image is the described package (primaryPackagePurpose
 * CONTAINER, its manifest digest as checksum and purl); it CONTAINS every
 * package. Where a package came from is said twice, for the two readers
 * that matter: sourceInfo in syft's words ("acquired package info from
 * ...", what a person reads), and annotations in trivy's "Key: value" form
 * (LayerDigest, LayerDiffID), which trivy reads back when it scans an SPDX
 * SBOM and reports the layer of each finding. licenseDeclared is what
 * the package's metadata says; licenseConcluded stays NOASSERTION, as
 * kiln concludes nothing the metadata does not declare. */
#include "attest-internal.h"

#include <jansson.h>
#include <string.h>

static const char *const source_of[] = {
    [KILN_PKG_DEB] = "DPKG DB",
    [KILN_PKG_PYPI] = "installed python package manifest file",
};

static json_t *annotation(const struct kiln_sbom_image *im, const char *key, const char *value)
{
        _cleanup_free_ char *c = kiln_xasprintf("%s: %s", key, value);
        _cleanup_free_ char *who = kiln_xasprintf("Tool: kiln-%s", im->tool_version);
        return json_pack("{s:s,s:s,s:s,s:s}", "annotationDate", im->created, "annotationType",
                         "OTHER", "annotator", who, "comment", c);
}

static json_t *purl_ref(const char *purl)
{
        return json_pack("[{s:s,s:s,s:s}]", "referenceCategory", "PACKAGE-MANAGER", "referenceType",
                         "purl", "referenceLocator", purl);
}

static json_t *relationship(const char *a, const char *type, const char *b)
{
        return json_pack("{s:s,s:s,s:s}", "spdxElementId", a, "relationshipType", type,
                         "relatedSpdxElement", b);
}

/* SPDXRef-[A-Za-z0-9.-]+ */
static char *spdx_id(const struct kiln_sbom_pkg *p)
{
        char ref[17];
        kiln_sbom_pkg_ref(p, ref);
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_printf(&b, "SPDXRef-Package-%s-", p->type == KILN_PKG_DEB ? "deb" : "python");
        for (const char *c = p->name; *c; c++)
                kiln_buf_append(&b,
                                (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                                        (*c >= '0' && *c <= '9') || *c == '.' || *c == '-'
                                    ? c
                                    : "-",
                                1);
        kiln_buf_printf(&b, "-%s", ref);
        return kiln_buf_steal(&b);
}

static json_t *package(const struct kiln_sbom_pkg *p, const struct kiln_sbom_image *im,
                       const struct kiln_sbom_layer *l, json_t *refs)
{
        _cleanup_free_ char *id = spdx_id(p), *ref = NULL;
        _cleanup_free_ char *lic =
            p->license ? kiln_sbom_license_expression(p->license, &ref) : NULL;
        if (ref && !json_object_get(refs, ref))
                json_object_set_new(refs, ref, json_string(p->license));
        _cleanup_free_ char *src = kiln_xasprintf(
            "acquired package info from %s: /%s, layer %zu (%s) %s", source_of[p->type],
            p->location, p->layer, l->step ? l->step : "?", l->digest);
        json_t *ann = json_array();
        json_array_append_new(ann, annotation(im, "LayerDigest", l->digest));
        if (l->diff_id)
                json_array_append_new(ann, annotation(im, "LayerDiffID", l->diff_id));
        if (l->step)
                json_array_append_new(ann, annotation(im, "Step", l->step));
        return json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:o,s:s,s:o}", "SPDXID", id, "name",
                         p->name, "versionInfo", p->version, "downloadLocation", "NOASSERTION",
                         "filesAnalyzed", 0, "licenseConcluded", "NOASSERTION", "licenseDeclared",
                         lic ? lic : "NOASSERTION", "copyrightText", "NOASSERTION", "externalRefs",
                         purl_ref(p->purl), "sourceInfo", src, "annotations", ann);
}

static json_t *image_package(const struct kiln_sbom_image *im)
{
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:o}", "SPDXID",
                              "SPDXRef-image", "name", im->repo, "versionInfo", im->digest,
                              "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
                              "primaryPackagePurpose", "CONTAINER", "licenseConcluded",
                              "NOASSERTION", "licenseDeclared", "NOASSERTION", "copyrightText",
                              "NOASSERTION", "checksums", "algorithm", "SHA256", "checksumValue",
                              im->hex, "externalRefs", purl_ref(im->purl));
        if (o && im->platform)
                json_object_set_new(o, "comment", json_sprintf("platform %s", im->platform));
        return o;
}

int kiln_sbom_spdx(const struct kiln_sbom *s, const struct kiln_sbom_image *im,
                   const struct kiln_sbom_layer *layers, size_t n_layers, json_t **out)
{
        (void)n_layers;
        _cleanup_json_ json_t *pkgs = json_array(), *rels = json_array(), *refs = json_object();
        json_array_append_new(pkgs, image_package(im));
        json_array_append_new(rels, relationship("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-image"));
        if (s->os_id) {
                const char *v = s->os_version_id ? s->os_version_id : "";
                json_array_append_new(
                    pkgs, json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:s}", "SPDXID",
                                    "SPDXRef-OperatingSystem", "name", s->os_id, "versionInfo", v,
                                    "downloadLocation", "NOASSERTION", "filesAnalyzed", 0,
                                    "primaryPackagePurpose", "OPERATING_SYSTEM", "licenseConcluded",
                                    "NOASSERTION", "licenseDeclared", "NOASSERTION",
                                    "copyrightText", "NOASSERTION"));
                json_array_append_new(
                    rels, relationship("SPDXRef-image", "CONTAINS", "SPDXRef-OperatingSystem"));
        }
        for (size_t i = 0; i < s->n_pkgs; i++) {
                const struct kiln_sbom_pkg *p = &s->pkgs[i];
                json_t *pk = package(p, im, &layers[p->layer], refs);
                if (!pk)
                        return -1;
                json_array_append_new(
                    rels, relationship("SPDXRef-image", "CONTAINS",
                                       json_string_value(json_object_get(pk, "SPDXID"))));
                json_array_append_new(pkgs, pk);
        }
        /* every LicenseRef- used is declared, as SPDX 2.3 requires */
        _cleanup_json_ json_t *extracted = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(refs, k, v)
        {
                json_array_append_new(extracted, json_pack("{s:s,s:s,s:O}", "licenseId", k, "name",
                                                           k, "extractedText", v));
        }
        char name_hash[KILN_DIGEST_MAX];
        kiln_sha256_digest(im->name, strlen(im->name), name_hash);
        _cleanup_free_ char *ns = kiln_xasprintf("https://kiln.invalid/spdx/sha256-%s-%.16s",
                                                 im->hex, kiln_digest_hex(name_hash));
        _cleanup_free_ char *tool = kiln_xasprintf("Tool: kiln-%s", im->tool_version);
        json_t *doc =
            json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:[s]},s:O,s:O}", "spdxVersion", "SPDX-2.3",
                      "dataLicense", "CC0-1.0", "SPDXID", "SPDXRef-DOCUMENT", "name", im->name,
                      "documentNamespace", ns, "creationInfo", "created", im->created, "creators",
                      tool, "packages", pkgs, "relationships", rels);
        if (doc && json_array_size(extracted))
                json_object_set(doc, "hasExtractedLicensingInfos", extracted);
        *out = doc;
        return doc ? 0 : -1;
}
