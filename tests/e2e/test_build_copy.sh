# Copy layers are written from host files with normalised metadata: the
# same inputs give the same layer whatever the host's mtimes, owners and
# umask, and with SOURCE_DATE_EPOCH the same manifest. A copy-only spec runs
# no sandbox and works for a platform this host cannot execute.
. "$(dirname "$0")/lib.sh"

mk_tree() { # dir
        mkdir -p "$1/data/nested" "$1/src/pkg"
        printf 'a,b\n1,2\n' >"$1/data/table.csv"
        printf 'deep\n' >"$1/data/nested/x.txt"
        printf 'print("hello")\n' >"$1/src/pkg/main.py"
        ln -s table.csv "$1/data/link.csv"
        cat >"$1/spec.yaml" <<SPEC
name: copyimg
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
env:
  PYTHONPATH: /root/src
  EMPTY:
  DEBUG: yes
  WORKERS: 010
  RATE: 1.0e-5
  SCALE: 2.50
copy:
  - data
  - src/pkg/main.py
SPEC
}
mk_tree "$T/one"
mk_tree "$T/two"
# Different host metadata for the second tree.
touch -d '2001-02-03 04:05:06' "$T/two/data/table.csv" "$T/two/src/pkg/main.py"
chmod 600 "$T/two/data/nested/x.txt"
chown -R 4321:4321 "$T/two/data"

build() { # tree cache out
        (cd "$1" && KILN_CACHE="$2" "$KILN" build -q --json spec.yaml -o "oci:$3:x" >"$3.json") ||
                fail "build in $1"
}

export SOURCE_DATE_EPOCH=1700000000
build "$T/one" "$T/c1" "$T/o1"
build "$T/two" "$T/c2" "$T/o2"
assert_eq "$(jq -r .digest "$T/o1.json")" "$(jq -r .digest "$T/o2.json")" \
        "manifest digest of two builds from separate caches with SOURCE_DATE_EPOCH"
pass "same manifest with SOURCE_DATE_EPOCH"

# The copy step's layer, found by its history entry (the profile step's
# layer, written by a sandboxed run, follows it and holds the time).
copy_layer() {
        local i
        i=$("${SKOPEO[@]}" inspect --config "oci:$1:x" |
                jq '[.history[] | select(.empty_layer | not) | .created_by | startswith("COPY ")] | index(true)')
        "${SKOPEO[@]}" inspect "oci:$1:x" | jq -r ".Layers[$i]"
}
unset SOURCE_DATE_EPOCH
build "$T/one" "$T/c3" "$T/o3"
sleep 1
build "$T/two" "$T/c4" "$T/o4"
assert_eq "$(copy_layer "$T/o3")" "$(copy_layer "$T/o4")" "copy layer digest without SOURCE_DATE_EPOCH"
pass "same copy layer without SOURCE_DATE_EPOCH"

# The copied files sit under /root with their relative paths.
umoci unpack --rootless --image "$T/o3:x" "$T/b" >/dev/null
r="$T/b/rootfs"
assert_eq "$(cat "$r/root/data/table.csv")" "$(printf 'a,b\n1,2')" "copied csv"
assert_eq "$(cat "$r/root/src/pkg/main.py")" 'print("hello")' "copied single file keeps its relative path"
assert_eq "$(readlink "$r/root/data/link.csv")" "table.csv" "symlink kept"
assert_eq "$(stat -c %a "$r/root/data/nested/x.txt")" "644" "mode normalised"
cfg=$("${SKOPEO[@]}" inspect --config "oci:$T/o3:x")
echo "$cfg" | jq -e '.config.Env | index("PYTHONPATH=/root/src")' >/dev/null || fail "spec PYTHONPATH lost"
echo "$cfg" | jq -e '.config.Env | index("PYTHONPATH=/root") | not' >/dev/null || fail "default PYTHONPATH beside the spec's"
pass "copy layout; the spec's PYTHONPATH wins over the default"
# Non-string env values are written as Python's str() of what YAML made
# of them, as flytekit's ENV line does.
for kv in EMPTY=None DEBUG=True WORKERS=8 RATE=1e-05 SCALE=2.5; do
        echo "$cfg" | jq -e --arg kv "$kv" '.config.Env | index($kv)' >/dev/null ||
                fail "env $kv not in $(echo "$cfg" | jq -c .config.Env)"
done
pass "env scalars rendered as Python's str()"

# A change in a copied file changes the layer and the name.
n1=$("$KILN" name "$T/one/spec.yaml")
echo more >>"$T/one/data/table.csv"
n2=$("$KILN" name "$T/one/spec.yaml")
[ "$n1" != "$n2" ] || fail "image name does not depend on copied content"
pass "copied content is part of the name"

# Copy-only for arm64: no emulation needed, config says arm64.
echo "platform: linux/arm64" >>"$T/two/spec.yaml"
sed -i 's|testbed/busybox:latest|testbed/busybox-multi:latest|' "$T/two/spec.yaml"
build "$T/two" "$T/c5" "$T/o5"
"${SKOPEO[@]}" inspect --config "oci:$T/o5:x" | jq -e '.architecture == "arm64"' >/dev/null ||
        fail "copy-only arm64 build has the wrong architecture"
pass "copy-only build for another architecture"

# And a spec whose steps run programs for arm64 says why it cannot, unless
# this host has binfmt emulation for it.
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        echo 'commands: ["true"]' >>"$T/two/spec.yaml"
        (cd "$T/two" && KILN_CACHE="$T/c5" expect_exit 9 build spec.yaml -o "oci:$T/o6:x")
        assert_contains "$(cat "$T/err")" "binfmt_misc" "cross-platform error names what is missing"
        [ ! -e "$T/o6" ] || fail "output written for a failed cross build"
        pass "cross-platform commands refused with the reason"
fi
