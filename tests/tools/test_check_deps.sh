# tools/check-deps passes on the tree and fails, naming the file, line and
# rule, on each kind of include that breaks docs/architecture.md's order.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() {
        echo "FAIL: $*" >&2
        exit 1
}

# A copy outside git: check-deps then walks the folders itself.
copy() {
        rm -rf "$T/tree"
        mkdir -p "$T/tree"
        (cd "$src" && git ls-files --cached --others --exclude-standard '*.c' '*.h' '*.inc' 'layers/*.py' |
                tar -cf - -T -) | tar -xf - -C "$T/tree"
        mkdir -p "$T/tree/docs" "$T/tree/tools"
        cp "$src/docs/architecture.md" "$T/tree/docs/"
        cp "$src/tools/check-deps" "$T/tree/tools/"
}
run() {
        local rc=0
        python3 "$T/tree/tools/check-deps" --root "$T/tree" >"$T/out" 2>&1 || rc=$?
        echo "$rc"
}
expect_broken() { # what needle
        local rc
        rc=$(run)
        [ "$rc" = 1 ] || { cat "$T/out" >&2; fail "$1: check-deps exited $rc, want 1"; }
        grep -qF -- "$2" "$T/out" || { cat "$T/out" >&2; fail "$1: no '$2' in its output"; }
        echo "ok: $1"
}
add_include() { # file include
        sed -i "0,/^#include/s||#include \"$2\"\n#include|" "$T/tree/$1"
}

copy
[ "$(run)" = 0 ] || { cat "$T/out" >&2; fail "the tree as it is breaks the module order"; }
echo "ok: the tree keeps the module order"

copy
add_include layers/apt.c kiln/registry.h
expect_broken "a step kind reaching the registry client" \
        'layers/apt.c:'"$(grep -n '^#include' "$T/tree/layers/apt.c" | head -1 | cut -d: -f1)"': #include "kiln/registry.h": layers may not use registry'

copy
add_include src/archive/write.c kiln/builder.h
expect_broken "a lower module including a higher one" 'archive may not use builder'

copy
add_include src/store/store.c ../archive/archive-internal.h
expect_broken "a relative path out of the folder" 'src/store/store.c'

copy
add_include src/oci/manifest.c store-internal.h
expect_broken "another folder's private header" 'no such private header in src/oci/'

copy
add_include include/kiln/oci.h oci-internal.h
expect_broken "a public header including a private one" 'include/kiln/oci.h'

copy
sed -i 's/^| util | `src\/util` | `kiln\/util.h` | |$/| util | `src\/util` | `kiln\/util.h` | cli |/' "$T/tree/docs/architecture.md"
expect_broken "a cycle in the table" 'the module order has a cycle'

copy
mkdir -p "$T/tree/src/newmod"
printf '#include "kiln/util.h"\n' >"$T/tree/src/newmod/x.c"
expect_broken "a folder the table does not list" 'src/newmod/x.c: in a folder no module lists'
