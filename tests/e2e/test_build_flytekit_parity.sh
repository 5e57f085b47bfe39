# Image parity with flytekit's default builder (issue 12), with a fake
# flytekit 0.0.0 from the test bed's index (testdata/python/flytekit-0.0.0,
# whose pyflyte-* scripts print their interpreter and import the modules
# named on their command line):
# - --flytekit-requirement adds flytekit to pip unless packages or the
#   requirements file name it, never to the name, tag or _F_IMG_ID; it is
#   in the pip step's key; none adds nothing; bad values are usage errors;
# - a base whose system python has flytekit: the task's pyflyte-* resolve,
#   as the flytekit user through the image's PATH, to scripts that run the
#   venv's python and import what kiln installed;
# - the template's ENV lines in their order (commands see them), SHELL,
#   USER, WORKDIR and the flytekit user's ~/.profile.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PYINDEX:?the test bed has no python index}"
: "${KILN_TB_WHEELS:?the test bed has no wheels}"
fk_wheel=$KILN_TB_WHEELS/flytekit-0.0.0-py3-none-any.whl
[ -f "$fk_wheel" ] || fail "the test bed has no fake flytekit 0.0.0 wheel (testdata/python/flytekit-0.0.0)"
export SOURCE_DATE_EPOCH=$((1600000000 + RANDOM * 1000 + RANDOM))
base=$KILN_TB_PLAIN/testbed/python:bookworm
mkdir -p "$T/s"
cd "$T/s"

spec() { # file base packages-list [more yaml]
        printf 'name: parity\nbase_image: %s\npackages: %s\npip_index: %s\n%s' "$2" "$3" \
                "$KILN_TB_PYINDEX" "${4:-}" >"$1"
}
build() { # tag spec [kiln args]; log in $T/log.TAG, json in $T/json.TAG
        "$KILN" build --json "$2" -o "oci:$T/out-$1:x" "${@:3}" >"$T/json.$1" 2>"$T/log.$1" ||
                { cat "$T/log.$1" >&2; fail "build $1"; }
}
unpack() { # tag
        rm -rf "$T/b-$1"
        umoci unpack --image "$T/out-$1:x" "$T/b-$1" >/dev/null
}
# What the venv's python sees of flytekit: "VERSION DIR" or "none".
venv_flytekit() { # tag
        chroot "$T/b-$1/rootfs" /root/.venv/bin/python -c '
import importlib.metadata as m
try:
    d = m.distribution("flytekit")
    print(d.version, d.locate_file(""))
except m.PackageNotFoundError:
    print("none")'
}
# Did the pip step of a build run, or come from the cache?
pip_step() { # tag
        grep -E '^step [0-9]+: pip: ' "$T/log.$1" | grep -q '(cached)$' && echo cached || echo ran
}
site=/root/.venv/lib/python3.11/site-packages

# ---------------------------------------------------------------- the flag

spec a.yaml "$base" "[kiln-hello]" 'env: {APP: one, UV_LINK_MODE: symlink}
commands: ["env | sort > /root/build-env"]
'
build a a.yaml --flytekit-requirement flytekit==0.0.0
unpack a
assert_eq "$(venv_flytekit a)" "0.0.0 $site" "flytekit installed into the venv"
assert_eq "$(chroot "$T/b-a/rootfs" /root/.venv/bin/pyflyte-execute kiln_hello)" \
        "python: /root/.venv/bin/python
