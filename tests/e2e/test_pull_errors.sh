# Failures are clear, exit with the documented code, and leave nothing
# half-written: no output layout or archive, no blob in the cache that does
# not match its name, no temp files.
. "$(dirname "$0")/lib.sh"

no_output() { # path what
        [ ! -e "$1" ] || fail "$2: $1 exists after a failed pull"
}
cache_clean() { # what
        if [ -d "$KILN_CACHE/blobs/sha256" ]; then
                for f in "$KILN_CACHE"/blobs/sha256/*; do
                        [ -e "$f" ] || continue
                        [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(basename "$f")" ] ||
                                fail "$1: cache holds $f whose content does not match its name"
                done
        fi
        [ -z "$(ls -A "$KILN_CACHE/tmp" 2>/dev/null)" ] || fail "$1: temp files left in the cache"
}

# Wrong password: exit 4, the registry named, the password never printed.
expect_exit 4 pull --creds "$KILN_TB_BASIC_USER:wrong-$KILN_TB_BASIC_PASS" \
        "docker://$KILN_TB_BASIC/testbed/busybox:latest" -o "oci:$T/out1"
assert_contains "$(cat "$T/err")" "authentication failed" "wrong password message"
assert_contains "$(cat "$T/err")" "$KILN_TB_BASIC" "wrong password names the registry"
grep -q "wrong-$KILN_TB_BASIC_PASS" "$T/err" "$T/out" && fail "the password was printed"
no_output "$T/out1" "wrong password"
pass "wrong password (basic)"

expect_exit 4 pull --creds "$KILN_TB_TOKEN_USER:nope" \
        "docker://$KILN_TB_TOKEN/testbed/busybox:latest" -o "oci:$T/out2"
assert_contains "$(cat "$T/err")" "authentication failed" "wrong token password message"
no_output "$T/out2" "wrong password (token)"
pass "wrong password (token)"

# No credentials at all.
expect_exit 4 pull "docker://$KILN_TB_BASIC/testbed/busybox:latest" -o "oci:$T/out3"
assert_contains "$(cat "$T/err")" "no credentials" "missing credentials message"
pass "no credentials"

# Unknown tag: exit 3 and the full reference named.
expect_exit 3 pull "docker://$KILN_TB_PLAIN/testbed/busybox:no-such-tag" -o "oci:$T/out4"
assert_contains "$(cat "$T/err")" "$KILN_TB_PLAIN/testbed/busybox:no-such-tag" "unknown tag names the ref"
no_output "$T/out4" "unknown tag"
pass "unknown tag"

# Unknown repository.
expect_exit 3 pull "docker://$KILN_TB_PLAIN/testbed/nothing-here:latest" -o "oci:$T/out5"
pass "unknown repository"

# A registry serving a corrupted blob: exit 6, both digests named, nothing kept.
expect_exit 6 pull --creds "$KILN_TB_BASIC_USER:$KILN_TB_BASIC_PASS" \
        "docker://$KILN_TB_FAULTY/corrupt/busybox:latest" -o "oci:$T/out6"
assert_contains "$(cat "$T/err")" "does not match its digest" "corrupt blob message"
no_output "$T/out6" "corrupt blob"
cache_clean "corrupt blob"
pass "corrupted blob refused"

# Same for an archive output: no file appears.
expect_exit 6 pull --creds "$KILN_TB_BASIC_USER:$KILN_TB_BASIC_PASS" \
        "docker://$KILN_TB_FAULTY/corrupt/busybox:latest" -o "oci-archive:$T/out7.tar"
no_output "$T/out7.tar" "corrupt blob to archive"
ls "$T" | grep -q 'out7.tar.tmp' && fail "temp archive left behind"
pass "corrupted blob, archive output"

# Blobs redirected to another host: followed, without the Authorization
# header (the blob store answers 400 if it receives one).
export KILN_CACHE="$T/cache-redirect"
"$KILN" pull -q --creds "$KILN_TB_BASIC_USER:$KILN_TB_BASIC_PASS" \
        "docker://$KILN_TB_FAULTY/redirect/busybox:latest" -o "oci:$T/out8:v1" ||
        fail "pull through a redirect to another host"
"${SKOPEO[@]}" inspect "oci:$T/out8:v1" >/dev/null || fail "skopeo cannot read the redirected pull"
grep -q "GET /blobs/sha256:" "$KILN_TESTBED_STATE/blobstore.log" || fail "the blob store was never asked"
pass "redirect to another host, credentials not forwarded"

# A registry that answers 503/429 and drops connections mid-body: retried.
export KILN_CACHE="$T/cache-flaky"
"$KILN" pull -q --creds "$KILN_TB_BASIC_USER:$KILN_TB_BASIC_PASS" \
        "docker://$KILN_TB_FAULTY/flaky/busybox:latest" -o "oci:$T/out9:v1" ||
        fail "pull from a flaky registry"
"${SKOPEO[@]}" inspect "oci:$T/out9:v1" >/dev/null || fail "skopeo cannot read the flaky pull"
cache_clean "flaky"
pass "retries through 503, 429 and dropped connections"

# A registry that is not there: network error, exit 5.
expect_exit 5 pull "docker://127.0.0.1:1/testbed/busybox:latest" -o "oci:$T/out10"
no_output "$T/out10" "unreachable registry"
pass "unreachable registry"

# An HTTPS registry whose CA is unknown: refused, with the way out named.
expect_exit 5 pull "docker://$KILN_TB_TLS/testbed/busybox:latest" -o "oci:$T/out11"
assert_contains "$(cat "$T/err")" "certificate" "untrusted certificate message"
pass "untrusted certificate"
# ... unless the host is named insecure.
"$KILN" pull -q --insecure-registry "$KILN_TB_TLS" "docker://$KILN_TB_TLS/testbed/busybox:latest" \
        -o "oci:$T/out11b:x" || fail "--insecure-registry for an untrusted HTTPS registry"
pass "--insecure-registry"

# Bad references and destinations are usage errors.
expect_exit 2 pull "docker://$KILN_TB_PLAIN/Testbed/BusyBox" -o "oci:$T/out12"
assert_contains "$(cat "$T/err")" "lowercase" "uppercase repository message"
expect_exit 2 pull "docker://$KILN_TB_PLAIN/testbed/busybox" -o "ftp:$T/out13"
pass "usage errors"

# An unwritable destination: error, cache intact.
mkdir -p "$T/ro" && chmod 555 "$T/ro"
if [ "$(id -u)" != 0 ]; then
        expect_exit 1 pull "docker://$KILN_TB_PLAIN/testbed/busybox:latest" -o "oci:$T/ro/x"
fi
# A file where the layout directory should be.
echo data >"$T/notadir"
expect_exit 2 pull "docker://$KILN_TB_PLAIN/testbed/busybox:latest" -o "oci:$T/notadir"
assert_eq "$(cat "$T/notadir")" "data" "file in the way is untouched"
pass "unwritable destination"
