# requirements naming a uv.lock or poetry.lock (pyproject.toml beside it)
# installs exactly the locked set, with the lock's hashes, in locked mode;
# a bare pyproject.toml installs the project's dependencies. The images run
# (runc: as flytekit, the venv first on PATH) and import what the lock
# holds, and nothing it does not.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PY_UV_PROJECT:?the test bed has no lock projects}"
base="$KILN_TB_PLAIN/testbed/python:bookworm"

check() { # name spec want_present want_absent
        "$KILN" build "$2" -o "oci:$T/$1:x" >"$T/$1.out" 2>"$T/$1.err" || { cat "$T/$1.err"; fail "$1: build"; }
        umoci unpack --image "$T/$1:x" "$T/$1.b" >/dev/null
        local probe="import importlib.util as u; print(' '.join(m for m in '$3 $4'.split() if u.find_spec(m)))"
        assert_eq "$(run_image "$T/$1.b" "python -c \"$probe\"")" "$3" "$1: modules in the image"
}

cat >"$T/uv.yaml" <<SPEC
name: lock-uv
base_image: $base
requirements: $KILN_TB_PY_UV_PROJECT/uv.lock
SPEC
check uv "$T/uv.yaml" "kiln_dep kiln_hello" "kiln_data"
grep -q -- "--require-hashes --no-deps -r .*uv.lock (locked)" "$T/uv.err" || fail "uv: not installed in locked mode"
assert_eq "$(run_image "$T/uv.b" 'kiln-hello')" "hello from kiln-hello 1.1.0" "uv: the locked kiln-hello runs"
[ ! -e "$T/uv.b/rootfs/run/kiln" ] || fail "uv: the lock, converter or requirements left a trace in the image"
pass "uv.lock"

cat >"$T/poetry.yaml" <<SPEC
name: lock-poetry
base_image: $base
requirements: $KILN_TB_PY_POETRY_PROJECT/poetry.lock
SPEC
check poetry "$T/poetry.yaml" "kiln_data kiln_dep kiln_hello" ""
pass "poetry.lock"

# A bare pyproject.toml: its dependencies, resolved by pip from the index.
mkdir -p "$T/ppdir"
printf '[project]\nname = "pp"\nversion = "0"\ndependencies = ["kiln-data==2.0.0"]\n' >"$T/ppdir/pyproject.toml"
cat >"$T/pp.yaml" <<SPEC
name: lock-pyproject
base_image: $base
requirements: ppdir/pyproject.toml
pip_index: $KILN_TB_PYINDEX
SPEC
check pp "$T/pp.yaml" "kiln_data" "kiln_hello"
pass "pyproject.toml dependencies"

# The lock's hashes are checked: a lock naming another hash fails the build.
cp -r "$KILN_TB_PY_UV_PROJECT" "$T/badhash"
sed -i '0,/hash = "sha256:[0-9a-f]\{8\}/s//hash = "sha256:00000000/' "$T/badhash/uv.lock"
expect_exit 9 build --base-image "$base" --requirements "$T/badhash/uv.lock" -o "oci:$T/x:x"
grep -q "THESE PACKAGES DO NOT MATCH THE HASHES" "$T/err" || fail "a wrong hash in the lock was not refused by pip"
pass "lock hashes enforced"

# Locked mode: a pyproject.toml that no longer matches its lock is an error
# naming both, and no image is written.
cp -r "$KILN_TB_PY_UV_PROJECT" "$T/stale"
sed -i 's/kiln-hello==1.1.0/kiln-hello==1.0.0/' "$T/stale/pyproject.toml"
expect_exit 9 build --base-image "$base" --requirements "$T/stale/uv.lock" -o "oci:$T/stale-img:x"
assert_contains "$(cat "$T/err")" "kiln: error: build" "stale lock fails"
assert_contains "$(cat "$T/err")" "requirements: $T/stale/uv.lock: uv.lock is out of date with pyproject.toml" \
        "the error names the lock and the reason, with host paths"
[ ! -e "$T/stale-img" ] || fail "a failed build wrote an output"
pass "stale uv.lock refused"

cp -r "$KILN_TB_PY_POETRY_PROJECT" "$T/pstale"
sed -i 's/^kiln-data = .*/kiln-data = "2.0.1"/' "$T/pstale/pyproject.toml"
expect_exit 9 build --base-image "$base" --requirements "$T/pstale/poetry.lock" -o "oci:$T/x:x"
assert_contains "$(cat "$T/err")" "content-hash" "stale poetry.lock named by its content hash"
pass "stale poetry.lock refused"

# Spec errors: a lock without its pyproject.toml, or with packages.
mkdir -p "$T/alone" && cp "$KILN_TB_PY_UV_PROJECT/uv.lock" "$T/alone/"
printf 'requirements: alone/uv.lock\n' >"$T/alone.yaml"
expect_exit 8 name "$T/alone.yaml"
assert_contains "$(cat "$T/err")" "alone.yaml:1:15: requirements: uv.lock needs the project's pyproject.toml beside it" \
        "lock without pyproject"
printf 'requirements: %s\npackages: [x]\n' "$KILN_TB_PY_UV_PROJECT/uv.lock" >"$T/both.yaml"
expect_exit 8 name "$T/both.yaml"
assert_contains "$(cat "$T/err")" "packages: cannot be combined with the lock file" "lock with packages"
pass "lock spec errors"
