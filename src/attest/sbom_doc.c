/* What the SPDX and CycloneDX documents share: the image as a package
 * (its purl), package references and license expressions. Both documents
 * are made from sorted input and jansson objects dumped with sorted keys,
 * so the same image gives the same bytes. */
#include "attest-internal.h"

#include <ctype.h>
#include <jansson.h>
#include <string.h>

void kiln_sbom_image_release(struct kiln_sbom_image *im)
{
        free(im->repo);
        free(im->tag);
        free(im->arch);
        free(im->purl);
        free(im->created_buf);
        memset(im, 0, sizeof(*im));
}

/* The purl of an OCI image (purl-spec's oci type): the last path component
 * of the repository, lowercase, at the manifest digest; the repository and
 * tag as qualifiers, sorted by key. */
static char *image_purl(const struct kiln_sbom_image *im)
{
        const char *last = strrchr(im->repo, '/');
        _cleanup_free_ char *name = kiln_xstrdup(last ? last + 1 : im->repo);
        for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_puts(&b, "pkg:oci/");
        kiln_sbom_purl_encode(&b, name, false);
        kiln_buf_puts(&b, "@");
        kiln_sbom_purl_encode(&b, im->digest, false);
        char sep = '?';
        if (im->arch) {
                kiln_buf_printf(&b, "%carch=", sep);
                kiln_sbom_purl_encode(&b, im->arch, false);
                sep = '&';
        }
        kiln_buf_printf(&b, "%crepository_url=", sep);
        kiln_sbom_purl_encode(&b, im->repo, true);
        if (im->tag) {
                kiln_buf_puts(&b, "&tag=");
                kiln_sbom_purl_encode(&b, im->tag, false);
        }
        return kiln_buf_steal(&b);
}

int kiln_sbom_image_init(const struct kiln_attest_subject *subj, struct kiln_sbom_image *out,
                         struct kiln_err **err)
{
        memset(out, 0, sizeof(*out));
        if (!subj || !subj->name || !*subj->name || !subj->manifest_digest)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "sbom: no image name or digest");
        if (kiln_digest_validate(subj->manifest_digest, err) < 0)
                return kiln_err_prefix(err, "sbom of %s", subj->name);
        _cleanup_sbom_image_ struct kiln_sbom_image im = {
            .name = subj->name,
            .digest = subj->manifest_digest,
            .created = subj->created ? subj->created : "1970-01-01T00:00:00Z",
            .tool_version = subj->tool_version ? subj->tool_version : "unknown",
            .platform = subj->platform,
        };
        /* SPDX wants YYYY-MM-DDThh:mm:ssZ: fractions of a second go */
        const char *c = im.created;
        if (strlen(c) > 20 && c[19] == '.' && c[strlen(c) - 1] == 'Z' &&
            strspn(c + 20, "0123456789") == strlen(c) - 21)
                im.created = im.created_buf = kiln_xasprintf("%.19sZ", c);
        snprintf(im.hex, sizeof(im.hex), "%s", kiln_digest_hex(subj->manifest_digest));
        const char *at = strchr(subj->name, '@');
        im.repo =
            at ? kiln_xstrndup(subj->name, (size_t)(at - subj->name)) : kiln_xstrdup(subj->name);
        char *colon = strrchr(im.repo, ':');
        if (colon && !strchr(colon, '/')) {
                im.tag = kiln_xstrdup(colon + 1);
                *colon = '\0';
        }
        const char *slash = subj->platform ? strchr(subj->platform, '/') : NULL;
        if (slash && slash[1])
                im.arch = kiln_xstrndup(slash + 1, strcspn(slash + 1, "/"));
        im.purl = image_purl(&im);
        *out = im;
        memset(&im, 0, sizeof(im));
        return 0;
}

void kiln_sbom_pkg_ref(const struct kiln_sbom_pkg *p, char out[17])
{
        _cleanup_free_ char *in =
            kiln_xasprintf("%s%c%s", p->purl, 0, p->location ? p->location : "");
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(in, strlen(p->purl) + 1 + strlen(p->location ? p->location : ""), d);
        snprintf(out, 17, "%s", kiln_digest_hex(d));
}

/* ---------- licenses ---------- */

static bool is_op(const char *t)
{
        return !strcasecmp(t, "or") || !strcasecmp(t, "and") || !strcasecmp(t, "with");
}

/* "A or B", "(MIT AND Apache-2.0)", "GPL-2+ with X": every license a known
 * id, the operators between them; NULL otherwise. */