imported kiln_hello from $site/kiln_hello/__init__.py" "the venv's pyflyte-execute imports kiln_hello"
"$KILN" name --json a.yaml >"$T/name.json"
for f in image:name tag:tag id:id; do
        assert_eq "$(jq -r ".${f%%:*}" "$T/json.a")" "$(jq -r ".${f#*:}" "$T/name.json")" \
                "${f%%:*} with the flag is kiln name's, without it"
done
assert_eq "$(skopeo inspect --config "oci:$T/out-a:x" | jq -r '.config.Env[] | select(startswith("_F_IMG_ID="))')" \
        "_F_IMG_ID=$(jq -r .id "$T/name.json")" "_F_IMG_ID without the flag"
pass "--flytekit-requirement installs flytekit; name, tag and id do not change"

# The flag is in the pip step's key: another requirement runs pip again,
# the first one again is a hit (no `>=`: the index may hold a real
# flytekit, whose dependencies it lacks).
build a2 a.yaml --flytekit-requirement 'flytekit<0.1'
assert_eq "$(pip_step a2)" "ran" "a changed requirement re-runs pip"
build a4 a.yaml --flytekit-requirement flytekit==0.0.0
assert_eq "$(pip_step a4)" "cached" "the first requirement again: pip from the cache"
assert_eq "$(jq -r .digest "$T/json.a4")" "$(jq -r .digest "$T/json.a")" "the same requirement: the same image"
pass "the requirement is part of the pip step's key"

# A requirement that cannot be installed shows whether the flag was
# added: flytekit==9.9.9 is not in the index.
expect_exit 9 build a.yaml --flytekit-requirement flytekit==9.9.9 -o "oci:$T/out-a9:x"
assert_contains "$(cat "$T/err")" "flytekit==9.9.9" "the added requirement reached pip"
spec b.yaml "$base" "[kiln-hello, flytekit==0.0.0, flytekit==0.0.0]"
build b b.yaml --flytekit-requirement flytekit==9.9.9
unpack b
assert_eq "$(venv_flytekit b)" "0.0.0 $site" "packages' own flytekit installed"
printf '  kiln-dep==0.1.0\n  flytekit==0.0.0  \n' >requirements.txt
spec c.yaml "$base" "[kiln-hello]" 'requirements: requirements.txt
'
build c c.yaml --flytekit-requirement flytekit==9.9.9
unpack c
assert_eq "$(venv_flytekit c)" "0.0.0 $site" "the requirements file's flytekit installed"
pass "no flytekit added when packages or requirements name it"

build n a.yaml --flytekit-requirement none
build n0 a.yaml
assert_eq "$(jq -r .digest "$T/json.n")" "$(jq -r .digest "$T/json.n0")" "none: the image of no flag"
unpack n
assert_eq "$(venv_flytekit n)" "none" "none: no flytekit in the image"
[ ! -e "$T/b-n/rootfs/root/.venv/bin/pyflyte-execute" ] || fail "none: a pyflyte-execute in the venv"
pass "--flytekit-requirement none adds nothing"

printf 'name: bare\nbase_image: %s\npip_index: %s\n' "$base" "$KILN_TB_PYINDEX" >e.yaml
build e e.yaml --flytekit-requirement flytekit==0.0.0
unpack e
assert_eq "$(venv_flytekit e)" "0.0.0 $site" "no packages: the venv and flytekit anyway"
pass "a spec without packages gets flytekit"

for bad in -e '' ' ' $'flytekit==0.0.0\n--index-url=http://x' --index-url=http://x; do
        for dry in "" --dry-run; do
                expect_exit 2 build a.yaml $dry --flytekit-requirement "$bad" -o "oci:$T/bad:x"
                assert_contains "$(cat "$T/err")" "--flytekit-requirement" "the option named"
                [ ! -e "$T/bad" ] || fail "a refused --flytekit-requirement wrote an output"
        done
done
pass "bad requirements are usage errors"

# ------------------------------------------- a base with flytekit in it

# flytekit in the system python as pip leaves it: the package, its
# dist-info and console scripts run by /usr/bin/python3.
mkdir -p "$T/fk/usr/local/lib/python3.11/dist-packages" "$T/fk/usr/local/bin"
python3 -m zipfile -e "$fk_wheel" "$T/fk/usr/local/lib/python3.11/dist-packages"
for s in pyflyte pyflyte-execute pyflyte-fast-execute; do
        printf '#!/usr/bin/python3\nimport sys\nfrom flytekit.fake_cli import main\nsys.exit(main())\n' \
                >"$T/fk/usr/local/bin/$s"
        chmod 755 "$T/fk/usr/local/bin/$s"
done
tar -C "$T/fk" --owner=0 --group=0 --numeric-owner -cf "$T/fk.tar" usr
push_with_layer testbed/python:bookworm parity/flytekit-base:1 "$T/fk.tar"
spec f.yaml "$KILN_TB_PLAIN/parity/flytekit-base:1" "[kiln-hello]" 'env: {LD_LIBRARY_PATH: /opt/lib}
'
build f f.yaml --flytekit-requirement flytekit==0.0.0
grep -q "Requirement already satisfied: flytekit==0.0.0 in /usr/local/lib/python3.11/dist-packages" "$T/log.f" ||
        fail "pip did not take the base's flytekit"
unpack f
assert_eq "$(venv_flytekit f)" "0.0.0 /usr/local/lib/python3.11/dist-packages" "the venv sees the base's flytekit"
assert_eq "$(run_image "$T/b-f" 'id -un; for s in pyflyte-fast-execute pyflyte-execute pyflyte; do command -v $s; done
pyflyte-fast-execute kiln_hello && pyflyte-execute kiln_hello')" "flytekit
/root/.venv/bin/pyflyte-fast-execute
/root/.venv/bin/pyflyte-execute
/root/.venv/bin/pyflyte
python: /root/.venv/bin/python
imported kiln_hello from $site/kiln_hello/__init__.py
python: /root/.venv/bin/python
imported kiln_hello from $site/kiln_hello/__init__.py" "the task's scripts run the venv"
assert_eq "$(head -n 1 "$T/b-f/rootfs/root/.venv/bin/pyflyte-execute")" "#!/root/.venv/bin/python" "the script's interpreter"
assert_eq "$(cmp "$T/fk/usr/local/bin/pyflyte-execute" "$T/b-f/rootfs/usr/local/bin/pyflyte-execute" && echo same)" \
        "same" "the base's own script is left alone"
pass "a base with flytekit: pyflyte-* on PATH run the venv's python"

# ------------------------------------------------------------- the config

cfg=$(skopeo inspect --raw --config "oci:$T/out-a:x")
id=$(jq -r .id "$T/json.a")
want_path=/root/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin
assert_eq "$(jq -c .config.Env <<<"$cfg")" "$(jq -nc --arg p "$want_path" --arg id "$id" '[
        "PATH=\($p)", "UV_PYTHON=/root/.venv/bin/python", "UV_COMPILE_BYTECODE=1",
        "UV_LINK_MODE=symlink", "FLYTE_SDK_RICH_TRACEBACKS=0", "SSL_CERT_DIR=/etc/ssl/certs",
        "PYTHONPATH=/root", "APP=one", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64", "_F_IMG_ID=\($id)"]')" \
        "the template's ENV, the spec's winning, in order"
assert_eq "$(jq -c '[.config.Shell, .config.User, .config.WorkingDir]' <<<"$cfg")" \
        '[["/bin/bash","-c"],"flytekit","/root"]' "SHELL, USER, WORKDIR"
assert_eq "$(jq -c '[.history[] | select(.empty_layer) | .created_by | select(test("^(WORKDIR|SHELL|USER) "))]' <<<"$cfg")" \
        '["WORKDIR /root","SHELL [\"/bin/bash\",\"-c\"]","USER flytekit"]' "their history, in the template's order"
for e in "PATH=$want_path" UV_PYTHON=/root/.venv/bin/python UV_LINK_MODE=symlink FLYTE_SDK_RICH_TRACEBACKS=0 \
        PYTHONPATH=/root APP=one LD_LIBRARY_PATH=/usr/local/nvidia/lib64; do
        grep -qxF "$e" "$T/b-a/rootfs/root/build-env" || fail "the commands did not see $e"
done
assert_eq "$(skopeo inspect --raw --config "oci:$T/out-f:x" | jq -r '.config.Env[] | select(startswith("LD_LIBRARY_PATH="))')" \
        "LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/opt/lib" "a set LD_LIBRARY_PATH is kept after the GPU libraries"
assert_eq "$(jq -c '[.process.cwd, (.process.env | index("UV_COMPILE_BYTECODE=1") != null)]' "$T/b-a/config.json")" \
        '["/root",true]' "umoci reads the config"
r=$T/b-a/rootfs
home_line=$(grep '^flytekit:' "$r/etc/passwd")
uid=$(cut -d: -f3 <<<"$home_line")
home=$(cut -d: -f6 <<<"$home_line")
assert_eq "$home" "/home/flytekit" "the flytekit user's home"
assert_eq "$(tail -n 1 "$r$home/.profile")" "export PATH=$want_path" "~/.profile ends with the PATH"
assert_eq "$(stat -c %u "$r$home/.profile")" "$uid" "~/.profile belongs to the flytekit user"
assert_eq "$(run_image "$T/b-a" 'cd && tail -n 1 .profile')" "export PATH=$want_path" "the user's own ~/.profile"
pass "ENV, SHELL, USER, WORKDIR and ~/.profile as flytekit's template"

# ------------------------------------------------ the venv is the user's

# flytekit's template chowns the environment to flytekit: runtime_packages
# (flytekit's entrypoint runs `python -m pip install` as the task's user)
# and a task's own installs write into it.
find "$r/root/.venv" ! -user "$uid" >"$T/not-flytekit"
assert_eq "$(wc -l <"$T/not-flytekit")" 0 "every file of the venv belongs to flytekit (pip's too)"
wheel=$(ls "$KILN_TB_STATE"/wheels/kiln_data-*.whl | head -n 1)
mkdir -p "$r/work" && cp "$wheel" "$r/work/" && chown -R "$uid" "$r/work"
assert_eq "$(run_image "$T/b-a" 'id -un; python -m pip install -q --no-index --no-deps /work/*.whl 2>&1 >/dev/null | grep -v "WARNING: Running pip as" ; python -c "import kiln_data, sys; print(kiln_data.__file__.startswith(sys.prefix))"')" \
        "flytekit
True" "the task's user installs into the venv at run time, as runtime_packages does"
# the pip layer holds no second copy of what the python step made
manifest=$(jq -r '.manifests[0].digest' "$T/out-a/index.json" | cut -d: -f2)
pip_layer_files=0
for l in $(jq -r '.layers[].digest' "$T/out-a/blobs/sha256/$manifest" | cut -d: -f2); do
        n=$(tar -tzf "$T/out-a/blobs/sha256/$l" | grep -c '^root/.venv/pyvenv.cfg$' || true)
        pip_layer_files=$((pip_layer_files + n))
done
assert_eq "$pip_layer_files" 1 "pyvenv.cfg is in one layer only (the chown after pip copies nothing up)"
pass "the venv belongs to the flytekit user"
