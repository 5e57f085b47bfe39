# The flytekit plugin end to end, judged by the real flytekit: `pyflyte
# package` on a project whose two tasks use ImageSpec(builder="kiln"), one
# on a base without flytekit (packages from the index, apt packages, env
# scalars, copy, commands), one with source_root and a nested base spec
# on a base whose system python has flytekit. Each task template must name
# the image kiln pushed; a second run builds nothing; a forced run pushes
# the same digest. Then each task runs in its image as Flyte would run it:
# the template's command (pyflyte-fast-execute ... -- pyflyte-execute ...)
# through the image's PATH, as the image's user in /root, with local input
# and output paths; the output is read back with flytekit.
. "$(dirname "$0")/lib.sh"

runtime=${KILN_FLYTEKIT_RUNTIME:-$(cd "$KILN_SRC/.." && pwd)/shared/flytekit-runtime}
if [ ! -d "$runtime/site/flytekit" ] || [ -z "${KILN_TB_IMG_FLYTEKIT:-}" ]; then
        echo "SKIP: no flytekit runtime ($runtime) or no flytekit base in the test bed"
        exit 77
fi
for tool in runc python3; do
        command -v "$tool" >/dev/null || fail "missing required tool: $tool"
done

# A venv over Debian's python with the runtime's flytekit: a dist-info so
# pip sees flytekit 1.16.24 installed, pyflyte as a console script.
venv=$T/venv
/usr/bin/python3 -m venv --system-site-packages "$venv"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$runtime/site" >"$site/flytekit-runtime.pth"
mkdir -p "$site/flytekit-1.16.24.dist-info"
printf 'Metadata-Version: 2.1\nName: flytekit\nVersion: 1.16.24\n' >"$site/flytekit-1.16.24.dist-info/METADATA"
printf '#!%s\nimport sys\nfrom flytekit.clis.sdk_in_container.pyflyte import main\nsys.exit(main())\n' \
        "$venv/bin/python" >"$venv/bin/pyflyte"
chmod +x "$venv/bin/pyflyte"
# the plugin installs with no index at all
"$venv/bin/pip" install --no-index -q "$KILN_SRC/plugins/flytekitplugins-kiln" ||
        fail "pip install plugins/flytekitplugins-kiln"
registered=$("$venv/bin/python" -c 'import flytekit
from flytekit.image_spec.image_spec import ImageBuildEngine
print(" ".join(sorted(ImageBuildEngine.get_registry())))')
assert_contains "$registered" "kiln" "the flytekit.plugins entry point registers builder kiln"

# kiln as the plugin runs it, logging each call
cat >"$T/kiln" <<EOF
#!/bin/sh
echo "\$*" >>"$T/kiln.log"
exec "$KILN" "\$@"
EOF
chmod +x "$T/kiln"

# A registry path of its own per run, whose first character covers the
# whole range flytekit allows (tags themselves come from the hash).
reg="$KILN_TB_PLAIN/plugin$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
debs=$(grep -v '^\s*\(#\|$\)' "$runtime/debian-packages.txt" | tr -s ' \t\n' ' ')
p=$T/proj
mkdir -p "$p/app" "$p/data"
printf 'a,b\n1,2\n' >"$p/data/table.csv"
: >"$p/app/__init__.py"
printf 'def shout(s):\n    return s.upper()\n' >"$p/app/helpers.py"
cat >"$p/app/wf.py" <<EOF
import os

from flytekit import ImageSpec, task, workflow

# source_root as a literal: the pod imports this file from /root, and its
# ImageSpec must be the one built (is_container compares ids, which hash
# the path as written)
HERE = "$p"
REG = "$reg"
INDEX = "$KILN_TB_PYINDEX/"

img_a = ImageSpec(
    name="task-a", registry=REG, builder="kiln",
    base_image="$KILN_TB_PLAIN/$KILN_TB_IMG_PYTHON",
    packages=["kiln-hello==1.1.0"], pip_index=INDEX,
    apt_packages="$debs".split(),
    env={"WORKERS": 3, "RATE": 0.5, "ON": True, "EMPTY": None},
    copy=["data/table.csv"],
    commands=["echo built-by-kiln > /opt/marker"],
)
base_b = ImageSpec(
    name="task-b-base", registry=REG, builder="kiln",
    base_image="$KILN_TB_PLAIN/$KILN_TB_IMG_FLYTEKIT",
    packages=["kiln-data"], pip_index=INDEX,
)
img_b = ImageSpec(name="task-b", registry=REG, builder="kiln", base_image=base_b,
                  source_root=HERE)

from app import helpers


@task(container_image=img_a)
def ta(x: int) -> str:
    import kiln_hello  # in the image only: kiln installed it

    with open("/opt/marker") as f:
        marker = f.read().strip()
    with open("/root/data/table.csv") as f:
        table = f.read().splitlines()[1]
    return (f"{kiln_hello.greet()}|{x}|{img_a.is_container()}|{os.environ['WORKERS']}"
            f"|{os.environ['ON']}|{marker}|{table}")


@task(container_image=img_b)
def tb(x: int) -> str:
    import kiln_data

    return f"{helpers.shout('rows')}|{kiln_data.rows()}|{x}|{img_b.is_container()}"


@workflow
def wf(x: int = 1) -> str:
    ta(x=x)
    return tb(x=x)
EOF

pyflyte_package() { # out.tgz
        (cd "$p" && KILN="$T/kiln" "$venv/bin/pyflyte" -k app package --copy auto -f -o "$1") \
                >"$T/pyflyte.out" 2>&1 || { cat "$T/pyflyte.out" >&2; fail "pyflyte package failed"; }
}
in_venv() {
        "$venv/bin/python" "$KILN_SRC/tests/flytekit/task_run.py" "$@"
}

pyflyte_package "$T/pkg1.tgz"
grep -c '^build ' "$T/kiln.log" >"$T/n" || true
assert_eq "$(cat "$T/n")" 3 "the first run builds three images (the nested base too)"
for t in ta tb; do
        img=$(in_venv image "$T/pkg1.tgz" "app.wf.$t")
        # what flytekit names the image is what kiln pushed
        case "$img" in "$reg/"*) ;; *) fail "$t: template image $img is not under $reg" ;; esac
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$img" >"$T/$t.inspect" ||
                fail "$t: the template's image $img is not in the registry"
        eval "img_$t=\$img"
        eval "dig_$t=\$(jq -r .Digest "\$T/\$t.inspect")"
