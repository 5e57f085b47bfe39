/* The provenance document: an in-toto Statement v1 whose predicate is SLSA
 * provenance v1 (https://slsa.dev/spec/v1.0/provenance). Built with jansson
 * in a fixed key order, so the same inputs give the same bytes: with
 * SOURCE_DATE_EPOCH the caller passes it as both times, and the
 * invocation id is derived from what the document is about, so a
 * reproducible build gets reproducible attestations too. */
#include "json-internal.h"

#include <string.h>
#include <time.h>

#define INTOTO_STATEMENT  "https://in-toto.io/Statement/v1"
#define SLSA_PROVENANCE   "https://slsa.dev/provenance/v1"
#define KILN_BUILD_TYPE   "https://kiln.dev/imagespec-build/v1"
#define KILN_BUILDER_ID   "https://kiln.dev/kiln"
#define KILN_INVOCATION_P "urn:kiln:invocation:"

#define checked kiln_attest_json_checked
#define put     kiln_attest_json_put

static void put_str(json_t *o, const char *k, const char *s)
{
        if (s)
                put(o, k, json_string(s));
}

static void rfc3339(int64_t t, char out[32])
{
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* {"sha256": HEX} of "sha256:HEX"; NULL for another algorithm. */
static json_t *digest_set(const char *digest)
{
        if (!digest || strncmp(digest, "sha256:", 7))
                return NULL;
        json_t *d = checked(json_object());
        put(d, "sha256", json_string(digest + 7));
        return d;
}

static bool is_sha256(const char *digest)
{
        return digest && !strncmp(digest, "sha256:", 7) && strlen(digest) == 7 + 64;
}

static int check(const struct kiln_provenance *p, struct kiln_err **err)
{
        const struct kiln_attest_subject *s = &p->subject;
        if (!s->name || !is_sha256(s->manifest_digest))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "provenance: the subject needs a name and a sha256 manifest "
                                    "digest");
        if (p->base_digest && !is_sha256(p->base_digest))
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "provenance: base digest '%s' is not a sha256 digest",
                                    p->base_digest);
        if (p->finished < p->started)
                return kiln_err_set(err, KILN_ERR_USAGE, 0,
                                    "provenance: the build finished (%lld) before it started "
                                    "(%lld)",
                                    (long long)p->finished, (long long)p->started);
        return 0;
}

static json_t *build_definition(const struct kiln_provenance *p)
{
        json_t *bd = checked(json_object());
        put_str(bd, "buildType", KILN_BUILD_TYPE);
        json_t *ext = checked(json_object());
        put(ext, "spec", p->spec_fields ? json_deep_copy(p->spec_fields) : json_object());
        put_str(ext, "specDigest", p->spec_digest);
        put(bd, "externalParameters", ext);
        json_t *in = checked(json_object());
        put_str(in, "platform", p->subject.platform);
        put_str(in, "compression", p->compression);
        put(bd, "internalParameters", in);

        json_t *deps = checked(json_array());
        if (p->base_name || p->base_digest) {
                json_t *b = checked(json_object());
                put_str(b, "name", "base");
                put_str(b, "uri", p->base_name);
                json_t *d = digest_set(p->base_digest);
                if (d)
                        put(b, "digest", d);
                json_array_append_new(deps, b);
        }
        for (size_t i = 0; p->apt_sources && p->apt_sources[i]; i++) {
                json_t *a = checked(json_object());
                put_str(a, "name", "apt-source");
                put_str(a, "uri", p->apt_sources[i]);
                json_array_append_new(deps, a);
        }
        for (size_t i = 0; p->python_indexes && p->python_indexes[i]; i++) {
                json_t *a = checked(json_object());
                put_str(a, "name", "python-index");
                put_str(a, "uri", p->python_indexes[i]);
                json_array_append_new(deps, a);
        }
        put(bd, "resolvedDependencies", deps);
        return bd;
}

/* Derived, not random: the same build described twice is one invocation. */
static char *invocation_id(const struct kiln_provenance *p)
{
        _cleanup_buf_ struct kiln_buf b = {0};
        kiln_buf_printf(&b, "%s\n%s\n%s\n%lld\n", p->subject.manifest_digest,
                        p->spec_digest ? p->spec_digest : "",
                        p->subject.platform ? p->subject.platform : "", (long long)p->started);
        char d[KILN_DIGEST_MAX];
        kiln_sha256_digest(b.data, b.len, d);
        return kiln_xasprintf(KILN_INVOCATION_P "%.32s", d + 7);
}

static json_t *run_details(const struct kiln_provenance *p)
{
        json_t *rd = checked(json_object());
        json_t *builder = checked(json_object());
        put_str(builder, "id", KILN_BUILDER_ID);
        json_t *ver = checked(json_object());
        put_str(ver, "kiln", p->subject.tool_version);
        put(builder, "version", ver);
        put(rd, "builder", builder);

        json_t *md = checked(json_object());
        _cleanup_free_ char *id = invocation_id(p);
        put_str(md, "invocationId", id);
        char t[32];
        rfc3339(p->started, t);
        put_str(md, "startedOn", t);
        rfc3339(p->finished, t);
        put_str(md, "finishedOn", t);
        put(rd, "metadata", md);

        json_t *bp = checked(json_array());
        for (size_t i = 0; i < p->n_steps; i++) {
                const struct kiln_prov_step *st = &p->steps[i];
                json_t *s = checked(json_object());
                _cleanup_free_ char *name = kiln_xasprintf("step/%zu/%s", i, st->kind);
                put_str(s, "name", name);
                json_t *a = checked(json_object());
                put_str(a, "kind", st->kind);
                put_str(a, "key", st->key);
                put_str(a, "describe", st->describe);
                put(a, "cached", json_boolean(st->cached));
                put(s, "annotations", a);
                json_array_append_new(bp, s);
        }
        put(rd, "byproducts", bp);
        return rd;
}

int kiln_provenance_document(const struct kiln_provenance *p, struct kiln_buf *out,
                             struct kiln_err **err)
{
        if (check(p, err) < 0)
                return -1;
        _cleanup_json_ json_t *st = checked(json_object());
        put_str(st, "_type", INTOTO_STATEMENT);
        json_t *subjects = checked(json_array());
        json_t *sub = checked(json_object());
        put_str(sub, "name", p->subject.name);
        put(sub, "digest", digest_set(p->subject.manifest_digest));
        json_array_append_new(subjects, sub);
        put(st, "subject", subjects);
        put_str(st, "predicateType", SLSA_PROVENANCE);
        json_t *pred = checked(json_object());
        put(pred, "buildDefinition", build_definition(p));
        put(pred, "runDetails", run_details(p));
        put(st, "predicate", pred);
        _cleanup_free_ char *text = json_dumps(st, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        if (!text)
                return kiln_err_set(err, KILN_ERR_INTERNAL, 0,
                                    "provenance: a value is not valid UTF-8");
        kiln_buf_puts(out, text);
        kiln_buf_puts(out, "\n");
        return 0;
}