static char *expression(const char *license)
{
        _cleanup_buf_ struct kiln_buf b = {0}, spaced = {0};
        for (const char *c = license; *c; c++) {
                if (*c == '(' || *c == ')')
                        kiln_buf_printf(&spaced, " %c ", *c);
                else
                        kiln_buf_append(&spaced, c, 1);
        }
        if (!spaced.data)
                return NULL;
        int depth = 0;
        bool want_id = true, after_with = false;
        for (char *save = NULL, *t = strtok_r(spaced.data, " \t", &save); t;
             t = strtok_r(NULL, " \t", &save)) {
                if (!strcmp(t, "(") || !strcmp(t, ")")) {
                        depth += *t == '(' ? 1 : -1;
                        if (depth < 0 || (*t == '(') != want_id)
                                return NULL;
                        kiln_buf_puts(&b, t);
                        continue;
                }
                if (want_id == is_op(t))
                        return NULL;
                const char *id = want_id && !after_with ? kiln_sbom_spdx_id(t) : NULL;
                if (want_id && after_with) /* an exception id: what the text says */
                        id = t;
                if (want_id && !id)
                        return NULL;
                if (b.len && b.data[b.len - 1] != '(')
                        kiln_buf_puts(&b, " ");
                if (want_id) {
                        kiln_buf_puts(&b, id);
                } else {
                        for (char *c = t; *c; c++)
                                *c = (char)toupper((unsigned char)*c);
                        kiln_buf_puts(&b, t);
                }
                after_with = !want_id && !strcmp(t, "WITH");
                want_id = !want_id;
        }
        if (depth || want_id)
                return NULL;
        /* ")" closing after an id was appended with a space before it */
        _cleanup_buf_ struct kiln_buf out = {0};
        for (size_t i = 0; i < b.len; i++)
                if (!(b.data[i] == ' ' && i + 1 < b.len && b.data[i + 1] == ')'))
                        kiln_buf_append(&out, &b.data[i], 1);
        return kiln_buf_steal(&out);
}

char *kiln_sbom_license_expression(const char *license, char **ref)
{
        *ref = NULL;
        const char *id = kiln_sbom_spdx_id(license);
        if (id)
                return kiln_xstrdup(id);
        char *e = expression(license);
        if (e)
                return e;
        /* LicenseRef-[A-Za-z0-9.-]+; a hash keeps two texts that map to
         * the same characters apart */
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_puts(&b, "LicenseRef-");
        bool changed = false;
        for (const char *c = license; *c; c++) {
                bool ok = isalnum((unsigned char)*c) || *c == '.' || *c == '-';
                changed |= !ok;
                if (ok || b.data[b.len - 1] != '-')
                        kiln_buf_append(&b, ok ? c : "-", 1);
        }
        if (changed) {
                char d[KILN_DIGEST_MAX];
                kiln_sha256_digest(license, strlen(license), d);
                kiln_buf_printf(&b, "%s%.8s", b.data[b.len - 1] == '-' ? "" : "-",
                                kiln_digest_hex(d));
        }
        *ref = kiln_buf_steal(&b);
        return kiln_xstrdup(*ref);
}

int kiln_sbom_document(const struct kiln_sbom *s, enum kiln_sbom_format fmt,
                       const struct kiln_attest_subject *subj, const struct kiln_sbom_layer *layers,
                       size_t n_layers, struct kiln_buf *out, struct kiln_err **err)
{
        _cleanup_sbom_image_ struct kiln_sbom_image im = {0};
        if (kiln_sbom_image_init(subj, &im, err) < 0)
                return -1;
        for (size_t i = 0; i < s->n_pkgs; i++)
                if (s->pkgs[i].layer >= n_layers)
                        return kiln_err_set(
                            err, KILN_ERR_INTERNAL, 0, "sbom of %s: package %s in layer %zu of %zu",
                            subj->name, s->pkgs[i].name, s->pkgs[i].layer, n_layers);
        _cleanup_json_ json_t *doc = NULL;
        int rc = fmt == KILN_SBOM_CYCLONEDX ? kiln_sbom_cyclonedx(s, &im, layers, n_layers, &doc)
                                            : kiln_sbom_spdx(s, &im, layers, n_layers, &doc);
        if (rc < 0 || !doc)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "sbom of %s: cannot make the document", subj->name);
        _cleanup_free_ char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1));
        if (!text)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0, "sbom of %s: not JSON", subj->name);
        kiln_buf_puts(out, text);
        kiln_buf_puts(out, "\n");
        return 0;
}
