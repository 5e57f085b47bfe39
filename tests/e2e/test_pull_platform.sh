# Platform selection from an index, and --all-platforms keeping the index.
. "$(dirname "$0")/lib.sh"

multi="docker://$KILN_TB_PLAIN/testbed/busybox-multi:latest"
"${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "$multi" >"$T/index.json"
idx_digest=$(sha256_of "$T/index.json")
digest_for() { jq -r --arg a "$1" '[.manifests[] | select(.platform.architecture==$a)][0].digest' "$T/index.json"; }

# Default: this host's platform.
"$KILN" pull -q --json "$multi" -o "oci:$T/host:v1" >"$T/p.json"
assert_eq "$(jq -r .digest "$T/p.json")" "$(digest_for amd64)" "default platform digest"
assert_eq "$(jq -r .platform "$T/p.json")" "linux/amd64" "default platform"
pass "host platform chosen"

# arm64, named with and without its variant and by its alias.
for p in linux/arm64 linux/arm64/v8 linux/aarch64; do
        "$KILN" pull -q --json --platform "$p" "$multi" -o "oci:$T/arm-${p//\//_}:v1" >"$T/p.json"
        assert_eq "$(jq -r .digest "$T/p.json")" "$(digest_for arm64)" "--platform $p digest"
        "${SKOPEO[@]}" inspect --config "oci:$T/arm-${p//\//_}:v1" >"$T/cfg.json"
        assert_eq "$(jq -r .architecture "$T/cfg.json")" "arm64" "--platform $p config architecture"
done
pass "arm64 selected"

# A platform the index lacks: exit 3, the offered platforms listed.
expect_exit 3 pull --platform linux/s390x "$multi" -o "oci:$T/s390x"
assert_contains "$(cat "$T/err")" "linux/arm64" "error lists the platforms"
[ ! -e "$T/s390x" ] || fail "output written for a missing platform"
pass "missing platform"

# A single-platform image asked for another platform.
expect_exit 3 pull --platform linux/arm64 "docker://$KILN_TB_PLAIN/testbed/busybox:latest" -o "oci:$T/wrong"
pass "single-platform image, other platform refused"

# Bad platform strings.
expect_exit 2 pull --platform linux "$multi" -o "oci:$T/bad"
expect_exit 2 pull --platform linux/arm64/v8/x "$multi" -o "oci:$T/bad"
pass "bad platform strings"

# --all-platforms: the index itself, byte for byte, with every image.
"$KILN" pull -q --json --all-platforms "$multi" -o "oci:$T/all:v1" >"$T/p.json"
assert_eq "$(jq -r .digest "$T/p.json")" "$idx_digest" "--all-platforms keeps the index digest"
"${SKOPEO[@]}" inspect --raw "oci:$T/all:v1" >"$T/got.json"
cmp -s "$T/got.json" "$T/index.json" || fail "layout index differs from the registry's"
for arch in amd64 arm64; do
        rm -rf "$T/b"
        "${SKOPEO[@]}" copy -q --override-arch "$arch" "oci:$T/all:v1" "oci:$T/one-$arch:x"
        umoci unpack --rootless --image "$T/one-$arch:x" "$T/b" >/dev/null
        [ -e "$T/b/rootfs/bin/busybox" ] || fail "$arch busybox missing"
done
"${SKOPEO[@]}" copy -q --all "${NOTLS[@]}" "oci:$T/all:v1" "docker://$KILN_TB_PLAIN/roundtrip/multi:v1"
"${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$KILN_TB_PLAIN/roundtrip/multi:v1" >"$T/back.json"
assert_eq "$(sha256_of "$T/back.json")" "$idx_digest" "index digest after skopeo copy --all back"
pass "--all-platforms"
