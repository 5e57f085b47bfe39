#!/usr/bin/env bash
# kiln pull versus skopeo copy of the python base image into an OCI layout,
# from the local registry: cold (nothing local) and warm (blobs already local:
# kiln's cache, skopeo's destination layout).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
img="$KILN_TB_PLAIN/testbed/python:bookworm"
w=$BENCH_OUT/pull
mkdir -p "$w"

compare "pull python base, cold" "skopeo copy" \
        "rm -rf $w/kc $w/ko" "env KILN_CACHE=$w/kc $KILN pull -q docker://$img -o oci:$w/ko:x" \
        "rm -rf $w/so" "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$img oci:$w/so:x"

# Warm: kiln's cache holds every blob; skopeo's layout already has them.
env KILN_CACHE="$w/kc" "$KILN" pull -q "docker://$img" >/dev/null
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$img" "oci:$w/so:x"
compare "pull python base, blobs cached" "skopeo copy" \
        "rm -rf $w/ko" "env KILN_CACHE=$w/kc $KILN pull -q docker://$img -o oci:$w/ko:x" \
        "true" "skopeo --insecure-policy copy -q --src-tls-verify=false docker://$img oci:$w/so:x"
