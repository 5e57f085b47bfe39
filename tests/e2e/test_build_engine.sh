# kiln build on the Debian base, as root and as ordinary users (a subuid
# range, and a single mapped id): apt-get installs a package, files are
# created and deleted (a whiteout hides a base file), a directory is replaced
# wholesale (opaque), links are made, a tree is copied, env and entrypoint
# are set. The pushed image is judged by skopeo and umoci, and run.
. "$(dirname "$0")/lib.sh"

ensure_user kilne2e-range range
ensure_user kilne2e-single single
KILN=$(kiln_for_users)

build_as() { # user
        local user=$1 dir="$T/$1"
        mkdir -p "$dir/tree/sub" "$dir/cache"
        echo "copied text" >"$dir/tree/a.txt"
        printf '#!/bin/sh\necho run\n' >"$dir/tree/sub/run.sh"
        chmod 700 "$dir/tree/sub/run.sh"
        cat >"$dir/spec.yaml" <<SPEC
name: engine-$user
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/debian:bookworm
env:
  GREETING: hello $user
copy:
  - tree
commands:
  - apt-get update -qq
  - DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq >/dev/null
  - rm -rf /var/lib/apt/lists/*
  - rm /etc/issue.net
  - rm -rf /etc/skel && mkdir /etc/skel && echo fresh > /etc/skel/only
  - echo data > /srv/file && ln /srv/file /srv/hard && ln -s file /srv/soft
  - echo owned > /srv/owned && chown 1234:2345 /srv/owned && chmod 4750 /srv/owned
  - echo "\$GREETING" > /srv/greeting
entrypoint: ["/usr/bin/jq"]
SPEC
        chown -R "$user" "$dir" 2>/dev/null || true
        (cd "$dir" && as_user "$user" env KILN_CACHE="$dir/cache" "$KILN" build --json --force --push \
                spec.yaml >"$dir/result.json" 2>"$dir/build.log") ||
                { cat "$dir/build.log" >&2; fail "build as $user"; }
        grep -q '^\[commands\] ' "$dir/build.log" || fail "$user: command output is not prefixed by its step"
}

check_image() { # user
        local user=$1 dir="$T/$1"
        local name digest
        name=$(jq -r .image "$dir/result.json")
        digest=$(jq -r .digest "$dir/result.json")
        assert_eq "$(kiln_name "$dir/spec.yaml")" "$name" "$user: image name"
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" "docker://$name" >"$dir/inspect.json"
        assert_eq "$(jq -r .Digest "$dir/inspect.json")" "$digest" "$user: pushed digest"
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" --config "docker://$name" >"$dir/config.json"
        jq -e --arg g "GREETING=hello $user" '.config.Env | index($g)' "$dir/config.json" >/dev/null ||
                fail "$user: GREETING missing from Env"
        jq -e '.config.Env[-1] | startswith("_F_IMG_ID=")' "$dir/config.json" >/dev/null ||
                fail "$user: _F_IMG_ID is not the last Env entry"
        assert_eq "$(jq -c .config.Entrypoint "$dir/config.json")" '["/usr/bin/jq"]' "$user: entrypoint"
        assert_eq "$(jq '.rootfs.diff_ids | length' "$dir/config.json")" \
                "$(( $("${SKOPEO[@]}" inspect "${NOTLS[@]}" --config "docker://$KILN_TB_PLAIN/testbed/debian:bookworm" | jq '.rootfs.diff_ids | length') + 5 ))" \
                "$user: one layer each for CA certificates (minbase has none), the flytekit user, copy, commands and ~/.profile"
        assert_eq "$(jq -r '.config.User + " " + .config.WorkingDir' "$dir/config.json")" "flytekit /root" \
                "$user: USER and WORKDIR as flytekit's builder sets them"

        "${SKOPEO[@]}" copy -q "${NOTLS[@]}" "docker://$name" "oci:$dir/layout:x"
        umoci unpack --image "$dir/layout:x" "$dir/bundle" >/dev/null
        local r="$dir/bundle/rootfs"
        [ -x "$r/usr/bin/jq" ] || fail "$user: jq not installed"
        assert_eq "$(chroot "$r" /usr/bin/jq --version)" "jq-1.6" "$user: jq runs in the image"
        assert_eq "$(echo '{"a":41}' | chroot "$r" /usr/bin/jq .a)" "41" "$user: jq works"
        [ ! -e "$r/etc/issue.net" ] || fail "$user: deleted base file is back (whiteout lost)"
        [ -e "$r/etc/issue" ] || fail "$user: a base file next to the deleted one is gone"
        assert_eq "$(ls -A "$r/etc/skel")" "only" "$user: replaced directory (opaque) still shows base files"
        [ -z "$(ls -A "$r/var/lib/apt/lists" 2>/dev/null | grep -v '^partial$' || true)" ] ||
                fail "$user: apt lists left in the image"
        [ ! -e "$r/etc/apt/apt.conf.d/00kiln-single-id" ] || fail "$user: kiln's apt setting leaked into the image"
        [ ! -e "$r/etc/resolv.conf" ] || [ -s "$r/etc/resolv.conf" ] || fail "$user: empty resolv.conf mount point left"
        assert_eq "$(stat -c %i "$r/srv/file")" "$(stat -c %i "$r/srv/hard")" "$user: hardlink"
        assert_eq "$(readlink "$r/srv/soft")" "file" "$user: symlink"
        assert_eq "$(cat "$r/srv/greeting")" "hello $user" "$user: commands see the spec env"
        assert_eq "$(cat "$r/root/tree/a.txt")" "copied text" "$user: copied file"
        assert_eq "$(stat -c '%a %u:%g' "$r/root/tree/a.txt")" "644 1000:1000" "$user: copied file mode/owner (flytekit)"
        assert_eq "$(grep '^flytekit:' "$r/etc/passwd")" "flytekit:x:1000:1000::/home/flytekit:/bin/bash" \
                "$user: flytekit account as useradd makes it"
        assert_eq "$(grep '^flytekit:' "$r/etc/group")" "flytekit:x:1000:" "$user: flytekit group"
        grep -q '^flytekit:!:[0-9]*:0:99999:7:::$' "$r/etc/shadow" || fail "$user: flytekit shadow entry"
        [ -f "$r/home/flytekit/.bashrc" ] || fail "$user: /etc/skel not copied into the home"
        cmp "$r/etc/ssl/certs/ca-certificates.crt" "$(realpath /etc/ssl/certs/ca-certificates.crt)" ||
                fail "$user: the host's CA bundle is not in the image"
        assert_eq "$(chroot "$r" id -un 1000)" "flytekit" "$user: id resolves the flytekit user"
        local home_owner=1000
        # One mapped id: useradd's and chown's owners cannot be kept.
        [ "$user" = kilne2e-single ] && home_owner=0
        assert_eq "$(stat -c %u "$r/home/flytekit/.bashrc")" "$home_owner" "$user: home owned by flytekit"
        assert_eq "$(stat -c %u "$r/root/.bashrc")" "$home_owner" "$user: chown -R flytekit /root"
        assert_eq "$(stat -c %a "$r/root/tree/sub/run.sh")" "755" "$user: copied executable mode"
        local want_owner="1234:2345"
        # One mapped id cannot hold other owners: kiln records root.
        [ "$user" = kilne2e-single ] && want_owner="0:0"
        assert_eq "$(stat -c '%a %u:%g' "$r/srv/owned")" "4750 $want_owner" "$user: owner and mode from chown/chmod"
        pass "$user: image checked by skopeo, umoci and a run of jq"
}

kiln_name() { "$KILN" name "$1"; }

for user in root kilne2e-range kilne2e-single; do
        build_as "$user"
        check_image "$user"
done
