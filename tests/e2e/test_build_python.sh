# Python packages from the test bed's index: packages, a requirements file,
# an index that needs credentials (in the URL) and a secret mount used only
# while pip runs. The image runs what was installed; neither the password
# nor the secret appears in any byte of the image or in kiln's output; a
# rebuild takes the wheels from kiln's pip cache.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PYINDEX_AUTH_URL:?the test bed has no python index}"

mkdir -p "$T/s"
cd "$T/s"
secret="constraint-secret-$(date +%s%N)"
printf 'kiln-dep==0.1.0  # %s\n' "$secret" >constraints.txt
printf '\nkiln-data==2.0.0\n\n' >requirements.txt
authed=$(echo "$KILN_TB_PYINDEX_AUTH_URL" | sed "s|://|://$KILN_TB_PYINDEX_USER:$KILN_TB_PYINDEX_PASS@|")
cat >spec.yaml <<SPEC
name: py
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
packages: [kiln-hello==1.1.0, kiln-private]
requirements: requirements.txt
pip_index: $authed
pip_secret_mounts: [[constraints.txt, /run/secrets/constraints.txt]]
pip_extra_args: -c /run/secrets/constraints.txt
env:
  APP_MODE: test
SPEC
"$KILN" build spec.yaml -o "oci:$T/img:x" >"$T/build.out" 2>"$T/build.err" ||
        { cat "$T/build.err"; fail "python build"; }
grep -q "Downloading.*kiln_hello" "$T/build.err" || fail "kiln-hello was not downloaded from the index"

umoci unpack --image "$T/img:x" "$T/b" >/dev/null
r="$T/b/rootfs"
assert_eq "$(chroot "$r" /root/.venv/bin/kiln-hello)" "hello from kiln-hello 1.1.0" "console script runs"
chroot "$r" /root/.venv/bin/python -c 'import kiln_data, kiln_private, kiln_dep; assert kiln_data.rows() == [[1, 2], [3, 4]]' ||
        fail "installed modules do not import"
for e in APP_MODE=test PYTHONPATH=/root SSL_CERT_DIR=/etc/ssl/certs; do
        jq -e --arg e "$e" '.process.env | index($e)' "$T/b/config.json" >/dev/null || fail "$e missing from env"
done
jq -e '.process.env[] | select(startswith("PATH=/root/.venv/bin:"))' "$T/b/config.json" >/dev/null ||
        fail "the venv is not first on PATH"
[ ! -e "$r/run/secrets/constraints.txt" ] || fail "the secret mount is in the image"
pass "packages, requirements, authenticated index, secret mount"

