/* OCI 1.1 artifact manifests that attach a document to an image: an image
 * manifest whose config is the empty descriptor, whose one layer is the
 * document, and whose subject is the image. artifactType says what the
 * document is, as the image-spec asks when the config is the empty one
 * (manifest.md, "Guidelines for Artifact Usage"). */
#include "json-internal.h"

#include <string.h>

#define checked kiln_attest_json_checked
#define put     kiln_attest_json_put

int kiln_attest_artifact(struct kiln_store *store, const struct kiln_descriptor *subject,
                         const char *artifact_type, const char *doc_media_type, const void *doc,
                         size_t len, const char *created, struct kiln_descriptor *out,
                         struct kiln_err **err)
{
        *out = (struct kiln_descriptor){0};
        if (!subject->media_type || !subject->digest || !kiln_mt_is_manifest(subject->media_type))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "attach %s: the subject must be an image manifest (%s is %s)",
                                    artifact_type, subject->digest ? subject->digest : "(none)",
                                    subject->media_type ? subject->media_type : "untyped");
        char empty[KILN_DIGEST_MAX], doc_digest[KILN_DIGEST_MAX];
        if (kiln_store_put(store, "{}", 2, empty, err) < 0 ||
            kiln_store_put(store, doc, len, doc_digest, err) < 0)
                return kiln_err_prefix(err, "attach %s", artifact_type);

        _cleanup_json_ json_t *m = checked(json_object());
        put(m, "schemaVersion", json_integer(2));
        put(m, "mediaType", json_string(KILN_MT_OCI_MANIFEST));
        put(m, "artifactType", json_string(artifact_type));
        json_t *cfg = checked(json_object());
        put(cfg, "mediaType", json_string(KILN_MT_OCI_EMPTY));
        put(cfg, "digest", json_string(KILN_EMPTY_DIGEST));
        put(cfg, "size", json_integer(2));
        put(cfg, "data", json_string("e30=")); /* base64 of "{}": no fetch needed */
        put(m, "config", cfg);
        json_t *layers = checked(json_array());
        struct kiln_descriptor layer = {
            .media_type = (char *)doc_media_type, .digest = doc_digest, .size = (int64_t)len};
        json_array_append_new(layers, kiln_descriptor_to_json(&layer));
        put(m, "layers", layers);
        struct kiln_descriptor subj = {
            .media_type = subject->media_type, .digest = subject->digest, .size = subject->size};
        put(m, "subject", kiln_descriptor_to_json(&subj));
        json_t *ann = checked(json_object());
        if (created)
                put(ann, "org.opencontainers.image.created", json_string(created));
        put(m, "annotations", ann);

        _cleanup_free_ char *text = json_dumps(m, JSON_COMPACT);
        if (!text)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "attach %s: the manifest is not valid UTF-8", artifact_type);
        char digest[KILN_DIGEST_MAX];
        if (kiln_store_put(store, text, strlen(text), digest, err) < 0)
                return kiln_err_prefix(err, "attach %s", artifact_type);
        out->media_type = kiln_xstrdup(KILN_MT_OCI_MANIFEST);
        out->digest = kiln_xstrdup(digest);
        out->size = (int64_t)strlen(text);
        out->artifact_type = kiln_xstrdup(artifact_type);
        out->annotations = json_deep_copy(ann);
        return 0;
}
