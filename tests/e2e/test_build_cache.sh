# The per-step cache: which steps run again after each kind of change
# (none after no change; copy only re-runs what follows it; requirements
# re-run pip and after; env re-runs what sees it), the same manifest for an
# unchanged rebuild, --dry-run telling hit from miss, keys that do not
# depend on where the spec lives, a corrupted cached layer detected and
# rebuilt (at build time and by `kiln cache verify`), two concurrent builds
# sharing one cache (and one unpacked base), the steps before a failure
# kept, an empty step, --no-cache, and prune.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PYINDEX:?the test bed has no python index}"

mk() { # dir
        mkdir -p "$1/tree"
        echo "copied" >"$1/tree/a.txt"
        printf 'kiln-data==2.0.0\n' >"$1/requirements.txt"
        cat >"$1/spec.yaml" <<SPEC
name: cache
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
apt_packages: [jq]
packages: [kiln-hello==1.1.0]
requirements: requirements.txt
pip_index: $KILN_TB_PYINDEX
env: {MODE: one}
copy: [tree]
commands: ["echo \$MODE > /root/mode"]
SPEC
}
mk "$T/p"
export KILN_CACHE="$T/cache"

build() { # tag; log in $T/log.TAG, json in $T/json.TAG
        (cd "$T/p" && "$KILN" build --json spec.yaml -o "oci:$T/out-$1:x" "${@:2}" >"$T/json.$1" 2>"$T/log.$1") ||
                { cat "$T/log.$1" >&2; fail "build $1"; }
}
# The steps that ran (not from the cache), in order.
ran() { grep -E '^step [0-9]+: ' "$T/log.$1" | grep -v '(cached)$' | sed -E 's/^step [0-9]+: ([a-z-]+):.*/\1/' | tr '\n' ' ' | sed 's/ $//'; }
layer_steps="apt ca-certs user python pip copy commands profile"

build first --debug
assert_eq "$(ran first)" "apt ca-certs user python env pip runtime-env copy commands user-config profile" \
        "first build runs every step"
# --debug says where the time went: in all = the installers' + kiln's own,
# and the layers were written (behind later steps, mostly).
read -r all sandboxed own waited written < <(sed -n 's/^kiln: debug: time: \([0-9.]*\) s in all, \([0-9.]*\) s in sandboxed programs, \([0-9.]*\) s of it kiln.s own (\([0-9.]*\) s waiting for layers, written in \([0-9.]*\) s .*/\1 \2 \3 \4 \5/p' "$T/log.first")
[ -n "${written:-}" ] || fail "--debug printed no time line"
awk -v a="$all" -v s="$sandboxed" -v o="$own" -v w="$waited" -v r="$written" \
        'BEGIN { d = a - s - o; exit !(s > 0 && r > 0 && w <= o && d < 0.002 && d > -0.002) }' ||
        fail "time line does not add up: $all = $sandboxed + $own, waited $waited, written $written"

build same
assert_eq "$(ran same)" "" "an unchanged rebuild runs no step: the image cache answers"
grep -q '^\[\(apt\|pip\|commands\)\]' "$T/log.same" && fail "an installer ran on an unchanged rebuild"
assert_eq "$(jq -r .digest "$T/json.same")" "$(jq -r .digest "$T/json.first")" "unchanged rebuild: same manifest"
assert_eq "$(jq -r .cachedSteps "$T/json.same")" "8" "eight layer steps from the cache"
pass "unchanged spec: nothing runs, same image"

echo "changed" >"$T/p/tree/a.txt"
build copy
assert_eq "$(ran copy)" "env runtime-env copy commands user-config profile" \
        "copy change re-runs copy and what follows only"
umoci unpack --image "$T/out-copy:x" "$T/b-copy" >/dev/null
assert_eq "$(cat "$T/b-copy/rootfs/root/tree/a.txt")" "changed" "the new copy is in the image"
assert_eq "$(run_image "$T/b-copy" 'kiln-hello && python -c "import kiln_data; print(kiln_data.rows())" && jq --version')" \
        "hello from kiln-hello 1.1.0
[[1, 2], [3, 4]]
jq-1.6" "cached apt and pip layers work in the new image"
pass "copy change: apt and pip not run again"

printf 'kiln-data==2.0.0\nkiln-dep==0.1.0\n' >"$T/p/requirements.txt"
build reqs
assert_eq "$(ran reqs)" "env pip runtime-env copy commands user-config profile" \
        "requirements change re-runs pip and what follows"
pass "requirements change: apt not run again"

sed -i 's/MODE: one/MODE: two/' "$T/p/spec.yaml"
build env
# pip sees the spec's env, as in flytekit's template (ENV before the install)
assert_eq "$(ran env)" "env pip runtime-env copy commands user-config profile" \
        "env change re-runs the steps that see it"
