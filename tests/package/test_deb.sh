#!/usr/bin/env bash
# tools/package builds a .deb that installs and removes cleanly on this
# Debian with apt-get: dpkg reads its control fields, apt resolves its
# Depends, the installed /usr/bin/kiln runs and man finds its pages, and
# a purge leaves none of its files behind. Installs on the machine, so it
# needs root (exit 77: skipped) and a machine without a kiln package.
#   test_deb.sh SRC_DIR BUILD_DIR VERSION
set -euo pipefail
src=$1 build=$2 version=$3
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: installing a package needs root"
	exit 77
fi
if dpkg-query -W -f='${db:Status-Status}' kiln 2>/dev/null | grep -qx installed; then
	fail "a kiln package is already installed here; this test installs and removes its own"
fi
tmp=$(mktemp -d /tmp/kiln-deb-test.XXXXXX)
installed=
cleanup() {
	[ -z "$installed" ] || apt-get purge -y -q -o DPkg::Lock::Timeout=600 kiln >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
chmod 0755 "$tmp" # apt's _apt user reads the .deb

deb=$(KILN_PACKAGE_BUILD_DIR=$build "$src/tools/package" "$tmp") || fail "tools/package failed"
[[ $(basename "$deb") == kiln_"$version"+git*_"$(dpkg --print-architecture)".deb ]] ||
	fail "package name $(basename "$deb") lacks version $version"
echo "built $(basename "$deb"): $(stat -c %s "$deb") bytes"

depends=$(dpkg-deb -f "$deb" Depends)
for d in libc6 libcurl4 libssl3 libarchive13 libseccomp2 uidmap slirp4netns ca-certificates; do
	[[ ", $depends," == *", $d"[\ ,]* ]] || fail "Depends lacks $d: $depends"
done

# what a purge must restore: every path named after kiln where a package
# (its files, its maintainer scripts, dpkg's own records) could put one
kiln_paths() { find /usr /etc /var/lib/dpkg/info -xdev -name '*kiln*' 2>/dev/null | sort; }
kiln_paths >"$tmp/before"

export DEBIAN_FRONTEND=noninteractive
installed=1
apt-get install -y -q -o DPkg::Lock::Timeout=600 "$deb" >"$tmp/install.log" 2>&1 ||
	fail "apt-get install $deb: $(tail -20 "$tmp/install.log")"
[ "$(dpkg-query -W -f='${Version}' kiln)" = "$(dpkg-deb -f "$deb" Version)" ] ||
	fail "dpkg does not list the package's version as installed"
got=$(/usr/bin/kiln version)
[ "$got" = "kiln $version" ] || fail "/usr/bin/kiln version says \"$got\""
mapfile -t files < <(dpkg -L kiln)
for p in kiln kiln-build kiln-name kiln-pull kiln-inspect kiln-cache; do
	[ "$(man -w "$p")" = "/usr/share/man/man1/$p.1.gz" ] || fail "man -w $p: $(man -w "$p" 2>&1)"
	MANWIDTH=80 man "$p" 2>"$tmp/warn" | grep -q "^NAME" || fail "man $p renders no NAME"
	[ ! -s "$tmp/warn" ] || fail "man $p: $(cat "$tmp/warn")"
done
[ -f /usr/share/bash-completion/completions/kiln ] || fail "no bash completion installed"

apt-get purge -y -q -o DPkg::Lock::Timeout=600 kiln >"$tmp/remove.log" 2>&1 ||
	fail "apt-get purge kiln: $(tail -20 "$tmp/remove.log")"
installed=
! dpkg-query -W -f='${db:Status-Status}' kiln 2>/dev/null | grep -qx installed ||
	fail "kiln still installed after purge"
for f in "${files[@]}"; do
	[ -d "$f" ] || [ ! -e "$f" ] || fail "$f left behind by apt-get purge"
done
kiln_paths >"$tmp/after"
diff "$tmp/before" "$tmp/after" >"$tmp/diff" || fail "apt-get purge left: $(cat "$tmp/diff")"
echo "installed, ran /usr/bin/kiln version, read its man pages, purged: nothing left"
