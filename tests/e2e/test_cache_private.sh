# The cache is its owner's alone: another local user cannot reach a base
# snapshot's setuid-root file, list the cache or write into a snapshot, even
# when the cache sits in a directory everyone can enter and a layer's `./`
# entry asks for a root of mode 0777. A cache made 0755 by an older kiln is
# made private when kiln next opens it; a shared directory named as the
# cache keeps its own mode.
. "$KILN_SRC/tests/e2e/lib.sh"

other=nobody
chmod 755 "$T" # only the cache's own modes keep others out
# A base whose top layer holds `./` 0777, a setuid-root program and a 0777
# directory.
python3 - "$T/suid.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, mode, kind=tarfile.DIRTYPE, data=b""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.size = kind, mode, 1, len(data)
        t.addfile(ti, io.BytesIO(data) if data else None)
    add("./", 0o777)
    add("opt/", 0o755)
    add("opt/suid", 0o4755, tarfile.REGTYPE, b"#!/bin/sh\necho KILN-SUID-MARKER\n")
    add("opt/open/", 0o777)
PY
push_with_layer "$KILN_TB_IMG_BUSYBOX" kiln-e2e/suid:v1 "$T/suid.tar"

ensure_user kilne2e-range range
ensure_user kilne2e-single single
KILN=$(kiln_for_users)
printf 'name: priv\nbase_image: %s/kiln-e2e/suid:v1\ncommands: ["test -u /opt/suid && test -d /opt/open"]\n' \
        "$KILN_TB_PLAIN" >"$T/spec.yaml"
chmod 644 "$T/spec.yaml"

# Each path must be out of reach of $other: stat, list, read, write.
unreachable() { # what cache
        local p c=$2
        for p in "$suid" "$snap/opt/open" "$snap" "$c/snapshots" "$c/blobs/sha256" "$c/cache" "$c/steps"; do
                runuser -u "$other" -- stat "$p" >/dev/null 2>&1 && fail "$1: $other can stat $p"
                runuser -u "$other" -- ls "$p" >/dev/null 2>&1 && fail "$1: $other can list $p"
        done
        runuser -u "$other" -- cat "$suid" >/dev/null 2>&1 && fail "$1: $other can read $suid"
        runuser -u "$other" -- "$suid" >/dev/null 2>&1 && fail "$1: $other can run $suid"
        runuser -u "$other" -- touch "$snap/opt/open/x" 2>/dev/null && fail "$1: $other can write into $snap"
        [ "$(stat -c %a "$c")" = 700 ] || fail "$1: cache root is $(stat -c %a "$c"), want 700"
        local d
        for d in "$c"/*/; do
                [ "$(stat -c %a "$d")" = 700 ] || fail "$1: $d is $(stat -c %a "$d"), want 700"
        done
}
# the proof's premise: $other reaches a file of a 0755 directory here
install -m 0755 -d "$T/pub" && echo x >"$T/pub/f"
runuser -u "$other" -- cat "$T/pub/f" >/dev/null || fail "$other cannot read $T/pub/f: the test proves nothing"

# As root, and as users with a subuid range and with one mapped id (the
# setuid file is then owned by the user, still setuid).
for user in root kilne2e-range kilne2e-single; do
        # the user's home for its files: its cache is made by kiln inside
        mkdir -p "$T/home-$user" "$T/layout-$user" && chown "$user" "$T/home-$user" "$T/layout-$user"
        c="$T/home-$user/cache"
        as_user "$user" env KILN_CACHE="$c" "$KILN" build "$T/spec.yaml" -o "oci:$T/layout-$user" \
                >/dev/null 2>"$T/log-$user" || { cat "$T/log-$user" >&2; fail "$user: build"; }
        suid=$(find "$c/snapshots" -path '*/opt/suid' -perm -4000 | head -1)
        [ -n "$suid" ] || fail "$user: no setuid /opt/suid in a snapshot of the cache"
        snap=${suid%/opt/suid}
        [ "$(stat -c %a "$snap")" = 777 ] || fail "$user: the premise: the layer's ./ 0777 is the snapshot root's mode"
        unreachable "$user" "$c"
        pass "$user: $other cannot stat, list, read, run or write what the cache holds ($suid)"
done
KILN_CACHE="$T/home-root/cache"
suid=$(find "$KILN_CACHE/snapshots" -path '*/opt/suid' -perm -4000 | head -1)
snap=${suid%/opt/suid}

# A cache an older kiln made: every directory 0755, the lock 0644.
chmod 0755 "$KILN_CACHE" "$KILN_CACHE"/*/
chmod 0644 "$KILN_CACHE/lock"
runuser -u "$other" -- stat "$KILN_CACHE/snapshots" >/dev/null || fail "could not make the cache 0755"
expect_exit 0 cache ls
unreachable "0755 cache after kiln cache ls" "$KILN_CACHE"
[ "$(stat -c %a "$KILN_CACHE/lock")" = 600 ] || fail "the lock is $(stat -c %a "$KILN_CACHE/lock")"
pass "a 0755 cache is made private when kiln opens it"

# A directory that holds other files (a home, a project) named as the cache:
# its mode is not kiln's to change, what kiln makes in it is private.
mkdir -m 0755 "$T/shared" && echo notes >"$T/shared/notes.txt"
KILN_CACHE="$T/shared" expect_exit 0 build "$T/spec.yaml" -o "oci:$T/layout2"
assert_eq "$(stat -c %a "$T/shared")" 755 "mode of a shared directory named as the cache"
for d in "$T/shared"/*/; do
        [ "$(stat -c %a "$d")" = 700 ] || fail "shared cache: $d is $(stat -c %a "$d"), want 700"
done
s2=$(find "$T/shared/snapshots" -path '*/opt/suid' -perm -4000 | head -1)
[ -n "$s2" ] || fail "no setuid file in the shared directory's snapshots"
runuser -u "$other" -- stat "$s2" >/dev/null 2>&1 && fail "$other can stat $s2"
pass "a shared directory keeps its mode; kiln's directories in it are 0700"
