# The test bed's flytekit pieces, which the flytekit plugin's tests build on:
# testbed/flytekit has flytekit 1.16.24 in its system python as `pip install`
# as root leaves it (pip itself and the image's own python judge that), and
# the index serves a flytekit 1.16.24 that installs offline into kiln's venv
# over testbed/python plus the runtime's Debian packages. Skipped (77) when
# the test bed has no flytekit runtime, unless KILN_REQUIRE_FLYTEKIT=1.
. "$(dirname "$0")/lib.sh"
if [ -z "${KILN_TB_IMG_FLYTEKIT:-}" ]; then
        msg="the test bed has no flytekit runtime (KILN_FLYTEKIT_RUNTIME or ../shared/flytekit-runtime)"
        [ "${KILN_REQUIRE_FLYTEKIT:-}" = 1 ] && fail "$msg"
        echo "SKIP: $msg"
        exit 77
fi
: "${KILN_TB_FLYTEKIT_VERSION:?}" "${KILN_TB_FLYTEKIT_APT:?}" "${KILN_TB_PYINDEX:?}"
v=$KILN_TB_FLYTEKIT_VERSION

# --- the base image, as a container runtime runs it
"${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$KILN_TB_PLAIN/$KILN_TB_IMG_FLYTEKIT" "oci:$T/base:x"
umoci unpack --image "$T/base:x" "$T/b" >/dev/null
out=$(run_image "$T/b" 'python3 -m pip show flytekit') || fail "pip show flytekit: $out"
assert_contains "$out" "Version: $v" "pip's version of flytekit"
assert_contains "$out" "Location: /usr/local/lib/python3.11/dist-packages" "where pip finds flytekit"
# every Requires-Dist of what was installed is met by the image's packages
out=$(run_image "$T/b" 'python3 -m pip check 2>&1') || fail "pip check: $out"
pass "pip sees flytekit $v in the system python, requirements met"

# flytekit's [project.scripts] in pip's script form, found through PATH
for s in pyflyte pyflyte-execute pyflyte-fast-execute pyflyte-map-execute flyte-cli; do
        got=$(run_image "$T/b" "command -v $s && head -n 1 \$(command -v $s)") || fail "$s not on PATH"
        assert_eq "$got" "/usr/local/bin/$s
#!/usr/bin/python3" "$s on PATH, interpreter"
done
out=$(run_image "$T/b" 'pyflyte-execute --help') || fail "pyflyte-execute --help: $out"
assert_contains "$out" "--output-prefix" "pyflyte-execute --help"
out=$(run_image "$T/b" 'pyflyte-fast-execute --help') || fail "pyflyte-fast-execute --help: $out"
assert_contains "$out" "--dest-dir" "pyflyte-fast-execute --help"
pass "console scripts"

# google.api (googleapis-common-protos, /usr/local) beside Debian's
# google.protobuf (/usr/lib/python3/dist-packages): neither shadows the other
out=$(run_image "$T/b" 'cd /tmp && python3 -c "
import flytekit, google.protobuf, google.api.annotations_pb2, flyteidl.core.tasks_pb2
from flytekit.image_spec import ImageSpec
print(flytekit.__version__, google.protobuf.__file__, google.api.__file__)"') || fail "imports: $out"
assert_eq "$out" "$v /usr/lib/python3/dist-packages/google/protobuf/__init__.py /usr/local/lib/python3.11/dist-packages/google/api/__init__.py" \
        "flytekit's version and where google.protobuf and google.api come from"
pass "flytekit, flyteidl, google.api and Debian's google.protobuf import"

# --- kiln's venv on testbed/python plus the runtime's Debian packages:
# flytekit comes from the test bed's index (no other index is reachable)
mkdir -p "$T/s"
{
        echo "name: fk"
        echo "base_image: $KILN_TB_PLAIN/$KILN_TB_IMG_PYTHON"
        echo "apt_packages: [$(tr ' ' , <<<"$KILN_TB_FLYTEKIT_APT")]"
        echo "packages: [flytekit==$v]"
        echo "pip_index: $KILN_TB_PYINDEX"
} >"$T/s/spec.yaml"
"$KILN" build "$T/s/spec.yaml" -o "oci:$T/img:x" >"$T/build.out" 2>"$T/build.err" ||
        { tail -n 30 "$T/build.err"; fail "kiln build of flytekit==$v from the test bed's index"; }
umoci unpack --image "$T/img:x" "$T/v" >/dev/null
out=$(run_image "$T/v" '/root/.venv/bin/pyflyte-execute --help') || fail "venv pyflyte-execute: $out"
assert_contains "$out" "--output-prefix" "the venv's pyflyte-execute --help"
out=$(run_image "$T/v" 'cd /tmp && /root/.venv/bin/python -c "
import flytekit, google.protobuf, google.api
print(flytekit.__version__, flytekit.__file__, google.protobuf.__file__)"') || fail "venv imports: $out"
assert_eq "$out" "$v /root/.venv/lib/python3.11/site-packages/flytekit/__init__.py /usr/lib/python3/dist-packages/google/protobuf/__init__.py" \
        "the venv's flytekit and the system's google.protobuf"
out=$(run_image "$T/v" '/root/.venv/bin/python -m pip check 2>&1') || fail "venv pip check: $out"
pass "flytekit==$v from the index into kiln's venv"
