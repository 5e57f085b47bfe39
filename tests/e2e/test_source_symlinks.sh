# A symlink in source_root or under a copy entry whose target resolves
# outside that tree is refused by default, with an error listing every such
# link (path -> target) and naming --follow-external-symlinks: an
# untrusted repository's `leak -> ~/.docker/config.json` would otherwise be
# copied, target bytes and all, into an image that gets pushed. Nothing of
# the target reaches the store (blobs decompressed, snapshots, step
# entries). Links inside the tree keep their behaviour, the image name is
# the same with or without the flag, and the flag copies as before.
. "$KILN_SRC/tests/e2e/lib.sh"

marker="KILN-SECRET-MARKER-$RANDOM$RANDOM"
mkdir -p "$T/secret" "$T/proj/src/sub" "$T/proj/c/d" "$T/outside"
echo "$marker" >"$T/secret/config.json"
echo "$marker" >"$T/outside/x"
printf 'print("app")\n' >"$T/proj/src/app.py"
ln -s app.py "$T/proj/src/inner.py"                        # inside: copied as the file
ln -s "$T/secret/config.json" "$T/proj/src/leak.json"       # absolute, outside
ln -s ../../../secret/config.json "$T/proj/src/sub/up.json" # relative, outside
echo data >"$T/proj/c/d/f"
ln -s ../../../secret/config.json "$T/proj/c/d/l"           # under a copy entry
ln -s "$T/outside" "$T/proj/via"                            # a copy entry's directory
cat >"$T/proj/spec.yaml" <<SPEC
name: symlinks
base_image: $KILN_TB_PLAIN/$KILN_TB_IMG_BUSYBOX
source_root: src
source_copy_mode: all
copy: [c, via/x]
SPEC

expect_exit 0 name "$T/proj/spec.yaml"
name_before=$(cat "$T/out")
expect_exit 8 build "$T/proj/spec.yaml" -o "oci:$T/img:x"
err=$(cat "$T/err")
for want in "source_root: leak.json -> $T/secret/config.json" \
        "source_root: sub/up.json -> ../../../secret/config.json" \
        "copy: c/d/l -> ../../../secret/config.json" \
        "copy: via/x -> $T/outside (its directory)" \
        "4 symlinks lead outside" "--follow-external-symlinks"; do
        assert_contains "$err" "$want" "the refusal"
done
case "$err" in *inner.py*) fail "a link inside the tree was listed: $err" ;; esac
[ ! -e "$T/img" ] || fail "a refused build wrote its output"

# Nothing of the target anywhere in the store, compressed or not.
no_marker() { # what
        [ -d "$KILN_CACHE" ] || return 0 # the refusal came before the cache was opened
        grep -rqa -- "$marker" "$KILN_CACHE" && fail "$1: the secret is in $KILN_CACHE: $(grep -rla -- "$marker" "$KILN_CACHE")"
        local b
        for b in "$KILN_CACHE"/blobs/sha256/*; do
                [ -f "$b" ] || continue
                zcat -f "$b" | grep -a -e "$marker" >/dev/null && fail "$1: the secret is in blob $b"
        done
        return 0
}
no_marker "refused build"
pass "outside links refused, each listed; nothing of their targets in the store"

# --dry-run refuses too (it would print the plan of a build that cannot run).
expect_exit 8 build --dry-run "$T/proj/spec.yaml"
assert_contains "$(cat "$T/err")" "--follow-external-symlinks" "dry run"

# Without the outside links: builds, the inside link copied as its file.
mkdir "$T/held" && mv "$T/proj/src/leak.json" "$T/proj/src/sub/up.json" "$T/proj/c/d/l" "$T/proj/via" "$T/held/"
sed -i 's|copy: \[c, via/x\]|copy: [c]|' "$T/proj/spec.yaml"
expect_exit 0 build "$T/proj/spec.yaml" -o "oci:$T/img:x"
umoci unpack --image "$T/img:x" "$T/b1" >/dev/null
assert_eq "$(cat "$T/b1/rootfs/root/inner.py")" 'print("app")' "the inside link's content"
no_marker "build without outside links"
pass "links inside the tree keep today's behaviour"

# With the flag: built as before, the image name unchanged by the flag.
mv "$T/held/leak.json" "$T/held/up.json" "$T/proj/src/" && mv "$T/proj/src/up.json" "$T/proj/src/sub/"
mv "$T/held/l" "$T/proj/c/d/" && mv "$T/held/via" "$T/proj/"
sed -i 's|copy: \[c\]|copy: [c, via/x]|' "$T/proj/spec.yaml"
expect_exit 0 name "$T/proj/spec.yaml"
assert_eq "$(cat "$T/out")" "$name_before" "image name after the refusal"
expect_exit 0 build --json --follow-external-symlinks "$T/proj/spec.yaml" -o "oci:$T/img2:x"
assert_eq "$(jq -r .image "$T/out")" "$name_before" "image name with --follow-external-symlinks"
umoci unpack --image "$T/img2:x" "$T/b2" >/dev/null
assert_eq "$(cat "$T/b2/rootfs/root/leak.json")" "$marker" "--follow-external-symlinks copies the target"
pass "--follow-external-symlinks copies as before; the image name is the same either way"
