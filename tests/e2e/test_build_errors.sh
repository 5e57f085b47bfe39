# Failing builds say what failed and leave nothing behind: no tag in the
# registry, no output, no half-built state in the cache.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/s"
cd "$T/s"
spec() { # extra yaml lines
        cat >spec.yaml <<SPEC
name: errs
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
$1
SPEC
}
tag_exists() { "${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$1" >/dev/null 2>&1; }
cache_sane() {
        [ -z "$(ls -A "$KILN_CACHE/tmp" 2>/dev/null)" ] || fail "$1: temp files left in the cache"
        [ -z "$(ls -A "$KILN_CACHE/builds" 2>/dev/null)" ] || fail "$1: build directory left in the cache"
        for f in "$KILN_CACHE"/blobs/sha256/*; do
                [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || fail "$1: corrupt blob $f"
        done
}

# A failing command: exit 9, the step and the status named, output streamed.
spec 'commands:
  - echo before-failure
  - exit 7'
name=$("$KILN" name spec.yaml)
expect_exit 9 build spec.yaml --push -o "oci:$T/out1:x"
assert_contains "$(cat "$T/err")" "(commands) failed" "failing step named"
assert_contains "$(cat "$T/err")" "status 7" "exit status named"
assert_contains "$(cat "$T/err")" "[commands] before-failure" "command output streamed with its step"
tag_exists "$name" && fail "a failed build tagged $name"
[ ! -e "$T/out1" ] || fail "a failed build wrote its output"
cache_sane "failing command"
pass "failing command"

# A missing base image: exit 3, the reference named.
spec 'commands: ["true"]'
sed -i 's|testbed/busybox:latest|testbed/no-such-base:latest|' spec.yaml
expect_exit 3 build spec.yaml --push
assert_contains "$(cat "$T/err")" "testbed/no-such-base:latest" "missing base named"
cache_sane "missing base"
pass "missing base image"

# An unwritable output: error; the registry is not touched.
spec 'commands: ["true"]'
name=$("$KILN" name spec.yaml)
echo file >"$T/blocker"
expect_exit 2 build spec.yaml --push -o "oci:$T/blocker"
tag_exists "$name" && fail "pushed although the output failed"
assert_eq "$(cat "$T/blocker")" "file" "the file in the way is untouched"
cache_sane "unwritable output"
pass "unwritable output"

# Bad specs name the file, line and field.
printf 'name: x\napt_pakages: [curl]\n' >bad.yaml
expect_exit 8 build bad.yaml -o "oci:$T/o"
assert_contains "$(cat "$T/err")" "bad.yaml:2" "bad spec names the line"
assert_contains "$(cat "$T/err")" "apt_packages" "bad key suggests the right one"
printf 'copy: [../outside]\n' >bad2.yaml
expect_exit 8 build bad2.yaml -o "oci:$T/o"
pass "bad specs"

# --push without a registry, and no destination at all.
printf 'base_image: %s/testbed/busybox:latest\n' "$KILN_TB_PLAIN" >noreg.yaml
expect_exit 2 build noreg.yaml --push
expect_exit 2 build noreg.yaml
pass "nowhere to put the image"

# The spec from stdin, and --dry-run builds nothing.
spec 'commands: ["echo from-stdin"]'
"$KILN" build --dry-run -f - <spec.yaml >"$T/plan"
grep -q "commands: echo from-stdin" "$T/plan" || fail "dry run plan lacks the command"
grep -q "^image: $KILN_TB_PLAIN/e2e/errs:" "$T/plan" || fail "dry run lacks the image name"
[ ! -d "$KILN_CACHE/builds" ] || [ -z "$(ls -A "$KILN_CACHE/builds")" ] || fail "dry run built"
"$KILN" build -q -f - -o "oci:$T/stdin:x" --digest-file "$T/digest" <spec.yaml >/dev/null ||
        fail "build from stdin"
assert_eq "$(cat "$T/digest")" "$("${SKOPEO[@]}" inspect "oci:$T/stdin:x" | jq -r .Digest)" "--digest-file"
pass "stdin, dry run and digest file"

# The base's layers unpack as they download. A registry that drops the
# connection halfway through a layer: the download starts over, so what
# was unpacked is thrown away and the layer unpacked again from the cache;
# the image is whole. One that serves a corrupted layer: the build fails
# with both digests named and no snapshot of that base is kept.
creds=(--creds "$KILN_TB_BASIC_USER:$KILN_TB_BASIC_PASS")
for fault in flaky corrupt; do
        cat >"$fault.yaml" <<SPEC
name: streamed-$fault
base_image: $KILN_TB_FAULTY/$fault/busybox:latest
commands: ["echo made > /made"]
SPEC
done
export KILN_CACHE="$T/cache-stream"
curl -fsS "http://$KILN_TB_FAULTY/_testbed/reset" >/dev/null
expect_exit 0 build --debug "${creds[@]}" flaky.yaml -o "oci:$T/flaky:x"
assert_contains "$(cat "$T/err")" "unpacked again from the cache" "the voided unpack started over"
grep -q "fault=flaky-truncated" "$KILN_TESTBED_STATE/faulty.log" || fail "the proxy never dropped a layer"
umoci unpack --image "$T/flaky:x" "$T/b-flaky" >/dev/null || fail "the image does not unpack"
assert_eq "$(run_image "$T/b-flaky" 'cat /made; busybox | head -1 | cut -d" " -f1')" "made
BusyBox" "the image runs on its base"
cache_sane "flaky base"
pass "a layer whose download starts over is unpacked again"

export KILN_CACHE="$T/cache-corrupt"
expect_exit 6 build "${creds[@]}" corrupt.yaml -o "oci:$T/corrupt:x"
assert_contains "$(cat "$T/err")" "does not match its digest" "corrupt layer named"
[ ! -e "$T/corrupt" ] || fail "an output was written from a corrupt base"
[ -z "$(ls "$KILN_CACHE/snapshots" 2>/dev/null | grep -v '\.lock$')" ] || fail "a snapshot of a corrupt base was kept"
cache_sane "corrupt base"
pass "a corrupt base layer fails the build and keeps no snapshot"
