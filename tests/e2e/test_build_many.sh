# Several specs in one run (kiln build a.yaml b.yaml ...): the base pulled
# once, a step two specs share run once, a layer two images share uploaded
# once (the second mounts it), a spec whose base_image is another spec of
# the run built after it, two files naming the same image built once, the
# images right when run; then an unchanged rerun that builds nothing, one
# OCI layout taking every image under its own tag, a failing spec that
# leaves the others built and names itself (and fails its dependants), and
# the options that cannot mean anything for several specs refused.
. "$(dirname "$0")/lib.sh"

base=$KILN_TB_PLAIN/testbed/python:bookworm
reg=$KILN_TB_PLAIN/many-$$
mkdir -p "$T/p/tree"
echo "from the tree" >"$T/p/tree/x.txt"
cat >"$T/p/a.yaml" <<SPEC
name: many-a
registry: $reg
base_image: $base
apt_packages: [jq]
commands: ["echo a > /a"]
SPEC
cat >"$T/p/b.yaml" <<SPEC
name: many-b
registry: $reg
base_image: $base
apt_packages: [jq]
commands: ["echo b > /b"]
SPEC
cat >"$T/p/c.yaml" <<SPEC
name: many-c
registry: $reg
base_image: a.yaml
copy: [tree]
SPEC
cp "$T/p/a.yaml" "$T/p/d.yaml"

cd "$T/p"
expect_exit 0 build --push --json -j 2 c.yaml a.yaml b.yaml d.yaml
cp "$T/err" "$T/log.first"
cp "$T/out" "$T/json.first"
assert_eq "$(jq -r '[.[].spec] | join(" ")' "$T/out")" "c.yaml a.yaml b.yaml d.yaml" "results in argument order"
assert_eq "$(jq -r '[.[] | select(.error)] | length' "$T/out")" "0" "no spec failed"
dig() { jq -r --arg s "$1" '.[] | select(.spec == $s) | .digest' "$T/json.first"; }
name() { jq -r --arg s "$1" '.[] | select(.spec == $s) | .image' "$T/json.first"; }
assert_eq "$(dig d.yaml)" "$(dig a.yaml)" "two files with one image name: one image"
assert_eq "$(grep -c '^d.yaml: ' "$T/log.first" || true)" "0" "the duplicate spec is not built again"

# The base: resolved by the run, its layer downloaded by the first build
# that needs it while the other waits and finds it in the cache.
base_layer=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$base" | jq -r '.layers[0].digest')
assert_eq "$(grep -c "pull ${base_layer:0:19}: done" "$T/log.first")" "1" "the base's layer downloaded once"
assert_eq "$(grep -c "unpacking the base image (1 layers" "$T/log.first")" "1" "the base unpacked once for a and b (the snapshot lock)"
assert_eq "$(ls "$KILN_CACHE/snapshots" | grep -vc '\.lock$')" "2" "one snapshot of the base (and one of a, for c)"
pass "the base pulled once for the run"

# apt [jq] is the same step for a and b: it runs in one, the other reuses it.
assert_eq "$(grep -E '^(a|b).yaml: step 1: apt: ' "$T/log.first" | grep -vc '(cached)$')" "1" "the shared apt step ran once"
assert_eq "$(grep -oE '^(a|b).yaml: \[apt\]' "$T/log.first" | sort -u | wc -l)" "1" "apt's output comes from one build"
pass "a step two specs share runs once"

# That layer is in both images, uploaded once and mounted by the other.
apt_layer=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$(name a.yaml)" | jq -r '.layers[1].digest')
assert_eq "$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$(name b.yaml)" | jq -r '.layers[1].digest')" \
        "$apt_layer" "a and b share the apt layer"
assert_eq "$(grep -cE "^(a|b).yaml: push ${apt_layer:0:19}: pushed" "$T/log.first")" "1" "the shared layer uploaded once"
grep -qE "^(a|b).yaml: push ${apt_layer:0:19}: (mounted|exists)" "$T/log.first" ||
        fail "the second image did not mount the shared layer"
pass "a layer two images share is uploaded once"

# c is built on a: after it, from the registry, its layers a's and then its own.
grep -q "^c.yaml: .*many-a:.* exists in the registry: using it" "$T/log.first" ||
        fail "c's base spec was not taken from a's build"