# Every byte: config, manifest, and each layer decompressed.
leak=0
for blob in "$T"/img/blobs/sha256/*; do
        if gzip -t "$blob" 2>/dev/null; then zcat "$blob"; else cat "$blob"; fi >"$T/bytes"
        for needle in "$KILN_TB_PYINDEX_PASS" "$secret"; do
                if grep -aq -- "$needle" "$T/bytes"; then
                        echo "secret found in blob $(basename "$blob")" >&2
                        leak=1
                fi
        done
done
for needle in "$KILN_TB_PYINDEX_PASS" "$secret"; do
        grep -aq -- "$needle" "$T/build.out" "$T/build.err" && { echo "secret in kiln's output" >&2; leak=1; }
done
[ "$leak" = 0 ] || fail "credentials or secrets leaked"
pass "no credential or secret in any byte of the image or the output"

# A package given as a URL with credentials (PEP 508 direct reference):
# pip prints the URL as given, and the step's log line and the image's
# history name the package; the password must reach none of them.
host=${KILN_TB_PYINDEX_AUTH_URL#*://}
host=${host%%/*}
cat >direct.yaml <<SPEC
name: py-direct
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
packages: ["kiln-data @ http://$KILN_TB_PYINDEX_USER:$KILN_TB_PYINDEX_PASS@$host/files/kiln_data-2.0.0-py3-none-any.whl"]
SPEC
"$KILN" build direct.yaml -o "oci:$T/direct:x" >"$T/direct.out" 2>"$T/direct.err" ||
        { cat "$T/direct.err"; fail "build with a direct URL package"; }
grep -q "^\[pip\] .*http://\*\*\*@$host/files/kiln_data" "$T/direct.err" ||
        fail "pip's own line about the URL is not there, redacted"
for blob in "$T"/direct/blobs/sha256/*; do
        if gzip -t "$blob" 2>/dev/null; then zcat "$blob"; else cat "$blob"; fi >"$T/bytes"
        grep -aq -- "$KILN_TB_PYINDEX_PASS" "$T/bytes" && fail "the URL's password is in blob $(basename "$blob")"
done
grep -aq -- "$KILN_TB_PYINDEX_PASS" "$T/direct.out" "$T/direct.err" && fail "the URL's password is in kiln's output"
assert_contains "$(skopeo inspect --config "oci:$T/direct:x" | jq -r '.history[].created_by')" \
        "pip install kiln-data @ http://***@$host/files/" "the history names the package, redacted"
pass "a package URL's credentials reach no log line, history or layer"

# A rebuild downloads no wheel again (--no-cache: pip runs, from its own
# cache, instead of the step coming from kiln's).
echo "  REBUILD: '1'" >>spec.yaml
"$KILN" build --no-cache spec.yaml -o "oci:$T/img2:x" >/dev/null 2>"$T/build2.err" || { cat "$T/build2.err"; fail "rebuild"; }
grep -q "Downloading" "$T/build2.err" && fail "the rebuild downloaded wheels again"
grep -q "Using cached" "$T/build2.err" || fail "pip did not run on the --no-cache rebuild"
pass "pip cache"

# Without credentials the private index refuses, and the build fails
# (--no-cache: the key leaves credentials out, so the cached result would
# serve this spec without asking the index).
sed -i "s|^pip_index: .*|pip_index: $KILN_TB_PYINDEX_AUTH_URL|" spec.yaml
expect_exit 9 build --no-cache spec.yaml -o "oci:$T/img3:x"
assert_contains "$(cat "$T/err")" "step" "failing pip step named"
pass "index refusing without credentials fails the build"

# python_version that the base lacks: Debian's archive has python3.11, so
# apt installs it (into the python step's layer) and the venv is made from
# it; the running image (runc: user flytekit, /root, the image's PATH) finds
# the venv's python first.
cat >"$T/s/distro.yaml" <<SPEC
name: py-distro
base_image: $KILN_TB_PLAIN/testbed/debian:bookworm
python_version: "3.11"
packages: [kiln-hello==1.1.0]
pip_index: $KILN_TB_PYINDEX
SPEC
"$KILN" build "$T/s/distro.yaml" -o "oci:$T/distro:x" >/dev/null 2>"$T/distro.err" ||
        { cat "$T/distro.err"; fail "python_version from the distribution"; }
grep -q "installing python3.11 .* from its distribution" "$T/distro.err" || fail "python3.11 not installed by apt"
umoci unpack --image "$T/distro:x" "$T/db" >/dev/null
assert_eq "$(run_image "$T/db" 'command -v python; python -c "import sys, kiln_hello; print(sys.version_info[:2], kiln_hello.greet())"')" \
        "/root/.venv/bin/python
(3, 11) hello from kiln-hello 1.1.0" "distribution python 3.11 with the package, venv first on PATH"
[ -z "$(find "$T/db/rootfs/var/lib/apt/lists" -name '*Packages*' 2>/dev/null | head -1)" ] ||
        fail "apt lists of the python install in the image"
pass "python_version installed from the distribution"

# python 3.12 is in no Debian 12 archive, and conda-forge is unreachable
# from this machine: the error says so (and says what kiln lacks where the
# channel answers).
want_conda="conda.anaconda.org/conda-forge"
curl -sfI --max-time 5 -o /dev/null https://conda.anaconda.org/conda-forge/noarch/repodata.json &&
        want_conda="which kiln does not build yet"
expect_exit 9 build --base-image "$KILN_TB_PLAIN/testbed/debian:bookworm" --python-version 3.12 -o "oci:$T/x:x"
assert_contains "$(cat "$T/err")" "python_version 3.12: neither the base image nor its distribution's archive has python3.12" \
        "missing python named"
assert_contains "$(cat "$T/err")" "$want_conda" "the unreachable channel named"
expect_exit 9 build --base-image "$KILN_TB_PLAIN/testbed/debian:bookworm" --conda-package numpy -o "oci:$T/x:x"
assert_contains "$(cat "$T/err")" "conda_packages/conda_channels are set: that needs micromamba and conda-forge" \
        "conda packages need conda-forge"
pass "python that only conda-forge has: a clear error"

# python_exec names the base's interpreter: the venv is made from it.
cat >"$T/s/exec.yaml" <<SPEC
name: py-exec
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
python_exec: /usr/bin/python3.11
packages: [kiln-data==2.0.0]
pip_index: $KILN_TB_PYINDEX
SPEC
"$KILN" build "$T/s/exec.yaml" -o "oci:$T/exec:x" >/dev/null 2>"$T/exec.err" || { cat "$T/exec.err"; fail "python_exec build"; }
umoci unpack --image "$T/exec:x" "$T/eb" >/dev/null
grep -qx 'home = /usr/bin' "$T/eb/rootfs/root/.venv/pyvenv.cfg" || fail "the venv is not made from /usr/bin/python3.11"
grep -qx 'include-system-site-packages = true' "$T/eb/rootfs/root/.venv/pyvenv.cfg" || fail "the venv does not see system site packages"
assert_eq "$(run_image "$T/eb" 'python -c "import sys, kiln_data; print(sys.prefix, kiln_data.rows())"')" \
        "/root/.venv [[1, 2], [3, 4]]" "python_exec venv first on PATH with the package"
expect_exit 9 build --base-image "$KILN_TB_PLAIN/testbed/python:bookworm" --python-exec /usr/bin/python9 -o "oci:$T/x:x"
assert_contains "$(cat "$T/err")" "the base image has no /usr/bin/python9 (python_exec)" "missing python_exec named"
pass "python_exec"
