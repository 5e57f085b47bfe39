# Before building, kiln asks the registry whether the spec's image name
# exists and skips the build when it does; --force and
# FLYTE_FORCE_PUSH_IMAGE_SPEC=true rebuild; an unreachable registry is an
# error, never "assume it exists".
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/s"
cd "$T/s"
cat >spec.yaml <<SPEC
name: exists-$(date +%s%N)
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
commands:
  - echo built > /marker
SPEC
"$KILN" build --json --push spec.yaml >"$T/r1.json" 2>"$T/log1" || fail "first build"
assert_eq "$(jq -r .skipped "$T/r1.json")" "false" "first build is not skipped"
grep -q "^step [0-9]*: commands" "$T/log1" || fail "first build ran no step"

"$KILN" build --json --push spec.yaml >"$T/r2.json" 2>"$T/log2" || fail "second build"
assert_eq "$(jq -r .skipped "$T/r2.json")" "true" "second build skipped"
assert_eq "$(jq -r .digest "$T/r2.json")" "$(jq -r .digest "$T/r1.json")" "digest of the existing image"
grep -q "^step\|^pull\|^push" "$T/log2" && fail "a skipped build did work: $(cat "$T/log2")"
"$KILN" build --push spec.yaml >"$T/out3" 2>/dev/null
assert_contains "$(cat "$T/out3")" "exists in the registry" "the skip is said"
pass "existing image: no build work"

"$KILN" build --json --push --force spec.yaml >"$T/r4.json" 2>"$T/log4" || fail "--force build"
assert_eq "$(jq -r .skipped "$T/r4.json")" "false" "--force builds"
grep -q "^step [0-9]*: commands" "$T/log4" || fail "--force ran no step"
FLYTE_FORCE_PUSH_IMAGE_SPEC=true "$KILN" build --json --push spec.yaml >"$T/r5.json" 2>/dev/null ||
        fail "FLYTE_FORCE_PUSH_IMAGE_SPEC build"
assert_eq "$(jq -r .skipped "$T/r5.json")" "false" "FLYTE_FORCE_PUSH_IMAGE_SPEC=true builds"
pass "--force and FLYTE_FORCE_PUSH_IMAGE_SPEC"

sed -i "s|^registry: .*|registry: 127.0.0.1:1/nowhere|" spec.yaml
expect_exit 5 build --push spec.yaml
assert_contains "$(cat "$T/err")" "exists" "the failed check is named"
pass "unreachable registry is an error"
