# source_root with source_copy_mode: the project's files land in /root
# (owned by flytekit) minus what .gitignore, .dockerignore and flytekit's
# standard ignores exclude; the tag hashes exactly those files as
# flytekit's ls_files digest does. The expected file list comes from git
# (the oracle for .gitignore) minus the .dockerignore entry, and the
# expected digest is computed here with python's hashlib.
. "$(dirname "$0")/lib.sh"

p="$T/proj"
mkdir -p "$p/pkg/__pycache__" "$p/data/raw" "$p/docs" "$p/.git"
printf 'print("main")\n' >"$p/pkg/main.py"
printf '' >"$p/pkg/__init__.py"
printf 'x' >"$p/pkg/__pycache__/main.cpython-311.pyc"
printf 'y' >"$p/pkg/old.pyc"
printf 'a,b\n' >"$p/data/table.csv"
printf 'big' >"$p/data/raw/dump.bin"
printf 'notes\n' >"$p/docs/notes.md"
printf 'TOKEN=1\n' >"$p/secret.env"
printf 'data/raw/\n*.log\n' >"$p/.gitignore"
printf 'keep me\n' >"$p/docs/.gitignore.txt"
printf 'x' >"$p/docs/build.log"
printf 'secret.env\n' >"$p/.dockerignore"
ln -s pkg/main.py "$p/entry.py"
ln -s docs "$p/docs-link"
cat >"$T/spec.yaml" <<SPEC
name: source
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
source_root: proj
source_copy_mode: all
SPEC

# The oracle: git lists what .gitignore keeps; then flytekit's rules.
(cd "$p" && git init -q . 2>/dev/null && git ls-files --cached --others --exclude-standard \
        -x '*.pyc' -x __pycache__ -x .cache) | grep -vx 'secret.env' | grep -vx 'docs-link' | sort >"$T/want"
