# platform linux/arm64 with steps that run programs: built through the
# kernel's binfmt_misc handing arm64 binaries to qemu-user when a handler
# is registered; otherwise an error that names the missing handler. As
# root, the test registers Debian's qemu-aarch64 handler (qemu-user-static)
# for the first half and removes it again if it was not there before.
. "$(dirname "$0")/lib.sh"

handler=/proc/sys/fs/binfmt_misc/qemu-aarch64
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
cat >"$T/spec.yaml" <<SPEC
name: arm
base_image: $KILN_TB_PLAIN/testbed/busybox-multi:latest
platform: linux/arm64
commands:
  - uname -m > /root/arch
SPEC

# The handler is the kernel's, one for every test suite on the machine:
# another run of this test (a second checkout's tools/test) removing it
# mid-way made runc fail with ENOEXEC. One run at a time holds it.
exec 7>"${TMPDIR:-/tmp}/kiln-e2e-binfmt.lock"
flock -w 600 7 || fail "timed out waiting for ${TMPDIR:-/tmp}/kiln-e2e-binfmt.lock"
registered_here=0
if [ "$(id -u)" = 0 ] && [ ! -e "$handler" ] && [ -f "$conf" ]; then
        [ -e /proc/sys/fs/binfmt_misc/register ] ||
                mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
        if [ -w /proc/sys/fs/binfmt_misc/register ] && grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register 2>/dev/null; then
                registered_here=1
        fi
fi
cleanup_binfmt() {
        if [ "$registered_here" = 1 ]; then
                echo -1 2>/dev/null >"$handler" || true
                registered_here=0
        fi
}
trap 'cleanup_binfmt; rm -rf "$T"' EXIT

if [ -e "$handler" ] && grep -q '^enabled' "$handler"; then
        expect_exit 0 build "$T/spec.yaml" -o "oci:$T/arm:x"
        assert_eq "$("${SKOPEO[@]}" inspect "oci:$T/arm:x" | jq -r .Architecture)" "arm64" "image architecture"
        umoci unpack --image "$T/arm:x" "$T/b" >/dev/null
        assert_eq "$(cat "$T/b/rootfs/root/arch")" "aarch64" "the command ran as arm64 under emulation"
        file_out=$(od -An -tx1 -j18 -N2 "$T/b/rootfs/bin/busybox" | tr -d ' ')
        assert_eq "$file_out" "b700" "the image's busybox is an aarch64 ELF"
        assert_eq "$(run_image "$T/b" 'uname -m; id -un')" "aarch64
flytekit" "runc runs the arm64 image through binfmt"
        pass "arm64 build with commands through binfmt_misc"
else
        echo "binfmt_misc handler for arm64 unavailable here: only the error is checked" >&2
fi

# Without the handler: a step already in the cache needs no emulation; one
# that must run is a clear error; a copy-only spec still builds.
cleanup_binfmt
if [ ! -e "$handler" ]; then
        if [ -d "$T/arm" ]; then
                expect_exit 0 build "$T/spec.yaml" -o "oci:$T/arm-cached:x"
                assert_contains "$(cat "$T/err")" "commands: uname -m > /root/arch (cached)" "cached arm64 step"
        fi
        expect_exit 9 build --no-cache "$T/spec.yaml" -o "oci:$T/arm2:x"
        assert_contains "$(cat "$T/err")" "platform linux/arm64 differs from this host's (linux/amd64)" "platform named"
        assert_contains "$(cat "$T/err")" "$handler is not registered" "missing handler named"
        [ ! -e "$T/arm2" ] || fail "a failed build wrote an output"
        mkdir -p "$T/c" && echo data >"$T/c/f.txt"
        printf 'name: armcopy\nbase_image: %s\nplatform: linux/arm64\ncopy: [f.txt]\n' \
                "$KILN_TB_PLAIN/testbed/busybox-multi:latest" >"$T/c/spec.yaml"
        expect_exit 0 build "$T/c/spec.yaml" -o "oci:$T/armcopy:x"
        assert_eq "$("${SKOPEO[@]}" inspect "oci:$T/armcopy:x" | jq -r .Architecture)" "arm64" "copy-only arm64 image"
        pass "no handler: commands refused with the reason, copies need no emulation"
fi
