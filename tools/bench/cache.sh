#!/usr/bin/env bash
# Rebuilds, side by side with buildah (--layers, its layer cache warm):
# a no-op rebuild of an existing image, and a copy-only change rebuilt and
# pushed. Then kiln alone against a plain pull: a fresh disk building the
# spec from the registry cache (--cache-repo) versus `kiln pull` of the
# image it produces.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
w=$BENCH_OUT/cache
mkdir -p "$w/ctx/tree"
echo "copied" >"$w/ctx/tree/a.txt"
base="$KILN_TB_PLAIN/testbed/python:bookworm"
cat >"$w/ctx/spec.yaml" <<SPEC
name: bench-cache
registry: $KILN_TB_PLAIN/bench
base_image: $base
apt_packages: [curl, jq]
packages: [kiln-hello==1.1.0, kiln-dep==0.1.0, kiln-data==2.0.0]
pip_index: $KILN_TB_PYINDEX
copy:
  - tree
SPEC
host=${KILN_TB_PYINDEX#http://}
host=${host%%/*}
cat >"$w/ctx/Containerfile" <<CF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends curl jq
RUN id -u flytekit || useradd --create-home --shell /bin/bash flytekit
RUN chown -R flytekit /root && chown -R flytekit /home
RUN python3 -m venv --system-site-packages /root/.venv
RUN /root/.venv/bin/pip install --index-url $KILN_TB_PYINDEX --trusted-host $host kiln-hello==1.1.0 kiln-dep==0.1.0 kiln-data==2.0.0
ENV PATH="/root/.venv/bin:\$PATH" PYTHONPATH=/root
COPY --chown=flytekit tree /root/tree
WORKDIR /root
USER flytekit
CF
kc=$w/kiln-cache
repo="$KILN_TB_PLAIN/bench-cache/run-$(date +%s)"
# Warm both: kiln's step cache (and the registry cache), buildah's layers.
(cd "$w/ctx" && KILN_CACHE=$kc "$KILN" build -q --force --push --cache-repo "$repo" spec.yaml >/dev/null 2>&1)
(cd "$w/ctx" && buildah bud -q --layers --network=host --tls-verify=false -t "$KILN_TB_PLAIN/bench/cache-buildah:latest" . >/dev/null 2>&1)
cat >"$w/buildah.sh" <<SH
set -e
cd "$w/ctx"
buildah bud -q --layers --network=host --tls-verify=false -t $KILN_TB_PLAIN/bench/cache-buildah:latest . >/dev/null 2>&1
buildah push -q --tls-verify=false $KILN_TB_PLAIN/bench/cache-buildah:latest >/dev/null
SH
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
