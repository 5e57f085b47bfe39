/* The builder: the planner and executor of ImageSpec steps (the step
 * kinds of layers/, see kiln/step.h), which assembles the image
 * (kiln/image.h) and writes it to the registry and the outputs. */
#ifndef KILN_BUILDER_H
#define KILN_BUILDER_H

#include "kiln/attest.h"
#include "kiln/imagespec.h"
#include "kiln/oci.h"
#include "kiln/ref.h"
#include "kiln/registry.h"
#include "kiln/sandbox.h"

struct kiln_build_opts {
        struct kiln_registry_opts reg;        /* pulls and pushes */
        const char *cache_dir;                /* NULL: the default cache */
        bool push;                            /* push to the spec's registry */
        const struct kiln_image_loc *outputs; /* -o destinations */
        size_t n_outputs;
        bool dry_run;                      /* print the plan and the name, build nothing */
        enum kiln_compression compression; /* of new layers */
        /* With push: build even when the registry already has the image
         * name (also FLYTE_FORCE_PUSH_IMAGE_SPEC=true, as in flytekit). */
        bool force;
        /* Keep the image in the store only, with no push or output (a base
         * built for another spec). */
        bool local_only;
        /* Run every step even when the cache has its result (results are
         * still recorded). */
        bool no_cache;
        /* A registry repository that holds step results for every builder
         * that uses it (NULL: $KILN_CACHE_REPO, unset: none). Looked up on
         * a local miss; written after a step runs. Failing to write only
         * warns. */
        const char *cache_repo;
        /* Copy source_root and copy symlinks that lead outside their tree
         * (kiln_spec_check_symlinks refuses them otherwise). */
        bool follow_external_symlinks;
        /* The network of sandboxed steps (the zero value: private) and the
         * host loopback ports they reach besides those of the spec's index
         * URLs (--allow-host). */
        enum kiln_network network;
        const struct kiln_net_ports *allow_hosts;
        /* --security-opt seccomp=unconfined: steps run without the system
         * call filter (the capability bound and namespaces stay). */
        bool seccomp_unconfined;
        /* The one platform this build makes ("linux/arm64"), one of a
         * multi-platform build's; NULL: the spec's (all of them). */
        const char *platform;
        /* One platform of a multi-platform build: write nothing under a
         * name (a push goes by digest; with outputs, every blob is fetched
         * into the store and the caller writes the index). */
        bool untagged;
        /* Attestations attached to the image as OCI 1.1 referrers (pushed
         * before its tag, kept in -o oci: layouts): --sbom=false and
         * --provenance=false turn them off; --sbom-format picks SPDX (the
         * zero value) or CycloneDX. */
        bool no_sbom;
        bool no_provenance;
        enum kiln_sbom_format sbom_format;
};

struct kiln_build_result {
        struct kiln_image_name name;
        struct kiln_descriptor manifest; /* the built image (unset on dry run) */
        size_t n_new_layers;             /* layers built by this run */
        size_t n_cached_steps;           /* steps whose result came from the cache */
        size_t n_remote_hits;            /* ... of them from the registry cache */
        bool skipped;                    /* the image existed: nothing was built */
        /* Where the image was written (kiln_output_location of each -o),
         * NULL-terminated; NULL when it was written nowhere. */
        char **outputs;
        /* Several platforms: manifest is their index, and these are its
         * entries (each platform's image manifest, platform set) in the
         * spec's order. */
        struct kiln_descriptor *platform_manifests;
        size_t n_platform_manifests;
};
void kiln_build_result_release(struct kiln_build_result *r);
#define _cleanup_build_result_ _cleanup_(kiln_build_result_release)

/* Does the registry already have the spec's image name? An unreachable
 * registry is an error, never "assume it exists". */
int kiln_build_exists(const struct kiln_spec *spec, const struct kiln_image_name *name,
                      const struct kiln_registry_opts *reg, bool *exists,
                      char digest[KILN_DIGEST_MAX], struct kiln_err **err);

/* Builds spec: pulls the base, runs the steps (installers in the sandbox,
 * copies straight from the host), assembles the image and writes it to
 * every output and, with push, to the registry under the flytekit name.
 * A spec naming several platforms builds each (side by side, as
 * kiln_build_many builds specs) and writes an OCI index of them. Nothing
 * is tagged unless every step of every platform succeeded. Call before
 * any thread is started (it may enter a user namespace). */
int kiln_build(const struct kiln_spec *spec, const struct kiln_build_opts *o,
               struct kiln_build_result *res, struct kiln_err **err);

/* ---------- several specs in one run ---------- */

struct kiln_build_job {
        const struct kiln_spec *spec;
        const char *label;    /* names the spec in log lines and errors (its file) */
        const char *platform; /* the platform to build (NULL: the spec's) */
        struct kiln_build_result res;
        struct kiln_err *err; /* set when this spec did not build */
};

/* Builds several specs (Flyte's multi-image workflows) in one run:
 * - each distinct base is resolved once before any build starts, its
 *   layers downloaded once and unpacked once when a build first needs
 *   them (the others wait for that one and share it);
 * - specs with the same image name (and platform) are built once;
 * - a spec whose base_image is another spec of the run waits for it;
 * - up to `parallel` builds run at once (0: one per CPU), each in a
 *   process of its own whose log lines start with its label; the step
 *   cache's per-key locks make identical steps run once and be reused;
 * - outputs are written after every build, each image tagged with its
 *   own tag when the destination names none.
 * A spec that fails sets its job's err and the others go on. Returns -1
 * only when the run could not start. Call before any thread is started. */
int kiln_build_many(struct kiln_build_job *jobs, size_t n, const struct kiln_build_opts *o,
                    int parallel, struct kiln_err **err);

#endif
