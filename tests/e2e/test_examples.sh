# Every example in examples/ builds on the test bed and its image, run by
# runc as its config says (user flytekit, in /root, the image's env), runs
# the command in the example's `expect` file, printing what that file says.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PYINDEX:?the test bed has no python index}"

for dir in "$KILN_SRC"/examples/*/; do
        name=$(basename "$dir")
        [ -f "$dir/expect" ] || fail "example $name has no expect file"
        cmd=$(sed -n 1p "$dir/expect")
        want=$(sed -n 2p "$dir/expect")
        "$KILN" build "$dir/imagespec.yaml" --base-image "$KILN_TB_PLAIN/testbed/python:bookworm" \
                --pip-index "$KILN_TB_PYINDEX" -o "oci:$T/$name:x" >/dev/null 2>"$T/$name.log" ||
                { cat "$T/$name.log"; fail "example $name does not build"; }
        umoci unpack --image "$T/$name:x" "$T/$name.bundle" >/dev/null
        got=$(run_image "$T/$name.bundle" "$cmd" 2>&1) || fail "example $name: '$cmd' failed: $got"
        assert_contains "$got" "$want" "example $name"
        id=$("$KILN" name --json "$dir/imagespec.yaml" --base-image "$KILN_TB_PLAIN/testbed/python:bookworm" \
                --pip-index "$KILN_TB_PYINDEX" | jq -r .id)
        assert_eq "$(run_image "$T/$name.bundle" 'echo $(id -un) $PWD $_F_IMG_ID')" "flytekit /root $id" \
                "example $name: runs as flytekit in /root with its _F_IMG_ID"
        pass "example $name"
done
