# kiln inspect agrees with skopeo inspect, for registries and layouts.
. "$(dirname "$0")/lib.sh"

ref="$KILN_TB_PLAIN/testbed/python:bookworm"
"${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$ref" >"$T/sk-raw"
"$KILN" inspect --raw "docker://$ref" >"$T/k-raw"
cmp -s "$T/sk-raw" "$T/k-raw" || fail "--raw differs from skopeo's raw manifest"
pass "--raw is the exact bytes"

"${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$ref" >"$T/sk.json"
"${SKOPEO[@]}" inspect "${NOTLS[@]}" --config "docker://$ref" >"$T/skc.json"
"$KILN" inspect --json "$ref" >"$T/k.json"
assert_eq "$(jq -r .digest "$T/k.json")" "$(jq -r .Digest "$T/sk.json")" "digest"
assert_eq "$(jq -c '[.layers[].digest]' "$T/k.json")" "$(jq -c .Layers "$T/sk.json")" "layers"
assert_eq "$(jq -c .config.env "$T/k.json")" "$(jq -c .config.Env "$T/skc.json")" "env"
assert_eq "$(jq -c .config.cmd "$T/k.json")" "$(jq -c .config.Cmd "$T/skc.json")" "cmd"
assert_eq "$(jq -r .platform "$T/k.json")" "linux/amd64" "platform"
assert_eq "$(jq -c .diffIds "$T/k.json")" "$(jq -c .rootfs.diff_ids "$T/skc.json")" "diff ids"
pass "--json matches skopeo"

"$KILN" inspect "$ref" >"$T/k.txt"
for want in "Digest:      $(jq -r .Digest "$T/sk.json")" "Platform:    linux/amd64" "Cmd:" "Env:"; do
        grep -qF "$want" "$T/k.txt" || fail "text output lacks '$want'"
done
pass "text output"

# An index: the platforms are listed and the host's image is shown.
"$KILN" inspect --json "docker://$KILN_TB_PLAIN/testbed/busybox-multi:latest" >"$T/multi.json"
assert_eq "$(jq -r '.index.manifests | length' "$T/multi.json")" "2" "index entries"
assert_eq "$(jq -r .platform "$T/multi.json")" "linux/amd64" "index platform"
"$KILN" inspect --json --platform linux/arm64 "docker://$KILN_TB_PLAIN/testbed/busybox-multi:latest" >"$T/arm.json"
assert_eq "$(jq -r .platform "$T/arm.json")" "linux/arm64/v8" "arm64 platform from the config"
pass "index"

# A layout, and an oci-archive.
"$KILN" pull -q "docker://$ref" -o "oci:$T/lay:py"
"$KILN" inspect --json "oci:$T/lay:py" >"$T/l.json"
assert_eq "$(jq -r .digest "$T/l.json")" "$(jq -r .Digest "$T/sk.json")" "layout digest"
"$KILN" inspect --raw "oci:$T/lay:py" | cmp -s - "$T/sk-raw" || fail "layout --raw differs"
"$KILN" pull -q "docker://$KILN_TB_PLAIN/testbed/busybox:latest" -o "oci-archive:$T/a.tar:bb"
"$KILN" inspect --json "oci-archive:$T/a.tar:bb" | jq -e '.layers | length == 1' >/dev/null ||
        fail "inspect oci-archive"
expect_exit 3 inspect "oci:$T/lay:nope"
assert_contains "$(cat "$T/err")" "py" "unknown tag lists the tags present"
pass "layouts"
