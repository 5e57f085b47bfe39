#!/usr/bin/env bash
# issue 4's reference ImageSpec: apt_packages [curl, jq], three wheels from
# the test bed's index, a copied tree, env; built and pushed by kiln versus
# `buildah bud` of the Containerfile flytekit's default builder would write
# for it (cache mounts for apt and pip, the flytekit user, WORKDIR, USER).
# Base image already local for both. Cold: apt and pip caches empty (kiln's
# cache dirs, buildah's cache mounts), no layer cache (kiln --no-cache,
# buildah --no-cache). Warm: the same build again with the apt/pip caches
# kept (still no layer cache: every step runs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
w=$BENCH_OUT/imagespec
mkdir -p "$w/ctx/tree/sub"
echo "copied" >"$w/ctx/tree/a.txt"
printf '#!/bin/sh\necho run\n' >"$w/ctx/tree/sub/run.sh"
base="$KILN_TB_PLAIN/testbed/python:bookworm"
cat >"$w/ctx/spec.yaml" <<SPEC
name: bench-imagespec
registry: $KILN_TB_PLAIN/bench
base_image: $base
apt_packages: [curl, jq]
packages: [kiln-hello==1.1.0, kiln-dep==0.1.0, kiln-data==2.0.0]
pip_index: $KILN_TB_PYINDEX
env:
  GREETING: hello
copy:
  - tree
SPEC
id=$("$KILN" name --json "$w/ctx/spec.yaml" | jq -r .id)
host=${KILN_TB_PYINDEX#http://}
host=${host%%/*}
cat >"$w/ctx/Containerfile" <<CF
FROM $base
RUN --mount=type=cache,sharing=locked,target=/var/cache/apt,id=apt \\
    --mount=type=cache,sharing=locked,target=/var/lib/apt/lists,id=aptlists \\
    rm -f /etc/apt/apt.conf.d/docker-clean && \\
    apt-get update && apt-get install -y --no-install-recommends curl jq
RUN id -u flytekit || useradd --create-home --shell /bin/bash flytekit
RUN chown -R flytekit /root && chown -R flytekit /home
RUN python3 -m venv --system-site-packages /root/.venv
RUN --mount=type=cache,sharing=locked,target=/root/.cache/pip,id=pip \\
    /root/.venv/bin/pip install --index-url $KILN_TB_PYINDEX --trusted-host $host \\
    kiln-hello==1.1.0 kiln-dep==0.1.0 kiln-data==2.0.0
ENV PATH="/root/.venv/bin:\$PATH" PYTHONPATH=/root SSL_CERT_DIR=/etc/ssl/certs GREETING=hello
COPY --chown=flytekit tree /root/tree
WORKDIR /root
USER flytekit
ENV _F_IMG_ID=$id
CF
kc=$w/kiln-cache
export KILN_CACHE=$kc
# The base local for both: kiln's blobs and unpacked snapshot, buildah's storage.
(cd "$w/ctx" && "$KILN" build -q --force --push spec.yaml >/dev/null 2>&1)
buildah pull -q --tls-verify=false "docker://$base" >/dev/null
cat >"$w/buildah.sh" <<SH
set -e
cd "$w/ctx"
buildah bud -q --layers --no-cache --network=host --tls-verify=false -t $KILN_TB_PLAIN/bench/imagespec-buildah:latest -f Containerfile . >/dev/null 2>&1
buildah push -q --tls-verify=false $KILN_TB_PLAIN/bench/imagespec-buildah:latest >/dev/null
SH
kiln_cmd="bash -c 'cd $w/ctx && KILN_CACHE=$kc $KILN build -q --force --no-cache --push spec.yaml 2>/dev/null'"
# buildah keeps cache mounts in /var/tmp/buildah-cache-UID.
compare "imagespec: apt+pip+copy, cold caches" "buildah bud" \
        "rm -rf $kc/cache" "$kiln_cmd" \
        "rm -rf /var/tmp/buildah-cache-$(id -u)" "bash $w/buildah.sh"
compare "imagespec: apt+pip+copy, warm apt/pip caches" "buildah bud" \
        "true" "$kiln_cmd" \
        "true" "bash $w/buildah.sh"