umoci unpack --image "$T/out-env:x" "$T/b-env" >/dev/null
assert_eq "$(cat "$T/b-env/rootfs/root/mode")" "two" "commands saw the new env"
pass "env change"

# --dry-run says what will run.
(cd "$T/p" && "$KILN" build --dry-run spec.yaml) >"$T/dry1"
assert_eq "$(grep -c '\[cached\]' "$T/dry1")" "8" "dry run of a built spec: every layer step cached"
grep -q '\[runs\]' "$T/dry1" && fail "dry run of a built spec says something runs"
assert_eq "$(sed -n 's/^cached image: \(sha256:[0-9a-f]*\) (no step runs)$/\1/p' "$T/dry1")" \
        "$(jq -r .digest "$T/json.env")" "dry run of a built spec names the cached image"
sed -i 's/> \/root\/mode/> \/root\/mode2/' "$T/p/spec.yaml"
(cd "$T/p" && "$KILN" build --dry-run spec.yaml) >"$T/dry2"
assert_eq "$(grep '\[runs\]' "$T/dry2" | sed -E 's/^[0-9]+\. ([a-z-]+):.*/\1/' | tr '\n' ' ')" "commands profile " \
        "dry run: only commands and what follows will run"
grep -q '^cached image:' "$T/dry2" && fail "dry run of a changed spec says the image is cached"
sed -i 's/> \/root\/mode2/> \/root\/mode/' "$T/p/spec.yaml"
pass "dry run tells hits from misses"

# Keys do not depend on where the spec lives or which cache holds it.
mk "$T/elsewhere"
sed -i 's/MODE: one/MODE: two/' "$T/elsewhere/spec.yaml"
echo "changed" >"$T/elsewhere/tree/a.txt"
printf 'kiln-data==2.0.0\nkiln-dep==0.1.0\n' >"$T/elsewhere/requirements.txt"
(cd "$T/elsewhere" && KILN_CACHE="$T/cache2" "$KILN" build spec.yaml -o "oci:$T/out-else:x" >/dev/null 2>&1) ||
        fail "build elsewhere"
keys() { "$KILN" cache ls --json --cache-dir "$1" | jq -r '.steps[] | select(.kind != "image" and .kind != "attest" and .kind != "sbom") | .key' | sort; }
keys "$T/cache2" >"$T/keys2"
keys "$T/cache" | grep -Fxf "$T/keys2" >"$T/keys-common" || true
assert_eq "$(wc -l <"$T/keys-common")" "$(wc -l <"$T/keys2")" "every key of the other build is in the first cache"
pass "keys stable across directories and caches"

# A corrupted cached layer is detected at build time and rebuilt.
pip_layer=$(jq -r '.steps[] | select(.kind == "pip") | .layer' < <("$KILN" cache ls --json) | head -1)
f="$KILN_CACHE/blobs/sha256/${pip_layer#sha256:}"
chmod u+w "$f"
printf '\xff' | dd of="$f" bs=1 seek=100 conv=notrunc status=none
touch -d '2001-01-01' "$f"
build corrupt
grep -q "the cached layer .* of the pip step is corrupt: removed, the step runs again" "$T/log.corrupt" ||
        fail "corrupt layer not reported"
assert_contains "$(ran corrupt)" "pip" "pip re-ran after its cached layer was corrupted"
umoci unpack --image "$T/out-corrupt:x" "$T/b-corrupt" >/dev/null || fail "image after a corrupt cache does not unpack"
pass "corrupted cached layer detected and rebuilt"

# kiln cache verify finds and removes a bad blob; the step runs again.
apt_layer=$("$KILN" cache ls --json | jq -r '.steps[] | select(.kind == "apt") | .layer' | head -1)
f="$KILN_CACHE/blobs/sha256/${apt_layer#sha256:}"
chmod u+w "$f"
printf '\x00\x01' | dd of="$f" bs=1 seek=200 conv=notrunc status=none
expect_exit 6 cache verify
assert_contains "$(cat "$T/out")" "bad: $apt_layer" "verify names the bad blob"
[ ! -e "$f" ] || fail "verify kept the bad blob"
expect_exit 0 cache verify
build after-verify
assert_contains "$(ran after-verify)" "apt" "apt re-ran after verify removed its layer"
pass "cache verify"

# --no-cache runs every step (and the cache stays usable).
build nocache --no-cache
assert_eq "$(ran nocache)" "apt ca-certs user python env pip runtime-env copy commands user-config profile" \
        "--no-cache runs all"
pass "--no-cache"

# Two concurrent builds sharing one (empty) cache: both succeed, one image.
mkdir -p "$T/conc/t" && echo x >"$T/conc/t/x"
printf 'name: conc\nbase_image: %s\ncopy: [t]\ncommands: ["date +%%s%%N > /root/when"]\n' \
        "$KILN_TB_PLAIN/testbed/debian:bookworm" >"$T/conc/spec.yaml"
