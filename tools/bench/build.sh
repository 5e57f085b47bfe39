#!/usr/bin/env bash
# kiln build versus buildah bud of the equivalent Containerfile, both pushing
# to the local registry, base image already local for both: the engine's
# reference spec (apt-get install jq, file changes, a copy, env,
# entrypoint). Then peak memory while building a spec whose commands write
# a 1 GiB file of mixed data.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
w=$BENCH_OUT/build
mkdir -p "$w/ctx/tree/sub"
echo "copied" >"$w/ctx/tree/a.txt"
printf '#!/bin/sh\necho run\n' >"$w/ctx/tree/sub/run.sh"
base="$KILN_TB_PLAIN/testbed/debian:bookworm"
run='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq >/dev/null && rm -rf /var/lib/apt/lists/* && rm /etc/issue.net && echo data > /srv/file && ln -s file /srv/soft'
cat >"$w/ctx/spec.yaml" <<SPEC
name: bench
registry: $KILN_TB_PLAIN/bench
base_image: $base
env:
  GREETING: hello
copy:
  - tree
commands:
  - $run
entrypoint: ["/usr/bin/jq"]
SPEC
cat >"$w/ctx/Containerfile" <<CF
FROM $base
ENV GREETING=hello
ENTRYPOINT ["/usr/bin/jq"]
COPY tree /root/tree
RUN $run
CF
export KILN_CACHE=$w/kiln-cache
# Warm both: the base pulled, kiln's snapshot unpacked, buildah's base in storage.
(cd "$w/ctx" && "$KILN" build -q --push spec.yaml >/dev/null)
buildah pull -q --tls-verify=false "docker://$base" >/dev/null
cat >"$w/buildah.sh" <<SH
set -e
cd "$w/ctx"
buildah bud -q --layers --no-cache --tls-verify=false -t $KILN_TB_PLAIN/bench/buildah:latest -f Containerfile . >/dev/null 2>&1
buildah push -q --tls-verify=false $KILN_TB_PLAIN/bench/buildah:latest >/dev/null
SH
compare "build + push, engine spec (apt, copy, cmds)" "buildah bud" \
        "true" "bash -c 'cd $w/ctx && KILN_CACHE=$KILN_CACHE $KILN build -q --force --no-cache --push spec.yaml 2>/dev/null'" \
        "true" "bash $w/buildah.sh"

# Peak RSS: commands writing 1 GiB (half random, half zeros) into one layer.
big='head -c 536870912 /dev/urandom > /big && head -c 536870912 /dev/zero >> /big'
mkdir -p "$w/big"
cat >"$w/big/spec.yaml" <<SPEC
name: big
base_image: $base
commands:
  - $big
SPEC
printf 'FROM %s\nRUN %s\n' "$base" "$big" >"$w/big/Containerfile"
rm -rf "$w/big/out"
/usr/bin/time -f '%M %e' -o "$w/big/kiln.time" \
        env KILN_CACHE="$KILN_CACHE" "$KILN" build -q --no-cache "$w/big/spec.yaml" -o "oci:$w/big/out:x" >/dev/null
/usr/bin/time -f '%M %e' -o "$w/big/buildah.time" \
        buildah bud -q --layers --no-cache --tls-verify=false -t localhost/bench-big -f "$w/big/Containerfile" "$w/big" >/dev/null
read -r krss ksec <"$w/big/kiln.time"
read -r brss bsec <"$w/big/buildah.time"
printf '%-44s %12s %12s %8.2f   (buildah bud, peak RSS MiB)\n' "1 GiB layer: peak RSS (MiB)" \
        "$((krss / 1024))" "$((brss / 1024))" "$(awk -v a="$krss" -v b="$brss" 'BEGIN{print a/b}')"
printf '%-44s %12.2f %12.2f %8.2f   (buildah bud, one run, s)\n' "1 GiB layer: build time (s)" \
        "$ksec" "$bsec" "$(awk -v a="$ksec" -v b="$bsec" 'BEGIN{print a/b}')"
buildah rmi -f localhost/bench-big >/dev/null 2>&1 || true

# Layer-commit throughput: kiln's commit (tar, sha256 of the tar, gzip on
# every core, sha256 of the blob) versus single-threaded zlib at the same
# level (level 6, zlib's own deflate on the tar alone: no tar making, no
# hashing, a generous peer), on 512 MiB half zeros half random, and on the
# real files of the python base image (unpacked by umoci). MB/s of input,
# higher is better; medians.
lb=$(dirname "$KILN")/bench_layer_commit
if [ -x "$lb" ]; then
        median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
        rate() { KILN_LAYER_BENCH_MIB=512 "$@" "$lb" | sed -n 's/^from_upper.*= \([0-9.]*\) MB\/s.*/\1/p'; }
        zlib_rate() { # file; MB/s of zlib level 6 on one thread
                python3 -c 'import sys, time, zlib
c = zlib.compressobj(6, zlib.DEFLATED, 31)
n = 0
t = time.monotonic()
with open(sys.argv[1], "rb") as f:
    while b := f.read(1 << 20):
        n += len(b)
        c.compress(b)
c.flush()
print("%.1f" % (n / 1e6 / (time.monotonic() - t)))' "$1"
        }
        { head -c 268435456 /dev/zero; head -c 268435456 /dev/urandom; } >"$w/mixed"
        skopeo copy -q --src-tls-verify=false "docker://$KILN_TB_PLAIN/testbed/python:bookworm" "oci:$w/py:x"
        umoci unpack --rootless --image "$w/py:x" "$w/py-b" >/dev/null 2>&1
        tar -cf "$w/py.tar" -C "$w/py-b/rootfs" .
        for data in mixed real; do
                k= k1= z=
                for _ in $(seq "$BENCH_RUNS"); do
                        if [ $data = mixed ]; then
                                k+="$(rate env) "
                                k1+="$(rate env KILN_LAYER_BENCH_THREADS=1) "
                                z+="$(zlib_rate "$w/mixed") "
                        else
                                k+="$(rate env KILN_LAYER_BENCH_UPPER="$w/py-b/rootfs") "
                                k1+="$(rate env KILN_LAYER_BENCH_UPPER="$w/py-b/rootfs" KILN_LAYER_BENCH_THREADS=1) "
                                z+="$(zlib_rate "$w/py.tar") "
                        fi
                done
                k=$(echo $k | tr ' ' '\n' | median)
                k1=$(echo $k1 | tr ' ' '\n' | median)
                z=$(echo $z | tr ' ' '\n' | median)
                what="512 MiB mixed"
                [ $data = real ] && what="python base files"
                printf '%-44s %12s %12s %8.2f   (zlib -6, 1 thread, MB/s, higher is better)\n' \
                        "layer commit, $what (MB/s)" "$k" "$z" "$(awk -v a="$k" -v b="$z" 'BEGIN{print a/b}')"
                printf '%-44s %12s %12s %8.2f   (kiln on 1 thread, MB/s)\n' "layer commit, $what, all cores" \
                        "$k" "$k1" "$(awk -v a="$k" -v b="$k1" 'BEGIN{print a/b}')"
        done
        rm -rf "$w/mixed" "$w/py" "$w/py-b" "$w/py.tar"
fi
