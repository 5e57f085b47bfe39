# The blob cache: a blob already present is never downloaded again, and two
# kiln processes sharing the cache both succeed.
. "$(dirname "$0")/lib.sh"

ref="docker://$KILN_TB_PLAIN/testbed/python:bookworm"
"$KILN" pull "$ref" -o "oci:$T/a:x" 2>"$T/first.log" >/dev/null
grep -q "already in the cache" "$T/first.log" && fail "first pull claims a cache hit"
"$KILN" pull "$ref" -o "oci:$T/b:x" 2>"$T/second.log" >/dev/null
layers=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" "$ref" | jq '.Layers | length')
hits=$(grep -c "already in the cache" "$T/second.log" || true)
assert_eq "$hits" "$((layers + 1))" "cached blobs (layers and config) on the second pull"
pass "second pull downloads no layer"


# Two concurrent pulls into one fresh cache.
export KILN_CACHE="$T/shared-cache"
"$KILN" pull -q "$ref" -o "oci:$T/c1:x" & p1=$!
"$KILN" pull -q "$ref" -o "oci:$T/c2:x" & p2=$!
wait $p1 || fail "first concurrent pull"
wait $p2 || fail "second concurrent pull"
for d in c1 c2; do "${SKOPEO[@]}" inspect "oci:$T/$d:x" >/dev/null || fail "$d unreadable"; done
[ -z "$(ls -A "$KILN_CACHE/tmp")" ] || fail "temp files left by concurrent pulls"
pass "concurrent pulls share a cache"
