#!/usr/bin/env bash
# cmake --install into a fresh DESTDIR, then judge what landed with the
# tools that read it: the installed kiln runs, man-db renders every page
# without a warning and the page lists every option `kiln help CMD` lists,
# and bash, zsh (its real compsys, driven through a pty) and fish load the
# completions from their standard places and complete what the help names.
#   test_install.sh BUILD_DIR VERSION
set -euo pipefail
export LC_ALL=C # sort and compgen order
build=$1 version=$2
tmp=$(mktemp -d /tmp/kiln-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

DESTDIR=$tmp/root cmake --install "$build" --prefix /usr/local >/dev/null
pre=$tmp/root/usr/local
kiln=$pre/bin/kiln
for f in bin/kiln share/man/man1/kiln.1 share/bash-completion/completions/kiln \
	share/zsh/vendor-completions/_kiln share/fish/vendor_completions.d/kiln.fish; do
	[ -f "$pre/$f" ] || fail "cmake --install did not write $f"
done
got=$("$kiln" version)
[ "$got" = "kiln $version" ] || fail "installed kiln version says \"$got\", not \"kiln $version\""

# The commands as the top-level help lists them (its "Commands:" block).
mapfile -t commands < <("$kiln" help | awk '/^Commands:/{on=1; next} on && /^$/{exit} on{print $1}')
[ "${#commands[@]}" -ge 7 ] || fail "kiln help lists ${#commands[@]} commands"
pages=(kiln)
for c in "${commands[@]}"; do
	case $c in help | version) ;; *) pages+=("kiln-$c") ;; esac
done
for want in kiln-build kiln-name kiln-pull kiln-inspect kiln-cache; do
	[[ " ${pages[*]} " == *" $want "* ]] || fail "kiln help lists no command for $want(1)"
done

# ---- man pages: man-db renders each, silently, with the help's options
for p in "${pages[@]}"; do
	f=$pre/share/man/man1/$p.1
	[ -f "$f" ] || fail "no man page $p.1"
	out=$(MANWIDTH=80 LC_ALL=C.UTF-8 man -l --warnings "$f" 2>"$tmp/warn") ||
		fail "man -l $p.1 failed: $(cat "$tmp/warn")"
	[ ! -s "$tmp/warn" ] || fail "man -l --warnings $p.1: $(cat "$tmp/warn")"
	flat=$(tr -s ' \n' ' ' <<<"$out")
	[[ $flat == *"NAME $p - "* ]] || fail "$p.1 has no NAME line \"$p - ...\""
	help=$(if [ "$p" = kiln ]; then "$kiln" help; else "$kiln" help "${p#kiln-}"; fi)
	for o in $(grep -o -- '--[a-z][a-z0-9-]*' <<<"$help" | sort -u); do
		[[ $flat == *"$o"* ]] || fail "$p.1 does not mention $o, which kiln help does"
	done
done
echo "man: ${pages[*]} render without warnings"

# ---- completions, from a folder holding spec files and others
work=$tmp/work
mkdir -p "$work/layout" && touch "$work/a.yaml" "$work/b.yml" "$work/c.txt"
cd "$work"

# bash: the function complete -F names, called as readline calls it
bash_complete() {
	bash --norc --noprofile -c '
		source "$1"
		[[ $(complete -p kiln) == *"-F _kiln kiln" ]] || exit 3
		COMP_LINE=$2 COMP_POINT=${#2}
		read -ra COMP_WORDS <<<"$2"
		[[ $2 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_kiln
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ \
		"$pre/share/bash-completion/completions/kiln" "$1"
}
expect() { # shell line got want
	[ "$3" = "$4" ] || fail "$1: \"$2<TAB>\" gave \"$3\", not \"$4\""
}
expect bash "kiln bu" "$(bash_complete 'kiln bu')" "build "
expect bash "kiln pull oci-a" "$(bash_complete 'kiln pull oci-a')" "oci-archive: "
expect bash "kiln build " "$(bash_complete 'kiln build ')" "- a.yaml b.yml layout/ "
expect bash "kiln cache p" "$(bash_complete 'kiln cache p')" "prune "
expect bash "kiln build --compression " "$(bash_complete 'kiln build --compression ')" "gzip zstd "
for c in "${commands[@]}"; do
	case $c in help | version) continue ;; esac
	got=" $(bash_complete "kiln $c --")"
	for o in $("$kiln" help "$c" | grep -o -- '^ *\(-., \)\?--[a-z][a-z0-9-]*\|  --[a-z][a-z0-9-]*' |
		grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
		[[ $got == *" $o "* ]] || fail "bash: \"kiln $c --<TAB>\" lacks $o (in kiln help $c)"
	done
done
# options a help names only in its Usage line ([--json], [-f SPEC | ...])
got=" $(bash_complete 'kiln name -')"
for o in -f --json --explain --name --registry; do
	[[ $got == *" $o "* ]] || fail "bash: \"kiln name -<TAB>\" lacks $o: $got"
done
echo "bash: commands, options, transports and spec files complete"

# zsh: an interactive zsh on a pty (zpty), compinit finding _kiln in the
# installed vendor-completions folder; TAB then Enter runs a stand-in kiln
# that prints the completed line
zsh_complete() {
	timeout 120 zsh -f -c '
		zmodload zsh/zpty
		zpty z zsh -f -i
		zpty -w z "PS1=\"% \"; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
		zpty -w z "kiln() { print -r -- \"GO\"\"T:[\$*]\" }"
		zpty -w -n z "$2"$'\''\t\r'\''
		all=
		for i in {1..1200}; do
			zpty -r -t z out && all+=$out || sleep 0.1
			[[ $all == *GOT:*\]* ]] && break
		done
		zpty -d z
		print -r -- ${${${(M)${(f)all}:#GOT:*}%%$'\''\r'\''}#GOT:}' _ \
		"$pre/share/zsh/vendor-completions" "$1"
}
expect zsh "kiln bu" "$(zsh_complete 'kiln bu')" "[build]"
expect zsh "kiln pull oci-a" "$(zsh_complete 'kiln pull oci-a')" "[pull oci-archive:]"
expect zsh "kiln build -f a" "$(zsh_complete 'kiln build -f a')" "[build -f a.yaml]"
expect zsh "kiln build --comp" "$(zsh_complete 'kiln build --comp')" "[build --compression]"
echo "zsh: commands, options, transports and spec files complete"

# fish: found through XDG_DATA_DIRS as fish finds vendor completions (a
# HOME of its own: no user's config; --no-config would skip the search path),
# with the installed kiln on PATH: fish loads completions for commands it finds
fish_complete() {
	HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home XDG_DATA_HOME=$tmp/home \
		XDG_DATA_DIRS=$pre/share PATH=$pre/bin:$PATH fish -c "complete -C '$1'" |
		cut -f1 | sort | tr '\n' ' '
}
expect fish "kiln bu" "$(fish_complete 'kiln bu')" "build "
expect fish "kiln pull oci-a" "$(fish_complete 'kiln pull oci-a')" "oci-archive: "
expect fish "kiln build " "$(fish_complete 'kiln build ')" "- a.yaml b.yml layout/ "
expect fish "kiln build --comp" "$(fish_complete 'kiln build --comp')" "--compression "
expect fish "kiln build --compression " "$(fish_complete 'kiln build --compression ')" "gzip zstd "
echo "fish: commands, options, transports and spec files complete"
