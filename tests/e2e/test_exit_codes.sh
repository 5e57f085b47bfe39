# The exit codes of issue 11 item 7, judged on the binary: a base layer
# with an over-long name or a hardlink to a missing target is a malformed
# layer (exit 7, the entry named), not a host failure (exit 1); a spec file
# over 1 MiB is an invalid spec (exit 8, the file named), as the same text
# on the command line is; `kiln name` refuses a registry that is no
# registry (exit 8), as `kiln build` does, instead of printing a name no
# registry can hold.
. "$KILN_SRC/tests/e2e/lib.sh"

# Malformed base layers, each on top of busybox.
python3 - "$T" <<'PY'
import io, sys, tarfile
def layer(path, entries):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, link in entries:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.linkname = kind, 0o644, 1, link
            if kind == tarfile.DIRTYPE:
                ti.mode = 0o755
            data = b"x" if kind == tarfile.REGTYPE else b""
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data else None)
layer(sys.argv[1] + "/longname.tar", [("opt/" + "n" * 300, tarfile.REGTYPE, "")])
layer(sys.argv[1] + "/hardlink.tar", [("opt/", tarfile.DIRTYPE, ""), ("opt/dl", tarfile.SYMTYPE, "opt"),
                                      ("opt/hl", tarfile.LNKTYPE, "opt/dl/missing")])
PY
for bad in longname hardlink; do
        push_with_layer "$KILN_TB_IMG_BUSYBOX" "kiln-e2e/$bad:v1" "$T/$bad.tar"
        printf 'name: bad\nbase_image: %s/kiln-e2e/%s:v1\ncommands: ["true"]\n' "$KILN_TB_PLAIN" "$bad" \
                >"$T/$bad.yaml"
        expect_exit 7 build "$T/$bad.yaml" -o "oci:$T/img-$bad"
        case $bad in
        longname) assert_contains "$(cat "$T/err")" "opt/nnnnnnnn" "the entry named" ;;
        hardlink) assert_contains "$(cat "$T/err")" "opt/hl" "the entry named" ;;
        esac
        [ ! -e "$T/img-$bad" ] || fail "$bad: output written"
        pass "$bad layer: exit 7, entry named"
done

# A spec file one byte over 1 MiB.
python3 - "$T/big.yaml" "$KILN_TB_PLAIN/$KILN_TB_IMG_BUSYBOX" <<'PY'
import sys
head = "name: big\nbase_image: %s\ncommands:\n" % sys.argv[2]
body = '  - "true"\n' * (1024 * 1024 // 11 + 1)
open(sys.argv[1], "w").write((head + body)[:1024 * 1024 + 1])
PY
assert_eq "$(stat -c %s "$T/big.yaml")" $((1024 * 1024 + 1)) "spec size"
expect_exit 8 name "$T/big.yaml"
assert_contains "$(cat "$T/err")" "big.yaml" "the file named"
assert_contains "$(cat "$T/err")" "larger than 1048576 bytes" "the reason"
expect_exit 8 build "$T/big.yaml" -o "oci:$T/img-big"
pass "a spec over 1 MiB: exit 8, file named"

# registry: a path that climbs out, or labels no host has.
for reg in 'localhost:5000/../../x' '..' 'ghcr..io' 'ghcr.io/org-'; do
        printf 'name: app\nregistry: "%s"\nbase_image: %s/%s\n' "$reg" "$KILN_TB_PLAIN" "$KILN_TB_IMG_BUSYBOX" \
                >"$T/reg.yaml"
        expect_exit 8 name "$T/reg.yaml"
        assert_contains "$(cat "$T/err")" "is not a registry" "kiln name, registry $reg"
        expect_exit 8 build "$T/reg.yaml" -o "oci:$T/img-reg"
        assert_contains "$(cat "$T/err")" "is not a registry" "kiln build, registry $reg"
done
pass "kiln name and kiln build refuse the same registries (exit 8)"