done
pass "pyflyte package builds with kiln; the task templates name the pushed images"

: >"$T/kiln.log"
pyflyte_package "$T/pkg2.tgz"
grep '^build ' "$T/kiln.log" >&2 && fail "a second run built again"
assert_eq "$(in_venv image "$T/pkg2.tgz" app.wf.ta)" "$img_ta" "second run: same image for ta"
assert_eq "$(in_venv image "$T/pkg2.tgz" app.wf.tb)" "$img_tb" "second run: same image for tb"
pass "a second run builds nothing"

: >"$T/kiln.log"
FLYTE_FORCE_PUSH_IMAGE_SPEC=true pyflyte_package "$T/pkg3.tgz"
grep -c '^build .*--force' "$T/kiln.log" >"$T/n" || true
assert_eq "$(cat "$T/n")" 3 "FLYTE_FORCE_PUSH_IMAGE_SPEC=true builds every image again"
for t in ta tb; do
        eval "img=\$img_$t want=\$dig_$t"
        got=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$img" | jq -r .Digest)
        assert_eq "$got" "$want" "$t: a forced rebuild pushes the same digest"
done
pass "FLYTE_FORCE_PUSH_IMAGE_SPEC=true rebuilds to the same digests"

# Each task in its image, as Flyte runs it.
for t in ta tb; do
        eval "img=\$img_$t"
        "${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$img" "oci:$T/oci-$t:x" >/dev/null
        umoci unpack --image "$T/oci-$t:x" "$T/bundle-$t" >/dev/null
        w="$T/bundle-$t/rootfs/work"
        mkdir -p "$w"
        # what the kubelet gives a pod: flytekit's statsd client resolves
        # localhost
        printf '127.0.0.1 localhost\n' >"$T/bundle-$t/rootfs/etc/hosts"
        cmd=$(in_venv prepare "$T/pkg1.tgz" "app.wf.$t" "$w" /work x=7)
        uid=$(jq -r .process.user.uid "$T/bundle-$t/config.json")
        chown -R "$uid" "$w"
        run_image "$T/bundle-$t" "cd /root && $cmd" >"$T/run-$t.out" 2>&1 ||
                { cat "$T/run-$t.out" >&2; fail "$t: the task command failed in its image"; }
        eval "out_$t=\$(in_venv output \"\$w\")"
done
assert_eq "$out_ta" "hello from kiln-hello 1.1.0|7|True|3|True|built-by-kiln|1,2" \
        "ta ran in its image: kiln's packages, env, commands, copy; is_container() True"
assert_eq "$out_tb" "ROWS|[[1, 2], [3, 4]]|7|True" \
        "tb ran on the flytekit base: the project's module, the base spec's package; is_container() True"
pass "the packaged tasks run in kiln's images"
