# platform: linux/amd64,linux/arm64 builds an image per platform (apt, pip,
# copy, commands: the arm64 steps run through qemu-user) and pushes an OCI
# index under flytekit's name, tagged only once both platforms built. Each
# platform's image runs and prints its own machine; a rebuild builds
# nothing; the docker-archive transport is refused; without the arm64
# handler the build fails, saying so, and nothing is tagged.
. "$(dirname "$0")/lib.sh"

[ -n "${KILN_TB_IMG_PYTHON_MULTI:-}" ] || {
        echo "no testbed/python-multi (the test bed needs root and qemu-user-static)" >&2
        exit 77
}
handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
# The handler is the kernel's, one for the machine: one test at a time
# adds or removes it (test_build_platform.sh, tools/testbed).
exec 7>"${TMPDIR:-/tmp}/kiln-e2e-binfmt.lock"
flock -w 1200 7 || fail "timed out waiting for ${TMPDIR:-/tmp}/kiln-e2e-binfmt.lock"
registered_here=0
if [ ! -e "$handler" ]; then
        [ -e /proc/sys/fs/binfmt_misc/register ] ||
                mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
        grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register || fail "could not register $conf"
        registered_here=1
fi
restore_binfmt() {
        if [ "$registered_here" = 1 ] && [ -e "$handler" ]; then
                echo -1 >"$handler" || true
        elif [ "$registered_here" = 0 ] && [ ! -e "$handler" ]; then
                grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register || true
        fi
}
trap 'restore_binfmt; rm -rf "$T"' EXIT

cd "$T"
mkdir src
# a tag (and so a repository path) new to the registry in every run
token=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
echo "data $token" >src/data.txt
cat >spec.yaml <<SPEC
name: multi
base_image: $KILN_TB_PLAIN/$KILN_TB_IMG_PYTHON_MULTI
registry: $KILN_TB_PLAIN/e2e-multi-$token
platform: linux/amd64,linux/arm64
apt_packages: [jq]
packages: [kiln-hello==1.1.0]
pip_index: $KILN_TB_PYINDEX
copy: [src/data.txt]
commands:
  - uname -m > /root/arch
SPEC

# Refused before anything is pulled: a docker archive holds one platform.
expect_exit 2 build spec.yaml -o "docker-archive:$T/x.tar"
assert_contains "$(cat "$T/err")" "docker-archive:$T/x.tar: a docker archive holds one image per platform" \
        "docker-archive refused"
[ ! -e "$T/x.tar" ] || fail "a docker archive was written"

# --dry-run: each platform's steps and cache state
expect_exit 0 build spec.yaml --dry-run
grep -q '^platform linux/amd64:$' "$T/out" || fail "dry run: no amd64 plan: $(cat "$T/out")"
grep -q '^platform linux/arm64:$' "$T/out" || fail "dry run: no arm64 plan"
assert_eq "$(grep -c '^[0-9]*\. apt: .*\[runs\]$' "$T/out")" "2" "dry run: apt runs on both platforms"

expect_exit 0 build spec.yaml --push --json -o "oci:$T/layout"
name=$(jq -r .image "$T/out")
assert_eq "$name" "$(grep -o '^image: .*' <("$KILN" build spec.yaml --dry-run) | cut -d' ' -f2)" "name"
index_digest=$(jq -r .digest "$T/out")
raw=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$name")
assert_eq "sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)" "$index_digest" "the pushed index is the one reported"
assert_eq "$(jq -r .mediaType <<<"$raw")" "application/vnd.oci.image.index.v1+json" "an OCI index under the name"
assert_eq "$(jq -c '[.manifests[].platform.architecture]' <<<"$raw")" '["amd64","arm64"]' "one manifest per platform"
assert_eq "$(jq -c '[.platforms[].digest]' "$T/out")" "$(jq -c '[.manifests[].digest]' <<<"$raw")" \
        "--json lists each platform's manifest"
printf '%s' "$raw" >"$T/index.json"
"$KILN_SRC/tests/schemas/validate.py" oci-image-spec/image-index-schema.json "$T/index.json" ||
        fail "the index does not pass the OCI schema"

for arch in amd64 arm64; do
        cfg=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --override-arch "$arch" --config "docker://$name")
        assert_eq "$(jq -r .architecture <<<"$cfg")" "$arch" "$arch: the config's architecture"
        digest=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' <<<"$raw")
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://${name%:*}@$digest" >"$T/m-$arch.json"
        printf '%s' "$cfg" >"$T/c-$arch.json"
        "$KILN_SRC/tests/schemas/validate.py" oci-image-spec/image-manifest-schema.json "$T/m-$arch.json" ||
                fail "$arch: the manifest does not pass the OCI schema"
        "$KILN_SRC/tests/schemas/validate.py" oci-image-spec/config-schema.json "$T/c-$arch.json" ||
                fail "$arch: the config does not pass the OCI schema"
        "${SKOPEO[@]}" copy -q "${NOTLS[@]}" --override-arch "$arch" "docker://$name" "oci:$T/img-$arch:x"
        umoci unpack --image "$T/img-$arch:x" "$T/b-$arch" >/dev/null
