# The step cache in a registry (--cache-repo, KILN_CACHE_REPO): a second
# builder with an empty disk builds a known spec from the registry without
# running any installer and gets the very same image; a step that changed
# runs once and is shared from then on; a cache that cannot be read or
# written costs a warning, never the build.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PYINDEX:?the test bed has no python index}"

repo="$KILN_TB_PLAIN/e2e-cache/run-$(date +%s%N)"
mkdir -p "$T/p/tree"
echo one >"$T/p/tree/a.txt"
cat >"$T/p/spec.yaml" <<SPEC
name: remote-cache-$(date +%s%N)
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
apt_packages: [jq]
packages: [kiln-hello==1.1.0]
pip_index: $KILN_TB_PYINDEX
copy: [tree]
commands: ["kiln-hello > /root/greeting"]
SPEC

builder() { # name [args...]: a builder with a disk of its own
        local n=$1
        shift
        (cd "$T/p" && KILN_CACHE="$T/disk-$n" "$KILN" build --json spec.yaml "$@" >"$T/$n.json" 2>"$T/$n.log") ||
                { cat "$T/$n.log" >&2; fail "builder $n"; }
}
installers() { grep -c '^\[\(apt\|pip\|python\|commands\)\] ' "$T/$1.log" || true; }

builder a --push --cache-repo "$repo"
[ "$(installers a)" -gt 0 ] || fail "the first builder ran no installer"
grep -q "warning" "$T/a.log" && { cat "$T/a.log" >&2; fail "the first builder warned"; }

# A fresh disk, the cache from the environment.
KILN_CACHE_REPO="$repo" builder b -o "oci:$T/b-img:x"
assert_eq "$(installers b)" "0" "a builder served by the registry cache runs no installer"
assert_eq "$(jq -r .remoteHits "$T/b.json")" "8" "every layer step came from the registry"
assert_eq "$(jq -r .digest "$T/b.json")" "$(jq -r .digest "$T/a.json")" "the same image as the first builder"
umoci unpack --image "$T/b-img:x" "$T/bb" >/dev/null
assert_eq "$(run_image "$T/bb" 'cat /root/greeting; jq --version; kiln-hello')" "hello from kiln-hello 1.1.0
jq-1.6
hello from kiln-hello 1.1.0" "the image from the cache runs"
pass "fresh disk served by the registry cache"

# A copy change: builder c runs copy and commands only, builder d none.
echo two >"$T/p/tree/a.txt"
KILN_CACHE_REPO="$repo" builder c -o "oci:$T/c-img:x"
assert_eq "$(grep -E '^step [0-9]+: (copy|commands):' "$T/c.log" | grep -vc 'cached')" "2" "copy and commands ran"
assert_eq "$(grep -c '^\[\(apt\|pip\)\] ' "$T/c.log" || true)" "0" "apt and pip came from the cache"
KILN_CACHE_REPO="$repo" builder d -o "oci:$T/d-img:x"
assert_eq "$(installers d)" "0" "the changed steps are shared too"
assert_eq "$(jq -r .digest "$T/d.json")" "$(jq -r .digest "$T/c.json")" "same image for the changed spec"
pass "changed steps are stored once and shared"

# Lazy: a fresh disk pushing to the cache's registry needs no layer's
# bytes. Forced rebuild of the known spec: the registry has every blob.
KILN_CACHE_REPO="$repo" builder g --push --force
assert_eq "$(jq -r .digest "$T/g.json")" "$(jq -r .digest "$T/c.json")" "forced rebuild from the cache: same image"
layers_on() { # disk: bytes of the image's layer blobs on it (its attestations,
        # an SBOM of a few hundred KiB among them, come from the cache too)
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$(jq -r .image "$T/$1.json")" |
                jq -r '.layers[].digest | sub("sha256:"; "")' |
                while read -r hex; do find "$T/disk-$1/blobs" -type f -name "$hex*" -printf '%s\n'; done |
                awk '{s += $1} END {print s + 0}'
}
assert_eq "$(layers_on g)" "0" "a push served by the registry cache downloads no layer"
# A changed copy pushed elsewhere on that registry: apt, pip and the base
# are mounted from where they are, never downloaded; copy and commands run
# over a rootfs fetched on first need.
echo three >"$T/p/tree/a.txt"
KILN_CACHE_REPO="$repo" builder h --push --registry "$KILN_TB_PLAIN/e2e-lazy"
assert_eq "$(grep -E '^step [0-9]+: (apt|pip|python):' "$T/h.log" | grep -c 'cached')" "3" "the installers' steps came from the cache"
grep -q 'mounted' "$T/h.log" || fail "no layer was mounted"
name_h=$(jq -r .image "$T/h.json")
"${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$name_h" "oci:$T/h-img:x"
umoci unpack --image "$T/h-img:x" "$T/hh" >/dev/null
assert_eq "$(run_image "$T/hh" 'cat /root/tree/a.txt /root/greeting; jq --version')" "three
hello from kiln-hello 1.1.0
jq-1.6" "the lazily built image runs"
pass "pushes to the cache's registry mount cached layers instead of downloading them"

# A cache that cannot be reached: warnings, and the build succeeds.
builder e -o "oci:$T/e-img:x" --cache-repo 127.0.0.1:1/nowhere
grep -q "warning: .*127.0.0.1:1/nowhere" "$T/e.log" || fail "no warning about the unreachable cache"
[ "$(installers e)" -gt 0 ] || fail "steps did not run without a cache"
pass "unreachable cache: warned, built"

# A cache that can be read but not written (the token registry grants
# anonymous pull only): the build succeeds and says why nothing was stored.
builder f -o "oci:$T/f-img:x" --cache-repo "$KILN_TB_TOKEN/public/kiln-cache"
grep -q "was not stored in the cache" "$T/f.log" || { cat "$T/f.log" >&2; fail "no warning about the refused write"; }
assert_eq "$(jq -r .skipped "$T/f.json")" "false" "the build went on"
pass "cache write refused: warned, built"
