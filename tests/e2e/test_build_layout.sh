# The image layout flytekit's default builder gives every spec: a flytekit
# user owning /root (made by kiln itself, so a busybox base without useradd
# works), WORKDIR /root and USER flytekit, judged by runc running the image
# as its config says. A base_image naming another spec file is built first
# and hashes as the same spec nested inline would. cuda picks NVIDIA's
# image when no base is given.
. "$(dirname "$0")/lib.sh"

busybox="$KILN_TB_PLAIN/testbed/busybox:latest"
mkdir -p "$T/p/app"
echo "base file" >"$T/p/base.txt"
echo "app file" >"$T/p/app/app.txt"
cat >"$T/p/base.yaml" <<SPEC
name: layout-base
registry: $KILN_TB_PLAIN/e2e
base_image: $busybox
copy: [base.txt]
env: {FROM_BASE: "yes"}
SPEC
cat >"$T/p/top.yaml" <<SPEC
name: layout-top
registry: $KILN_TB_PLAIN/e2e
base_image: base.yaml
copy: [app]
SPEC
# The same spec with the base nested inline: flytekit's ImageSpec(base_image=ImageSpec(...)).
cat >"$T/p/inline.yaml" <<SPEC
name: layout-top
registry: $KILN_TB_PLAIN/e2e
base_image:
$(sed 's/^/  /' "$T/p/base.yaml")
copy: [app]
SPEC

# 1. A base spec file hashes as the nested spec does.
top_name=$("$KILN" name "$T/p/top.yaml")
assert_eq "$("$KILN" name "$T/p/inline.yaml")" "$top_name" "name of a spec whose base is a spec file vs nested inline"
base_name=$("$KILN" name "$T/p/base.yaml")
assert_eq "$("$KILN" name --explain "$T/p/top.yaml" | sed -n 2p | grep -o "'base_image': '[^']*'")" \
        "'base_image': '$base_name'" "the tag hashes the base spec's image name"
pass "base spec file hashes like a nested ImageSpec"

expect_exit 0 build --dry-run "$T/p/top.yaml"
assert_contains "$(cat "$T/out")" "image: $base_name" "dry run plans the base spec"
assert_contains "$(cat "$T/out")" "base:  $base_name" "dry run uses the base spec's name as base"

# 2. Build and push: the base is built and pushed under its own name first.
# --force: the registry storage outlives test runs
expect_exit 0 build --json --force --push "$T/p/top.yaml"
assert_contains "$(cat "$T/err")" "base_image is a spec: building it first" "base built first"
"${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$base_name" >/dev/null || fail "base spec image was not pushed"
"${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$top_name" "oci:$T/top:x"
base_layers=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$base_name" | jq -c .Layers)
top_layers=$("${SKOPEO[@]}" inspect "oci:$T/top:x" | jq -c ".Layers[:$(echo "$base_layers" | jq length)]")
assert_eq "$top_layers" "$base_layers" "the top image starts with the base spec's layers"
umoci unpack --image "$T/top:x" "$T/b" >/dev/null
r="$T/b/rootfs"
assert_eq "$(cat "$r/root/base.txt") + $(cat "$r/root/app/app.txt")" "base file + app file" "files of both specs"
assert_eq "$(grep -c '^flytekit:' "$r/etc/passwd")" "1" "one flytekit account after two builds"
assert_eq "$(grep '^flytekit:' "$r/etc/passwd")" "flytekit:x:1000:1000::/home/flytekit:/bin/sh" \
        "busybox has no bash: the account gets /bin/sh"
assert_eq "$(stat -c %u "$r/home/flytekit") $(stat -c %u "$r/root")" "1000 1000" "home and /root owned by flytekit"
got=$(run_image "$T/b" 'echo "$(id -un):$(id -gn) $PWD $FROM_BASE $_F_IMG_ID"')
assert_eq "$got" "flytekit:flytekit /root yes $("$KILN" name --json "$T/p/top.yaml" | jq -r .id)" \
        "runc runs the image as flytekit in /root with the base's env and the top's _F_IMG_ID"
assert_eq "$(run_image "$T/b" 'cat /root/app/app.txt && touch /root/written && echo ok')" "app file
ok" "flytekit can read and write in /root"
pass "base spec built first, layout as flytekit's builder makes it"

# 3. Both exist now: a rebuild does no work at all.
expect_exit 0 build --push "$T/p/top.yaml"
assert_contains "$(cat "$T/out")" "exists in the registry" "second build of an existing image"
grep -q "step 1" "$T/err" && fail "an existing image ran build steps"
pass "existing image: nothing built"

# 4. Errors name the file and the reason.
printf 'base_image: cycle.yaml\n' >"$T/p/cycle.yaml"
expect_exit 8 name "$T/p/cycle.yaml"
assert_contains "$(cat "$T/err")" "cycle.yaml:1:13: base_image:" "cycle error position"
assert_contains "$(cat "$T/err")" "(a cycle)" "cycle named"
expect_exit 8 name --base-image missing.yaml
assert_contains "$(cat "$T/err")" "missing.yaml: No such file or directory" "missing base spec file"
pass "base spec errors"

# 5. cuda without a base picks NVIDIA's CUDA image.
expect_exit 0 build --dry-run --cuda 12.4.1 --cudnn 8
assert_contains "$(cat "$T/out")" "base:  docker.io/nvidia/cuda:12.4.1-cudnn8-runtime-ubuntu22.04" "cuda+cudnn 8 base"
expect_exit 0 build --dry-run --cuda 12.6.3 --cudnn 9
assert_contains "$(cat "$T/out")" "base:  docker.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04" "cudnn 9 base"
expect_exit 0 build --dry-run --cuda 11.8.0
assert_contains "$(cat "$T/out")" "base:  docker.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04" "cuda base"
expect_exit 8 build --dry-run --cuda 12
assert_contains "$(cat "$T/err")" "cuda: '12': NVIDIA's CUDA images are tagged by the full version" "short cuda version"
expect_exit 8 build --dry-run --cudnn 8
assert_contains "$(cat "$T/err")" "cudnn: 8 given without cuda" "cudnn alone"
expect_exit 0 build --dry-run --cuda 12.4.1 --base-image "$busybox"
assert_contains "$(cat "$T/out")" "base:  $busybox" "an explicit base wins over cuda"
pass "cuda bases"
