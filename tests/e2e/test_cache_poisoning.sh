# Installer caches cannot be poisoned across trust boundaries: build code
# that writes into the pip cache a step mounts (here a base image's
# sitecustomize.py, run by every python of the pip step) reaches only later
# builds on the same base image with the same package index. A build on
# another base, or on the same base with another index, mounts a cache of
# its own; the same base and index share theirs (pip says "Using cached").
# `kiln cache ls` counts the keyed caches; a cache of the old shared layout
# is removed by `kiln cache verify`.
. "$KILN_SRC/tests/e2e/lib.sh"

# Two bases: the test bed's python image plus a sitecustomize.py that
# drops a file naming its base and index into the pip cache it finds
# mounted, and reports the files other (base, index) pairs dropped there.
# (Each python of the step runs it, so its own file is not news.)
for b in one two; do
        mkdir -p "$T/site-$b/usr/lib/python3.11"
        cat >"$T/site-$b/usr/lib/python3.11/sitecustomize.py" <<PY
import os, sys, urllib.parse
d = os.environ.get("PIP_CACHE_DIR")
if d and os.path.isdir(d):
    mine = "poison-$b-" + urllib.parse.urlsplit(os.environ.get("PIP_INDEX_URL", "")).hostname
    others = sorted(n for n in os.listdir(d) if n.startswith("poison-") and n != mine)
    sys.stderr.write("KILN-CACHE-SEEN %s: %s\\n" % (mine, " ".join(others) or "none"))
    open(os.path.join(d, mine), "w").write("written by a build on base $b")
PY
        tar -C "$T/site-$b" --owner=0 --group=0 --mtime=@1 -cf "$T/site-$b.tar" usr
        push_with_layer "$KILN_TB_IMG_PYTHON" "kiln-e2e/poison-$b:v1" "$T/site-$b.tar"
done

# Distinct packages per build, so pip runs each time (step cache misses).
build() { # tag base index [kiln options]
        cat >"$T/$1.yaml" <<SPEC
name: poison
base_image: $KILN_TB_PLAIN/kiln-e2e/poison-$2:v1
packages: [kiln-hello==1.1.0]
pip_index: $3
SPEC
        "$KILN" build "$T/$1.yaml" -o "oci:$T/img-$1:x" "${@:4}" >/dev/null 2>"$T/log.$1" ||
                { cat "$T/log.$1" >&2; fail "build $1"; }
}
seen() { # tag -> what the base's sitecustomize saw in the pip cache
        grep -o 'KILN-CACHE-SEEN .*' "$T/log.$1" | sort -u | sed 's/^KILN-CACHE-SEEN //' | tr '\n' ';'
}
other_index=${KILN_TB_PYINDEX/127.0.0.1/localhost}
[ "$other_index" != "$KILN_TB_PYINDEX" ] || fail "cannot make another index URL from $KILN_TB_PYINDEX"

build first one "$KILN_TB_PYINDEX"
assert_eq "$(seen first)" "poison-one-127.0.0.1: none;" "the first build's cache"
grep -q "Downloading" "$T/log.first" || fail "the first build downloaded nothing"
poisoned=$(find "$KILN_CACHE/cache/pip" -name poison-one-127.0.0.1)
[ -n "$poisoned" ] || fail "base one's code wrote nothing into the pip cache: the test proves nothing"
pass "base one wrote into the pip cache it mounted: $poisoned"

build other-base two "$KILN_TB_PYINDEX"
assert_eq "$(seen other-base)" "poison-two-127.0.0.1: none;" "another base, the same index"
pass "a build on another base does not see base one's file"

build other-index one "$other_index"
assert_eq "$(seen other-index)" "poison-one-localhost: none;" "the same base, another index"
pass "a build on the same base with another index does not see it"

build same one "$KILN_TB_PYINDEX" --no-cache
assert_eq "$(seen same)" "poison-one-127.0.0.1: none;" "the same base and index"
[ "$(find "$KILN_CACHE/cache/pip" -name poison-one-127.0.0.1)" = "$poisoned" ] ||
        fail "the same base and index used another cache"
grep -q "Using cached" "$T/log.same" || fail "the same base and index did not reuse the pip cache"
grep -q "Downloading" "$T/log.same" && fail "the same base and index downloaded again"
pass "the same base and index share their cache: pip used it, downloaded nothing"

# Three caches, one per (base, index), each named by a key only.
n=$(find "$KILN_CACHE/cache/pip" -mindepth 1 -maxdepth 1 -type d | wc -l)
assert_eq "$n" 3 "pip caches"
find "$KILN_CACHE/cache/pip" -mindepth 1 -maxdepth 1 | while read -r d; do
        [[ "$(basename "$d")" =~ ^[0-9a-f]{32}$ ]] || fail "unexpected entry $d in the pip cache"
done
"$KILN" cache ls --json >"$T/ls.json"
# (the python step's apt caches too: one per base)
keyed=$(find "$KILN_CACHE/cache" -mindepth 2 -maxdepth 2 -type d | wc -l)
[ "$keyed" -gt 3 ] || fail "only $keyed installer caches"
assert_eq "$(jq '.installerCaches.count' "$T/ls.json")" "$keyed" "kiln cache ls: installer caches"
# A cache of the shared layout of older kilns: removed by verify, never mounted.
mkdir -p "$KILN_CACHE/cache/pip/http" && echo old >"$KILN_CACHE/cache/pip/http/x"
"$KILN" cache ls --json >"$T/ls.json"
assert_eq "$(jq '.unkeyedInstallerCaches.count' "$T/ls.json")" 1 "kiln cache ls: unkeyed caches"
expect_exit 0 cache verify
assert_contains "$(cat "$T/out")" "unkeyed: $KILN_CACHE/cache/pip/http" "kiln cache verify output"
[ ! -e "$KILN_CACHE/cache/pip/http" ] || fail "verify kept the unkeyed cache"
assert_eq "$(find "$KILN_CACHE/cache/pip" -mindepth 1 -maxdepth 1 -type d | wc -l)" 3 "keyed caches after verify"
# prune bounds keep all three; an age bound of 0 removes them with their locks
expect_exit 0 cache prune --older-than 0s
assert_eq "$(find "$KILN_CACHE/cache" -mindepth 2 | wc -l)" 0 "installer caches after prune --older-than 0s"
pass "kiln cache ls, verify and prune know the keyed layout"