want_digest=$(cd "$p" && python3 -c '
import hashlib, sys
h = hashlib.md5()
for rel in sorted(l.strip() for l in open(sys.argv[1]) if l.strip()):
    h.update(open(rel, "rb").read())
    h.update(rel.replace("/", "").encode())
print(h.hexdigest())' "$T/want")
got_dict=$("$KILN" name --explain "$T/spec.yaml" | sed -n 2p)
assert_contains "$got_dict" "'source_root': '$want_digest'" "source_root hashed as flytekit's ls_files digest"
pass "source_root digest"

expect_exit 0 build "$T/spec.yaml" -o "oci:$T/img:x"
umoci unpack --image "$T/img:x" "$T/b" >/dev/null
r="$T/b/rootfs/root"
(cd "$r" && find . -type f -o -type l) | sed 's|^\./||' | grep -v '^\.bashrc$\|^\.profile$' | sort >"$T/got"
diff "$T/want" "$T/got" >&2 || fail "files in /root differ from what git and flytekit's ignores keep"
[ -f "$r/entry.py" ] && [ ! -L "$r/entry.py" ] || fail "a symlink to a file is copied as the file"
assert_eq "$(cat "$r/entry.py")" 'print("main")' "symlinked file content"
assert_eq "$(stat -c %u "$r/pkg/main.py")" "1000" "source files owned by flytekit"
assert_eq "$(run_image "$T/b" 'python_path=$PYTHONPATH; ls /root/pkg/main.py && echo $python_path')" \
        "/root/pkg/main.py
/root" "the image sees the sources on PYTHONPATH"
pass "source_root copied into /root"

# A change to an ignored file changes nothing; a change to a kept one does.
before=$("$KILN" name "$T/spec.yaml")
echo more >>"$p/data/raw/dump.bin"
assert_eq "$("$KILN" name "$T/spec.yaml")" "$before" "ignored file change keeps the tag"
echo '# more' >>"$p/pkg/main.py"
[ "$("$KILN" name "$T/spec.yaml")" != "$before" ] || fail "a kept file's change did not change the tag"
pass "tag follows the copied files only"

# source_copy_mode unset: flytekit's default is loaded_modules, the files
# of the modules pyflyte imported, which only pyflyte knows: refused, with
# the choice named, by name and build alike, and nothing written.
sed -i '/source_copy_mode/d' "$T/spec.yaml"
for cmd in "name" "build -o oci:$T/lm:x"; do
        expect_exit 8 $cmd "$T/spec.yaml"
        assert_contains "$(cat "$T/err")" "spec.yaml:3:14: source_root: without source_copy_mode flytekit copies the Python modules pyflyte imported from it (loaded_modules), which only pyflyte knows (the flytekit plugin passes them with --loaded-modules); set source_copy_mode to all" "$cmd with flytekit's default mode"
done
[ ! -e "$T/lm" ] || fail "output written for a refused loaded_modules build"
echo 'source_copy_mode: loaded_modules' >>"$T/spec.yaml"
expect_exit 8 name "$T/spec.yaml"
assert_contains "$(cat "$T/err")" "spec.yaml:4:19: source_copy_mode: loaded_modules copies the Python modules pyflyte imported" "loaded_modules set"
# With pyflyte's module list (--loaded-modules, which the flytekit plugin
# writes): exactly the listed files inside source_root are copied and
# hashed; a module outside it, or listed twice, changes nothing.
printf '%s\n' "$p/pkg/main.py" "$p/pkg/__init__.py" "$T/elsewhere.py" "$p/pkg/main.py" >"$T/modules"
sed -i "s|^source_root: proj|source_root: $p|" "$T/spec.yaml"
want_digest=$(cd "$p" && python3 -c '
import hashlib
h = hashlib.md5()
for rel in ["pkg/__init__.py", "pkg/main.py"]:
    h.update(open(rel, "rb").read())
    h.update(rel.replace("/", "").encode())
print(h.hexdigest())')
got_dict=$("$KILN" name --explain --loaded-modules "$T/modules" "$T/spec.yaml" | sed -n 2p)
assert_contains "$got_dict" "'source_root': '$want_digest'" "loaded modules hashed as ls_files does"
assert_contains "$got_dict" "'source_copy_mode': <CopyFileDetection.LOADED_MODULES: 1>" "mode hashed as flytekit's enum"
expect_exit 0 build --loaded-modules "$T/modules" "$T/spec.yaml" -o "oci:$T/lm:x"
umoci unpack --image "$T/lm:x" "$T/lmb" >/dev/null
(cd "$T/lmb/rootfs/root" && find . -type f) | sed 's|^\./||' | grep -v '^\.bashrc$\|^\.profile$' | sort >"$T/got"
assert_eq "$(cat "$T/got")" "pkg/__init__.py
pkg/main.py" "the loaded modules, and only they, copied"
printf 'pkg/main.py\n' >"$T/modules"
expect_exit 2 name --loaded-modules "$T/modules" "$T/spec.yaml"
assert_contains "$(cat "$T/err")" "--loaded-modules $T/modules:1: \"pkg/main.py\" is not an absolute path" "relative module path"
sed -i "s|^source_root: .*|source_root: proj|" "$T/spec.yaml"
pass "loaded_modules with pyflyte's module list"

# no_copy: nothing copied, the path and the enum's repr hashed.
sed -i 's/loaded_modules/no_copy/' "$T/spec.yaml"
got_dict=$("$KILN" name --explain "$T/spec.yaml" | sed -n 2p)
assert_contains "$got_dict" "'source_root': 'proj'" "path hashed with no_copy"
assert_contains "$got_dict" "'source_copy_mode': <CopyFileDetection.NO_COPY: 3>" "mode hashed as flytekit's enum"
expect_exit 0 build --dry-run "$T/spec.yaml"
grep -q "^[0-9]*\. source:" "$T/out" && fail "source_root copied with no_copy"
printf 'source_copy_mode: all\n' >"$T/bad.yaml"
expect_exit 8 name "$T/bad.yaml"
assert_contains "$(cat "$T/err")" "bad.yaml:1:19: source_copy_mode: 'all' copies source_root, which is not set" "mode without root"
pass "source_copy_mode rules"