done
# The same files from the host in both: one layer, stored and pushed once.
copy_layer() { # the layer of the history entry that says COPY
        local i
        i=$(jq '[.history[] | select(.empty_layer != true)] | map(.created_by | startswith("COPY")) | index(true)' "$T/c-$1.json")
        [ "$i" != null ] || fail "$1: no COPY layer in the history"
        jq -r --argjson i "$i" '.layers[$i].digest' "$T/m-$1.json"
}
assert_eq "$(copy_layer amd64)" "$(copy_layer arm64)" "the host-side layer is shared"

assert_eq "$(run_image "$T/b-amd64" 'uname -m; cat /root/arch; jq -n 1; /root/.venv/bin/kiln-hello; cat /root/src/data.txt')" \
        "x86_64
x86_64
1
hello from kiln-hello 1.1.0
data $token" "the amd64 image runs"
assert_eq "$(run_image "$T/b-arm64" 'uname -m; cat /root/arch; jq -n 1; /root/.venv/bin/kiln-hello; cat /root/src/data.txt')" \
        "aarch64
aarch64
1
hello from kiln-hello 1.1.0
data $token" "the arm64 image runs (through qemu-user)"
od -An -tx1 -j18 -N2 "$T/b-arm64/rootfs/usr/bin/jq" | tr -d ' \n' | grep -qx b700 ||
        fail "the arm64 image's jq is not an aarch64 ELF"

# Each platform's SBOM: valid SPDX 2.3, jq and kiln-hello at the versions
# dpkg and pip report inside that image, attributed to the apt and pip
# layers; the provenance names that platform's base manifest.
for arch in amd64 arm64; do
        expect_exit 0 sbom --platform "linux/$arch" "docker://$name"
        cp "$T/out" "$T/sbom-$arch.json"
        "$KILN_SRC/tests/schemas/validate.py" spdx-2.3.schema.json "$T/sbom-$arch.json" ||
                fail "$arch: the SBOM is not valid SPDX 2.3"
        inside=$(run_image "$T/b-$arch" "dpkg-query -W -f='\${Version}' jq; echo; /root/.venv/bin/python -m pip show kiln-hello | sed -n 's/^Version: //p'")
        pkg() { jq -c --arg n "$1" '[.packages[] | select(.name == $n) | [.versionInfo, (.annotations[].comment | select(startswith("Step: ")))]]' "$T/sbom-$arch.json"; }
        assert_eq "$(pkg jq)" "[[\"$(sed -n 1p <<<"$inside")\",\"Step: apt\"]]" "$arch: jq in the SBOM"
        assert_eq "$(pkg kiln-hello)" "[[\"$(sed -n 2p <<<"$inside")\",\"Step: pip\"]]" "$arch: kiln-hello in the SBOM"
        purl=$(jq -r '.packages[] | select(.name == "jq") | .externalRefs[0].referenceLocator' "$T/sbom-$arch.json")
        assert_contains "$purl" "?arch=$arch" "$arch: the jq purl names the architecture"
        expect_exit 0 provenance --platform "linux/$arch" "docker://$name"
        base=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$KILN_TB_PLAIN/$KILN_TB_IMG_PYTHON_MULTI" |
                jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest')
        assert_eq "sha256:$(jq -r '.predicate.buildDefinition.resolvedDependencies[] | select(.name == "base") | .digest.sha256' "$T/out")" \
                "$base" "$arch: the provenance names the base's $arch manifest"
done
pass "each platform's SBOM and provenance say what is inside"

# the layout holds the same index
assert_eq "$("${SKOPEO[@]}" inspect --raw "oci:$T/layout:latest" | sha256sum | cut -d' ' -f1)" \
        "${index_digest#sha256:}" "the oci: layout holds the index"
expect_exit 0 inspect "oci:$T/layout" --platform linux/arm64
assert_contains "$(cat "$T/out")" "Index:       $index_digest" "kiln inspect shows the index"
assert_contains "$(cat "$T/out")" "Platform:    linux/arm64" "kiln inspect shows the arm64 entry"
pass "two platforms built, pushed as an index, and run"

# The name exists: nothing is built. Forced: every step is cached.
expect_exit 0 build spec.yaml --push --json
assert_eq "$(jq -r .skipped "$T/out")" "true" "an existing index is an existing image"
expect_exit 0 build spec.yaml --push --force --json
assert_eq "$(jq -r '.newLayers, .digest' "$T/out")" "0
$index_digest" "a forced rebuild builds nothing and makes the same index"
pass "a rebuild builds nothing"

# No arm64 handler: a step that must run under emulation fails the build,
# which names the platform, and the name is not tagged.
echo '  - echo again > /root/again' >>spec.yaml
if [ -e "$handler" ]; then echo -1 >"$handler"; fi
expect_exit 9 build spec.yaml --push
assert_contains "$(cat "$T/err")" "linux/arm64:" "the failing platform is named"
assert_contains "$(cat "$T/err")" "$handler is not registered" "the missing emulation is named"
assert_contains "$(cat "$T/err")" "nothing was tagged" "the error says nothing was tagged"
name2=$(grep -o '^image: .*' <("$KILN" build spec.yaml --dry-run) | cut -d' ' -f2)
if "${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$name2" >/dev/null 2>&1; then
        fail "$name2 was tagged although arm64 failed"
fi
pass "a platform without emulation fails the build and tags nothing"
