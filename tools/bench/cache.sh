#!/usr/bin/env bash
# Rebuilds, side by side with buildah (--layers, its layer cache warm):
# a no-op rebuild of an existing image, and a copy-only change rebuilt and
# pushed. Then kiln alone against a plain pull: a fresh disk building the
# spec from the registry cache (--cache-repo) versus `kiln pull` of the
# image it produces.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
w=$BENCH_OUT/cache
reference_pip_context "$w" bench-cache
kc=$w/kiln-cache
repo="$KILN_TB_PLAIN/bench-cache/run-$(date +%s)"
# Warm both: kiln's step cache (and the registry cache), buildah's layers.
(cd "$w/ctx" && KILN_CACHE=$kc "$KILN" build -q --force --push --cache-repo "$repo" spec.yaml >/dev/null 2>&1)
buildah_rebuild_script "$w" "$KILN_TB_PLAIN/bench/cache-buildah:latest"
kiln_push="bash -c 'cd $w/ctx && KILN_CACHE=$kc $KILN build -q --push spec.yaml >/dev/null 2>&1'"
compare "no-op rebuild + push (image exists)" "buildah bud" \
        "true" "$kiln_push" \
        "true" "bash $w/buildah.sh"
compare "copy-only change, rebuild + push" "buildah bud" \
        "bash -c 'head -c 16 /dev/urandom | od -An -tx1 > $w/ctx/tree/a.txt'" "$kiln_push" \
        "bash -c 'head -c 16 /dev/urandom | od -An -tx1 > $w/ctx/tree/a.txt'" "bash $w/buildah.sh"

# Fresh disk, every step from the registry cache, versus a plain pull of
# the image that build produces (both into an OCI layout, cold).
echo "fixed" >"$w/ctx/tree/a.txt"
(cd "$w/ctx" && KILN_CACHE=$kc "$KILN" build -q --force --push --cache-repo "$repo" spec.yaml >/dev/null 2>&1)
name=$(cd "$w/ctx" && "$KILN" name spec.yaml)
compare "fresh disk from the registry cache vs pull" "kiln pull" \
        "rm -rf $w/fresh $w/fresh-out" \
        "bash -c 'cd $w/ctx && KILN_CACHE=$w/fresh $KILN build -q --cache-repo $repo spec.yaml -o oci:$w/fresh-out:x >/dev/null 2>&1'" \
        "rm -rf $w/pulled $w/pulled-out" \
        "env KILN_CACHE=$w/pulled $KILN pull -q docker://$name -o oci:$w/pulled-out:x"
