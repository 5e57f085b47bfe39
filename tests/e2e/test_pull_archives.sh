# oci-archive and docker-archive outputs, judged by skopeo.
. "$(dirname "$0")/lib.sh"

src="docker://$KILN_TB_PLAIN/testbed/busybox:latest"
"${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "$src" >"$T/m.json"
want=$(sha256_of "$T/m.json")

"$KILN" pull -q "$src" -o "oci-archive:$T/img.tar:v2"
"${SKOPEO[@]}" inspect --raw "oci-archive:$T/img.tar:v2" >"$T/got.json"
assert_eq "$(sha256_of "$T/got.json")" "$want" "oci-archive manifest digest"
"${SKOPEO[@]}" copy -q "oci-archive:$T/img.tar:v2" "oci:$T/from-archive:x"
umoci unpack --rootless --image "$T/from-archive:x" "$T/b1" >/dev/null
[ -e "$T/b1/rootfs/bin/busybox" ] || fail "busybox missing from the oci-archive's image"
pass "oci-archive"

"$KILN" pull -q "$src" -o "docker-archive:$T/img-docker.tar"
"${SKOPEO[@]}" inspect "docker-archive:$T/img-docker.tar" >"$T/d.json"
tar -xOf "$T/img-docker.tar" manifest.json >"$T/dm.json"
assert_eq "$(jq -r '.[0].RepoTags[0]' "$T/dm.json")" "$KILN_TB_PLAIN/testbed/busybox:latest" "docker-archive RepoTag"
# Layers are stored uncompressed and named by their diff_id.
"${SKOPEO[@]}" inspect --config "${NOTLS[@]}" "$src" >"$T/cfg.json"
diff_id=$(jq -r '.rootfs.diff_ids[0]' "$T/cfg.json")
layer=$(jq -r '.[0].Layers[0]' "$T/dm.json")
tar -xOf "$T/img-docker.tar" "$layer" | sha256sum | grep -q "${diff_id#sha256:}" ||
        fail "docker-archive layer does not hash to its diff_id"
"${SKOPEO[@]}" copy -q "docker-archive:$T/img-docker.tar" "oci:$T/from-docker:x"
rm -rf "$T/b2"
umoci unpack --rootless --image "$T/from-docker:x" "$T/b2" >/dev/null
[ -e "$T/b2/rootfs/bin/busybox" ] || fail "busybox missing from the docker-archive's image"
pass "docker-archive"

"$KILN" pull -q "$src" -o "docker-archive:$T/named.tar:example.com/me/bb:1"
tar -xOf "$T/named.tar" manifest.json | jq -e '.[0].RepoTags[0] == "example.com/me/bb:1"' >/dev/null ||
        fail "docker-archive with an explicit name"
pass "docker-archive with a name"

# Two images into one layout keep both tags.
"$KILN" pull -q "docker://$KILN_TB_PLAIN/testbed/busybox-multi:latest" -o "oci:$T/shared:multi"
"$KILN" pull -q "$src" -o "oci:$T/shared:single"
"${SKOPEO[@]}" inspect "oci:$T/shared:multi" >/dev/null || fail "first tag lost"
"${SKOPEO[@]}" inspect "oci:$T/shared:single" >/dev/null || fail "second tag missing"
pass "two tags in one layout"