a_layers=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$(name a.yaml)" | jq -c '[.layers[].digest]')
c_head=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$(name c.yaml)" | jq -c --argjson n "$(echo "$a_layers" | jq length)" '[.layers[:$n][].digest]')
assert_eq "$c_head" "$a_layers" "c's image starts with a's layers"
pass "a spec built on another spec of the run waits for it"

for s in a b c; do
        "${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$(name $s.yaml)" "oci:$T/img-$s:x"
        umoci unpack --image "$T/img-$s:x" "$T/run-$s" >/dev/null
done
assert_eq "$(run_image "$T/run-a" 'cat /a && jq -n 1 && id -un && pwd')" "a
1
flytekit
/root" "image a runs"
assert_eq "$(run_image "$T/run-b" 'cat /b && jq -n 2 && test ! -e /a && echo clean')" "b
2
clean" "image b runs, without a's file"
assert_eq "$(run_image "$T/run-c" 'cat /a /root/tree/x.txt')" "a
from the tree" "image c has a's content and its copy"
pass "every image runs"

# Unchanged: every image exists, nothing is pulled or built.
expect_exit 0 build --push c.yaml a.yaml b.yaml
assert_eq "$(grep -c 'exists in the registry: nothing to build' "$T/out")" "3" "an unchanged rerun builds nothing"
grep -q 'step [0-9]' "$T/err" && fail "an unchanged rerun ran a step"
pass "an unchanged multi-spec rerun does nothing"

# One OCI layout takes every image, each under its own tag.
expect_exit 0 build -o "oci:$T/layout" a.yaml b.yaml
for s in a b; do
        loc=$(sed -n "/many-$s:/,/^[^ ]/s/^  written: //p" "$T/out")
        [ -n "$loc" ] || fail "nowhere printed for $s"
        "${SKOPEO[@]}" inspect "$loc" >/dev/null || fail "the layout lacks $s at $loc"
done
assert_eq "$(jq '[.manifests[] | select(.artifactType | not)] | length' "$T/layout/index.json")" "2" \
        "the layout holds both images"
assert_eq "$(jq '[.manifests[] | select(.artifactType)] | length' "$T/layout/index.json")" "4" \
        "and each image's SBOM and provenance"
pass "several specs into one OCI layout"

# A spec that fails names itself; the others are still built; its
# dependants are not built.
cat >"$T/p/bad.yaml" <<SPEC
name: many-bad
base_image: $KILN_TB_PLAIN/testbed/no-such-image:1
copy: [tree]
SPEC
cat >"$T/p/on-bad.yaml" <<SPEC
name: many-on-bad
base_image: bad.yaml
copy: [tree]
SPEC
expect_exit 3 build --json -o "oci:$T/layout2" bad.yaml a.yaml on-bad.yaml
assert_contains "$(cat "$T/err")" "2 of 3 specs failed" "the error counts the failures"
assert_contains "$(cat "$T/err")" "bad.yaml: " "the error names the failing spec"
assert_contains "$(cat "$T/err")" "no-such-image" "the error names the missing base"
assert_contains "$(jq -r '.[] | select(.spec == "on-bad.yaml") | .error' "$T/out")" "its base image" "the dependant says why it was not built"
assert_eq "$(jq -r '.[] | select(.spec == "a.yaml") | .error' "$T/out")" "null" "a still builds"
assert_eq "$(jq '[.manifests[] | select(.artifactType | not)] | length' "$T/layout2/index.json")" "1" \
        "only the built image is in the layout"
pass "a failing spec leaves the others built"

expect_exit 2 build -o "oci-archive:$T/x.tar" a.yaml b.yaml
assert_contains "$(cat "$T/err")" "several specs need an OCI layout" "an archive takes one image"
expect_exit 2 build --digest-file "$T/d" --push a.yaml b.yaml
assert_contains "$(cat "$T/err")" "--digest-file takes one spec" "--digest-file takes one spec"
expect_exit 2 build -j 0 a.yaml b.yaml
expect_exit 2 build a.yaml b.yaml
assert_contains "$(cat "$T/err")" "nowhere to put the images" "no destination"
pass "options that mean nothing for several specs are refused"
