#!/usr/bin/env bash
# Two platforms (linux/amd64 and linux/arm64, the arm64 steps through
# qemu-user) from an empty cache: the reference spec with pip packages on
# testbed/python-multi built as one two-platform kiln build, against the
# same two images built one after the other by kiln (--platform each), and
# against buildah's two-platform build of the equivalent Containerfile
# (--platform a,b --manifest, its storage emptied too).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ -n "${KILN_TB_IMG_PYTHON_MULTI:-}" ] || { echo "platforms: no testbed/python-multi (root and qemu-user-static)" >&2; exit 0; }
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
        grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
w=$BENCH_OUT/platforms
reference_pip_context "$w" bench-platforms
sed -i "s|testbed/python:bookworm|$KILN_TB_IMG_PYTHON_MULTI|" "$w/ctx/spec.yaml" "$w/ctx/Containerfile"
echo "platform: linux/amd64,linux/arm64" >>"$w/ctx/spec.yaml"
runs=${BENCH_PLATFORM_RUNS:-3}
kc=$w/kiln-cache
both="bash -c 'cd $w/ctx && KILN_CACHE=$kc $KILN build -q --force --push spec.yaml >/dev/null 2>&1'"
one_by_one="bash -c 'cd $w/ctx && for p in linux/amd64 linux/arm64; do KILN_CACHE=$kc $KILN build -q --force --push --platform \$p spec.yaml >/dev/null 2>&1 || exit 1; done'"
BENCH_RUNS=$runs compare "two platforms cold: one build vs one by one" "kiln one by one" \
        "rm -rf $kc" "$both" "rm -rf $kc" "$one_by_one"
buildah_both="bash -c 'cd $w/ctx && buildah build -q --network=host --tls-verify=false --platform linux/amd64,linux/arm64 --manifest bench-platforms . >/dev/null 2>&1 && buildah manifest push -q --all --tls-verify=false bench-platforms docker://$KILN_TB_PLAIN/bench/platforms-buildah:latest >/dev/null 2>&1'"
BENCH_RUNS=$runs compare "two platforms cold, build + push" "buildah build" \
        "rm -rf $kc" "$both" \
        "bash -c 'buildah manifest rm bench-platforms >/dev/null 2>&1; buildah rmi -a -f >/dev/null 2>&1; true'" "$buildah_both"
