# apt_packages: installed in one layer with the package lists kept out of
# it, downloaded .debs kept in kiln's cache (outside the layer) so a rebuild
# downloads no package again. As root and as an ordinary user.
. "$(dirname "$0")/lib.sh"

ensure_user kilne2e-range range
KILN=$(kiln_for_users)
for user in root kilne2e-range; do
        dir="$T/$user"
        mkdir -p "$dir/cache"
        cat >"$dir/spec.yaml" <<SPEC
name: apt-$user
base_image: $KILN_TB_PLAIN/testbed/debian:bookworm
apt_packages: [jq, tree]
SPEC
        chown -R "$user" "$dir" 2>/dev/null || true
        (cd "$dir" && as_user "$user" env KILN_CACHE="$dir/cache" "$KILN" build spec.yaml \
                -o "oci:$dir/out:x" >/dev/null 2>"$dir/log1") || { cat "$dir/log1"; fail "$user: apt build"; }
        grep -q '^\[apt\] Get:.* jq amd64' "$dir/log1" || fail "$user: jq was not downloaded on the first build"
        ls "$dir"/cache/cache/apt-archives-amd64/*/jq_*.deb >/dev/null 2>&1 || fail "$user: jq .deb not kept in the cache"
        umoci unpack --image "$dir/out:x" "$dir/b" >/dev/null
        r="$dir/b/rootfs"
        assert_eq "$(echo '[1,2]' | chroot "$r" jq -c 'map(.+1)')" "[2,3]" "$user: jq runs"
        chroot "$r" tree --version | grep -q '^tree v' || fail "$user: tree does not run"
        [ -z "$(find "$r/var/lib/apt/lists" -type f -name '*Packages*' | head -1)" ] ||
                fail "$user: package lists in the image"
        [ -z "$(find "$r/var/cache/apt" -name '*.deb' | head -1)" ] || fail "$user: .debs in the image"
        [ ! -e "$r/etc/apt/apt.conf.d/zz-kiln-cache" ] || fail "$user: kiln's apt setting in the image"
        [ -e "$r/etc/apt/apt.conf.d/docker-clean" ] || fail "$user: the base's apt settings are gone"
        layers=$("${SKOPEO[@]}" inspect "oci:$dir/out:x" | jq '.Layers | length')
        assert_eq "$layers" "5" \
                "$user: base layer, one apt layer, CA certificates (minbase has none), the flytekit user, ~/.profile"
        assert_eq "$("${SKOPEO[@]}" inspect --config "oci:$dir/out:x" | jq -r '.history[1].created_by')" \
                "RUN apt-get install -y --no-install-recommends jq tree" "$user: apt is the first step"

        # A rebuild downloads no package again (--no-cache: apt runs, from
        # its own caches, instead of the step coming from kiln's).
        echo "env: {REBUILD: '1'}" >>"$dir/spec.yaml"
        (cd "$dir" && as_user "$user" env KILN_CACHE="$dir/cache" "$KILN" build --no-cache spec.yaml \
                -o "oci:$dir/out2:x" >/dev/null 2>"$dir/log2") || { cat "$dir/log2"; fail "$user: apt rebuild"; }
        grep -q '^\[apt\] Get:.* amd64 .*\.deb\|^\[apt\] Get:.* jq amd64' "$dir/log2" &&
                fail "$user: the rebuild downloaded packages again"
        grep -q "Packages \[" "$dir/log2" && fail "$user: the rebuild downloaded package lists again"
        grep -q '^\[apt\] ' "$dir/log2" || fail "$user: apt did not run on the --no-cache rebuild"
        pass "$user: apt_packages"
done
