#!/usr/bin/env bash
# The rest of issue 5's table, side by side in one run:
# - a requirements change, rebuilt and pushed (kiln's step cache and
#   buildah's layer cache warm; the requirements file changes every run);
# - a push of the built image (~100 MB) to an empty registry, kiln versus
#   buildah push (a registry started afresh before every run, so nothing
#   can be mounted or skipped);
# - kiln as an ordinary user (user namespace, subuid range) versus kiln as
#   root, the imagespec spec with --no-cache;
# - three specs in one `kiln build a b c` run versus buildah building them
#   one after another, and versus kiln one after another.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
w=$BENCH_OUT/scale
reference_context "$w" bench-scale "requirements: requirements.txt" \
        "COPY requirements.txt /tmp/requirements.txt
RUN /root/.venv/bin/pip install --index-url $KILN_TB_PYINDEX --trusted-host $(pyindex_host) -r /tmp/requirements.txt"
printf 'kiln-hello==1.1.0\nkiln-dep==0.1.0\n' >"$w/ctx/requirements.txt"
kc=$w/kiln-cache
(cd "$w/ctx" && KILN_CACHE=$kc "$KILN" build -q --force --push spec.yaml >/dev/null 2>&1)
buildah_rebuild_script "$w" "$KILN_TB_PLAIN/bench/scale-buildah:latest"
change="bash -c 'printf \"kiln-hello==1.1.0\\nkiln-dep==0.1.0\\n# run %s\\n\" \$RANDOM\$RANDOM > $w/ctx/requirements.txt'"
compare "requirements change, rebuild + push" "buildah bud" \
        "$change" "bash -c 'cd $w/ctx && KILN_CACHE=$kc $KILN build -q --push spec.yaml >/dev/null 2>&1'" \
        "$change" "bash $w/buildah.sh"

# Push to an empty registry: a docker-registry of our own, restarted on a
# fresh root before every run.
port=$((${KILN_TB_PORT_BASE:-5100} + 90))
reg=127.0.0.1:$port
cat >"$w/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $w/registry}}
http: {addr: $reg}
YML
cat >"$w/fresh-registry.sh" <<SH
set -e
[ -f $w/registry.pid ] && kill \$(cat $w/registry.pid) 2>/dev/null && sleep 0.2 || true
rm -rf $w/registry $kc/locations
setsid docker-registry serve $w/registry.yml >/dev/null 2>&1 </dev/null &
echo \$! >$w/registry.pid
for i in \$(seq 100); do curl -sf http://$reg/v2/ >/dev/null && exit 0; sleep 0.05; done
exit 1
SH
sed -i "s#^registry: .*#registry: $reg/bench#" "$w/ctx/spec.yaml"
bash "$w/fresh-registry.sh"
(cd "$w/ctx" && KILN_CACHE=$kc "$KILN" build -q --force --push spec.yaml >/dev/null 2>&1)
buildah tag "$KILN_TB_PLAIN/bench/scale-buildah:latest" "$reg/bench/scale-buildah:latest"
compare "push (~100 MB) to an empty registry" "buildah push" \
        "bash $w/fresh-registry.sh" "bash -c 'cd $w/ctx && KILN_CACHE=$kc $KILN build -q --force --push spec.yaml >/dev/null 2>&1'" \
        "bash $w/fresh-registry.sh" "buildah push -q --tls-verify=false $reg/bench/scale-buildah:latest"
kill "$(cat "$w/registry.pid")" 2>/dev/null || true
sed -i "s#^registry: .*#registry: $KILN_TB_PLAIN/bench#" "$w/ctx/spec.yaml"

# Rootless versus root: the same build, every step run (--no-cache).
id kilnbench >/dev/null 2>&1 || useradd -m kilnbench
grep -q "^kilnbench:" /etc/subuid || { echo "kilnbench has no /etc/subuid range" >&2; exit 1; }
chmod 755 "$BENCH_OUT" "$w"
cp "$KILN" "$w/kiln"
chmod 755 "$w/kiln"
chmod -R a+rX "$w/ctx"
ku=$w/kiln-cache-user
mkdir -p "$ku"
chown kilnbench "$ku"
(cd "$w/ctx" && runuser -u kilnbench -- env KILN_CACHE="$ku" "$w/kiln" build -q --force -o "oci:$ku/out:x" spec.yaml >/dev/null 2>&1)
compare "rootless vs root (imagespec, --no-cache)" "kiln as root" \
        "true" "bash -c 'cd $w/ctx && runuser -u kilnbench -- env KILN_CACHE=$ku $w/kiln build -q --no-cache -o oci:$ku/out:x spec.yaml >/dev/null 2>&1'" \
        "true" "bash -c 'cd $w/ctx && KILN_CACHE=$kc $w/kiln build -q --no-cache -o oci:$w/root-out:x spec.yaml >/dev/null 2>&1'"

# Three specs in one run: two apt specs and a copy-only one, same base.
mkdir -p "$w/multi/tree"
echo "copied" >"$w/multi/tree/a.txt"
for s in jq curl; do
        printf 'name: multi-%s\nbase_image: %s\napt_packages: [%s]\n' "$s" "$base" "$s" >"$w/multi/$s.yaml"
        printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends %s\n' "$base" "$s" >"$w/multi/$s.Containerfile"
done
printf 'name: multi-copy\nbase_image: %s\ncopy: [tree]\n' "$base" >"$w/multi/copy.yaml"
printf 'FROM %s\nCOPY tree /root/tree\n' "$base" >"$w/multi/copy.Containerfile"
km=$w/kiln-cache-multi
(cd "$w/multi" && KILN_CACHE=$km "$KILN" build -q --no-cache -o "oci:$w/multi/out" jq.yaml curl.yaml copy.yaml >/dev/null 2>&1)
cat >"$w/multi/buildah.sh" <<SH
set -e
cd "$w/multi"
for s in jq curl copy; do
        buildah bud -q --layers --no-cache --network=host -t localhost/bench-multi-\$s -f \$s.Containerfile . >/dev/null 2>&1
done
SH
cat >"$w/multi/kiln-seq.sh" <<SH
set -e
cd "$w/multi"
for s in jq curl copy; do
        KILN_CACHE=$km $KILN build -q --no-cache -o oci:$w/multi/out-seq \$s.yaml >/dev/null 2>&1
done
SH
kiln_multi="bash -c 'cd $w/multi && KILN_CACHE=$km $KILN build -q --no-cache -o oci:$w/multi/out jq.yaml curl.yaml copy.yaml >/dev/null 2>&1'"
compare "3 specs in one run vs buildah one by one" "buildah bud x3" \
        "true" "$kiln_multi" "true" "bash $w/multi/buildah.sh"
compare "3 specs in one run vs kiln one by one" "kiln build x3" \
        "true" "$kiln_multi" "true" "bash $w/multi/kiln-seq.sh"
for s in jq curl copy; do buildah rmi -f "localhost/bench-multi-$s" >/dev/null 2>&1 || true; done
