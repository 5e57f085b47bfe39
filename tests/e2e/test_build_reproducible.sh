# Two runners building the same spec with the same SOURCE_DATE_EPOCH and
# nothing cached get the same image, byte for byte: apt's and dpkg's logs
# and ldconfig's aux-cache (which hold the time and inodes of the run) stay
# out of the apt layer, and pip writes .pyc files that carry a hash of
# their source instead of its mtime.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PYINDEX:?the test bed has no python index}"

cat >"$T/spec.yaml" <<SPEC
name: repro
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
apt_packages: [jq]
packages: [kiln-hello==1.1.0]
SPEC
# Any epoch, not only a round one: mtimes are clamped to it.
epoch=$((1600000000 + RANDOM * 1000 + RANDOM))
for run in 1 2; do
        SOURCE_DATE_EPOCH=$epoch KILN_CACHE="$T/cache$run" "$KILN" build "$T/spec.yaml" \
                --pip-index "$KILN_TB_PYINDEX" -o "oci:$T/out$run:x" >/dev/null 2>"$T/log$run" ||
                { cat "$T/log$run"; fail "build $run"; }
        # A second apart at least, so that anything holding the time differs.
        [ "$run" = 2 ] || sleep 1
done
d1=$("${SKOPEO[@]}" inspect "oci:$T/out1:x" | jq -r .Digest)
d2=$("${SKOPEO[@]}" inspect "oci:$T/out2:x" | jq -r .Digest)
if [ "$d1" != "$d2" ]; then
        umoci unpack --image "$T/out1:x" "$T/b1" >/dev/null
        umoci unpack --image "$T/out2:x" "$T/b2" >/dev/null
        diff -rq "$T/b1/rootfs" "$T/b2/rootfs" >&2 || true
        fail "two cold builds with SOURCE_DATE_EPOCH=$epoch differ: $d1, $d2"
fi
pass "two cold builds give the same image ($d1)"

umoci unpack --image "$T/out1:x" "$T/b" >/dev/null
r="$T/b/rootfs"
pyc=$(find "$r/root/.venv" -path '*kiln_hello/__pycache__/*.pyc' | head -1)
[ -n "$pyc" ] || fail "pip wrote no .pyc for kiln_hello"
# PEP 552: the 32-bit flags word after the magic; 3 = checked hash-based.
flags=$(od -An -tu4 -j4 -N4 "$pyc" | tr -d ' ')
assert_eq "$flags" "3" "kiln_hello's .pyc is hash-based"
assert_eq "$(echo '{"a":1}' | chroot "$r" jq -c .a)" "1" "jq runs"
pass "pip's .pyc files are hash-based and the image runs"