for i in 1 2; do
        (cd "$T/conc" && SOURCE_DATE_EPOCH=1700000000 KILN_CACHE="$T/cache3" "$KILN" build --json spec.yaml \
                -o "oci:$T/conc-$i:x" >"$T/conc.$i.json" 2>"$T/conc.$i.log") &
done
wait || true
for i in 1 2; do jq -e .digest "$T/conc.$i.json" >/dev/null || { cat "$T/conc.$i.log"; fail "concurrent build $i"; }; done
assert_eq "$(jq -r .digest "$T/conc.1.json")" "$(jq -r .digest "$T/conc.2.json")" "concurrent builds: one image"
pass "concurrent builds share the cache"

# Two builds over a base not yet unpacked, side by side, with nothing else
# in common (their epochs differ, and so every step key): the base is
# unpacked once, the second waiting for the first's snapshot.
for i in 1 2; do
        (cd "$T/conc" && SOURCE_DATE_EPOCH=170000000$i KILN_CACHE="$T/cache5" "$KILN" build spec.yaml \
                -o "oci:$T/snap-$i:x" >/dev/null 2>"$T/snap.$i.log") &
        pids[i]=$!
done
for i in 1 2; do wait "${pids[i]}" || { cat "$T/snap.$i.log"; fail "side-by-side build $i"; }; done
assert_eq "$(cat "$T/snap.1.log" "$T/snap.2.log" | grep -c 'unpacking the base image')" "1" \
        "the base unpacked by one build only"
pass "one unpacked base for builds side by side"

# A failing step leaves the steps before it cached (their layers are
# written in the background while later steps run, and settled when one
# fails); a step that changes nothing has an empty_layer history entry and
# no layer.
mkdir -p "$T/fail"
printf 'name: fails\nbase_image: %s\npackages: [kiln-hello==1.1.0]\npip_index: %s\ncommands: ["exit 3"]\n' \
        "$KILN_TB_PLAIN/testbed/python:bookworm" "$KILN_TB_PYINDEX" >"$T/fail/spec.yaml"
(cd "$T/fail" && KILN_CACHE="$T/cache6" "$KILN" build spec.yaml -o "oci:$T/fail-out:x" >/dev/null 2>"$T/log.fail1") &&
        fail "a failing command built an image"
assert_contains "$(cat "$T/log.fail1")" "step 7 (commands) failed" "the failing step named"
sed -i 's/exit 3/true/' "$T/fail/spec.yaml"
(cd "$T/fail" && KILN_CACHE="$T/cache6" "$KILN" build spec.yaml -o "oci:$T/fail-out:x" >/dev/null 2>"$T/log.fail2") ||
        { cat "$T/log.fail2"; fail "build after fixing the command"; }
assert_eq "$(ran fail2)" "env runtime-env commands user-config profile" \
        "only the fixed step, what follows it (and config) ran"
assert_contains "$(cat "$T/log.fail2")" "step 7 (commands) changed nothing: no layer" "an empty step said so"
cfg=$(skopeo inspect --config "oci:$T/fail-out:x")
assert_eq "$(jq -c '[.history[] | select(.created_by == "RUN /bin/sh -c true") | .empty_layer]' <<<"$cfg")" \
        "[true]" "the empty step's history entry is empty_layer"
assert_eq "$(jq '[.history[] | select(.empty_layer | not)] | length' <<<"$cfg")" \
        "$(jq '.rootfs.diff_ids | length' <<<"$cfg")" "one non-empty history entry per layer"
assert_eq "$(skopeo inspect "oci:$T/fail-out:x" | jq '.Layers | length')" \
        "$(jq '.rootfs.diff_ids | length' <<<"$cfg")" "one manifest layer per diff_id"
umoci unpack --image "$T/fail-out:x" "$T/b-fail" >/dev/null || fail "the image does not unpack"
assert_eq "$(run_image "$T/b-fail" kiln-hello)" "hello from kiln-hello 1.1.0" "the image runs"
pass "a failed build keeps the steps before the failure; an empty step"

# prune: keep nothing, and the next build runs every step again.
expect_exit 0 cache prune --keep-bytes 0
assert_contains "$(cat "$T/out")" "kept 0 B" "prune to 0 bytes"
assert_eq "$("$KILN" cache ls --json | jq '.steps | length')" "0" "no cached steps after pruning everything"
build pruned
assert_eq "$(ran pruned)" "apt ca-certs user python env pip runtime-env copy commands user-config profile" \
        "after prune every step runs"
expect_exit 0 cache prune --older-than 1h
assert_contains "$(cat "$T/out")" "removed 0 B" "nothing older than an hour"
expect_exit 2 cache prune
expect_exit 2 cache prune --keep-bytes lots
assert_contains "$(cat "$T/err")" "--keep-bytes lots: want a size" "bad size named"
pass "prune"
