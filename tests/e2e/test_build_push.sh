# Pushing a build through authenticated registries: bearer tokens scoped for
# push (and for pull from the base's repository, to mount its blobs), basic
# auth, and a layer big enough to go up in chunks.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/s" "$DOCKER_CONFIG"
cd "$T/s"
write_auth_file "$DOCKER_CONFIG/config.json" "$KILN_TB_TOKEN" "$KILN_TB_TOKEN_USER" "$KILN_TB_TOKEN_PASS"
cat >spec.yaml <<SPEC
name: pushed-$(date +%s%N)
registry: $KILN_TB_TOKEN/e2e
base_image: $KILN_TB_TOKEN/testbed/busybox:latest
copy:
  - big.bin
SPEC
# Incompressible, so the layer is big enough to be pushed in chunks.
head -c 80000000 /dev/urandom >big.bin
export SOURCE_DATE_EPOCH=1700000000
"$KILN" build --json --push spec.yaml >"$T/r.json" 2>"$T/log" || { cat "$T/log"; fail "build and push via token auth"; }
name=$(jq -r .image "$T/r.json")
grep -q "mounted" "$T/log" || fail "the base layer was not mounted from the base repository"
"${SKOPEO[@]}" inspect --creds "$KILN_TB_TOKEN_USER:$KILN_TB_TOKEN_PASS" --tls-verify=false --raw "docker://$name" >"$T/m.json"
assert_eq "$(sha256_of "$T/m.json")" "$(jq -r .digest "$T/r.json")" "pushed manifest digest"
# the copy's layer: the largest (the profile step's small one comes last)
size=$(jq '[.layers[].size] | max' "$T/m.json")
[ "$size" -gt 33554432 ] || fail "the test layer ($size bytes) is too small to be chunked"
"${SKOPEO[@]}" copy -q --src-creds "$KILN_TB_TOKEN_USER:$KILN_TB_TOKEN_PASS" --src-tls-verify=false \
        "docker://$name" "oci:$T/l:x" || fail "skopeo cannot copy the pushed image"
umoci unpack --rootless --image "$T/l:x" "$T/b" >/dev/null
assert_eq "$(stat -c %s "$T/b/rootfs/root/big.bin")" "80000000" "big file size after the chunked push"
pass "token auth push with mount and chunked upload"

# podman (containers/image and containers/storage, which check every
# layer against its diff_id as they store it) pulls the pushed image; its
# rootfs has the file and runs the base's busybox.
pm=(podman --root "$T/pm/root" --runroot "$T/pm/run" --storage-driver vfs)
"${pm[@]}" pull -q --creds "$KILN_TB_TOKEN_USER:$KILN_TB_TOKEN_PASS" --tls-verify=false "$name" >/dev/null ||
        fail "podman cannot pull the pushed image"
mnt=$("${pm[@]}" image mount "$name") || fail "podman cannot mount the image"
assert_eq "$(sha256_of "$mnt/root/big.bin")" "$(sha256_of big.bin)" "the file podman unpacked"
assert_eq "$(chroot "$mnt" /bin/busybox echo ran)" "ran" "the image's busybox runs"
"${pm[@]}" image unmount "$name" >/dev/null
pass "podman pulls and unpacks the pushed image"

# A second build of the same spec gives the same image; pushing it uploads
# nothing.
"$KILN" build --force --push spec.yaml >/dev/null 2>"$T/log2" || fail "second push"
grep "^push sha256" "$T/log2" >"$T/pushlines" || true
[ -s "$T/pushlines" ] || fail "second push reported no blobs"
grep -v ": exists" "$T/pushlines" && fail "second push uploaded blobs again"
pass "second push"

# Basic auth push with credentials from an auth file; wrong password fails
# before anything is tagged.
sed -i "s|$KILN_TB_TOKEN|$KILN_TB_BASIC|g" spec.yaml
head -c 1000 /dev/urandom >big.bin
write_auth_file "$T/auth.json" "$KILN_TB_BASIC" "$KILN_TB_BASIC_USER" "wrong"
REGISTRY_AUTH_FILE="$T/auth.json" expect_exit 4 build --push spec.yaml
write_auth_file "$T/auth.json" "$KILN_TB_BASIC" "$KILN_TB_BASIC_USER" "$KILN_TB_BASIC_PASS"
REGISTRY_AUTH_FILE="$T/auth.json" "$KILN" build -q --json --push spec.yaml >"$T/r2.json" ||
        fail "push with basic auth"
"${SKOPEO[@]}" inspect --creds "$KILN_TB_BASIC_USER:$KILN_TB_BASIC_PASS" "${NOTLS[@]}" \
        "docker://$(jq -r .image "$T/r2.json")" >/dev/null || fail "basic-auth push not in the registry"
pass "basic auth push"
