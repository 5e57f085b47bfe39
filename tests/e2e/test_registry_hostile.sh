# A hostile or broken registry and token server, served by the test bed
# (tools/tbserver.py: the faulty proxy's crlftoken, trickle, head500 and
# manifest500 repositories, and the hostile HTTPS registry):
#  - credentials never go in clear text to a token realm that is not
#    loopback when the registry is HTTPS; a loopback realm still gets them;
#  - a token holding CR/LF is refused, never copied into a header;
#  - a trickling blob is aborted under the pace floor and retried, and
#    --timeout bounds a whole pull, and a build's push;
#  - a 500 to HEAD of a manifest is asked again with GET: a build then
#    pushes; only when the GET fails too is it an error.
. "$(dirname "$0")/lib.sh"

LOG_FAULTY=$KILN_TESTBED_STATE/faulty.log
LOG_HOSTILE=$KILN_TESTBED_STATE/hostile.log
creds=(--creds "kiln:$KILN_TB_BASIC_PASS")
since() { # log line-count: the lines written after the count was taken
        tail -n "+$(($2 + 1))" "$1"
}
# Runs kiln with a hang guard far above the expected seconds; exit code to
# $T/rc, like expect_exit otherwise.
guarded() {
        local got=0
        timeout 120 "$KILN" "$@" >"$T/out" 2>"$T/err" || got=$?
        echo "$got" >"$T/rc"
}

# ---- credentials and an HTTP realm on a host that is not loopback
# The realm is on this machine's global address (KILN_TB_HOSTILE_REALM_HOST),
# where the test bed listens and logs every request: on the code before,
# the Basic credentials arrived there. Without a global address the realm
# is a name that never resolves, and only the refusal is proved.
export SSL_CERT_FILE=$KILN_TB_CA
secret=$(head -c 15 /dev/urandom | base64 | tr '/+' '_-')
mark=$(wc -l <"$LOG_HOSTILE")
expect_exit 4 pull --creds "e2e:$secret" "docker://$KILN_TB_HOSTILE/e2e/x:latest" -o "oci:$T/o1"
assert_contains "$(cat "$T/err")" "$KILN_TB_HOSTILE is an HTTPS registry but its token realm http://$KILN_TB_HOSTILE_REALM_HOST:" "the realm is named"
assert_contains "$(cat "$T/err")" "is not HTTPS: refusing to send the credentials from --creds in clear text" "the refusal is said"
grep -qF -e "$secret" "$T/err" && fail "the password is in the message"
since "$LOG_HOSTILE" "$mark" | grep "realm " && fail "a request reached the HTTP realm"
[ -e "$T/o1" ] && fail "a failed pull left $T/o1"
case $KILN_TB_HOSTILE_REALM_HOST in
*.invalid) echo "note: no global address; the realm host does not resolve" ;;
esac
pass "Basic credentials: no HTTP realm off loopback for an HTTPS registry"

# A refresh token (docker login's identitytoken) is a credential too.
mkdir -p "$DOCKER_CONFIG"
printf '{"auths":{"%s":{"identitytoken":"%s"}}}\n' "$KILN_TB_HOSTILE" "$secret" >"$DOCKER_CONFIG/config.json"
mark=$(wc -l <"$LOG_HOSTILE")
expect_exit 4 pull "docker://$KILN_TB_HOSTILE/e2e/x:latest" -o "oci:$T/o1"
assert_contains "$(cat "$T/err")" "refusing to send the credentials from $DOCKER_CONFIG/config.json in clear text" "the refusal names the auth file"
grep -qF -e "$secret" "$T/err" && fail "the refresh token is in the message"
since "$LOG_HOSTILE" "$mark" | grep "realm " && fail "a request reached the HTTP realm"
rm "$DOCKER_CONFIG/config.json"
pass "refresh token: no HTTP realm off loopback"

# The same registry asked as localhost names a realm on 127.0.0.1: loopback
# realms (the test bed's) keep working, credentials included.
mark=$(wc -l <"$LOG_HOSTILE")
expect_exit 3 pull --creds "e2e:$secret" "docker://$KILN_TB_HOSTILE_HOST/e2e/x:latest" -o "oci:$T/o1"
assert_contains "$(cat "$T/err")" "MANIFEST_UNKNOWN" "the registry was asked with the token"
since "$LOG_HOSTILE" "$mark" | grep -e "realm GET .* via=127.0.0.1 auth=Basic" >/dev/null ||
        fail "the loopback realm did not get the credentials: $(since "$LOG_HOSTILE" "$mark")"
pass "loopback realm still gets credentials"
unset SSL_CERT_FILE

# ---- a token holding CR/LF
mark=$(wc -l <"$LOG_FAULTY")
expect_exit 4 pull "docker://$KILN_TB_FAULTY/crlftoken/busybox:latest" -o "oci:$T/o2"
assert_contains "$(cat "$T/err")" "token service http://$KILN_TB_FAULTY/_testbed/crlf-token: the token holds byte 0x0d at offset 16" "the token server and the byte are named"
grep -q "kiln-crlf-secret" "$T/err" && fail "the token is in the message"
since "$LOG_FAULTY" "$mark" | grep -e "crlf token issued" >/dev/null || fail "the token server was not asked"
since "$LOG_FAULTY" "$mark" | grep "INJECTED-HEADER" && fail "the token's header reached the registry"
pass "CR/LF token refused, no header injected"

# ---- a trickling blob (the test bed sends 512 bytes/s)
# Under the floor: aborted after each window, retried, then an error. The
# window and floor are shortened for the test (KILN_XFER_WINDOW/_FLOOR).
mark=$(wc -l <"$LOG_FAULTY")
KILN_XFER_FLOOR=2048 KILN_XFER_WINDOW=2s guarded pull "${creds[@]}" \
        "docker://$KILN_TB_FAULTY/$KILN_TB_IMG_TRICKLE" -o "oci:$T/o3"
assert_eq "$(cat "$T/rc")" 5 "exit code of a pull from a trickling registry ($(cat "$T/err"))"
assert_contains "$(cat "$T/err")" "transfer slower than 2048 bytes/s on average over 2s (a stalled or trickling server) (after retries)" "the floor is said"
tries=$(since "$LOG_FAULTY" "$mark" | grep -c "trickle started")
[ "$tries" -ge 5 ] || fail "the trickling blob was asked $tries times, want 5 attempts"
[ -e "$T/o3" ] && fail "a failed pull left $T/o3"
pass "trickle under the floor: aborted and retried ($tries GETs)"

# Over the floor but slow: --timeout bounds the whole pull.
KILN_XFER_FLOOR=100 KILN_XFER_WINDOW=2s guarded pull --timeout 5s "${creds[@]}" \
        "docker://$KILN_TB_FAULTY/$KILN_TB_IMG_TRICKLE" -o "oci:$T/o4"
assert_eq "$(cat "$T/rc")" 5 "exit code of a pull over its --timeout ($(cat "$T/err"))"
assert_contains "$(cat "$T/err")" "not done when the time allowed (--timeout 5s) ran out" "the deadline is said"
[ -e "$T/o4" ] && fail "a failed pull left $T/o4"
expect_exit 2 pull --timeout 5min "docker://$KILN_TB_PLAIN/$KILN_TB_IMG_BUSYBOX" -o "oci:$T/o5"
assert_contains "$(cat "$T/err")" '--timeout: "5min" is not a duration' "a bad --timeout is named"
pass "--timeout bounds a pull"

# A push to a registry that reads uploads at 64 bytes/s: --timeout bounds a
# build's push (the floor is lowered out of the way).
mkdir -p "$T/p"
cat >"$T/p/spec.yaml" <<SPEC
name: slowpush-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
registry: $KILN_TB_FAULTY/trickle
base_image: $KILN_TB_PLAIN/$KILN_TB_IMG_BUSYBOX
commands:
  - echo built > /marker
SPEC
mark=$(wc -l <"$LOG_FAULTY")
KILN_XFER_FLOOR=1 guarded build --push --timeout 5s "${creds[@]}" "$T/p/spec.yaml"
assert_eq "$(cat "$T/rc")" 5 "exit code of a push over its --timeout ($(cat "$T/err"))"
assert_contains "$(cat "$T/err")" "not done when the time allowed (--timeout 5s) ran out" "the deadline is said"
since "$LOG_FAULTY" "$mark" | grep -e "slow upload started" >/dev/null || fail "no upload reached the slow registry"
pass "--timeout bounds a build's push"

# ---- 500 to HEAD of a manifest that does not exist yet (Harbor)
mkdir -p "$T/s"
cat >"$T/s/spec.yaml" <<SPEC
name: head500-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
registry: $KILN_TB_FAULTY/head500
base_image: $KILN_TB_PLAIN/$KILN_TB_IMG_BUSYBOX
commands:
  - echo built > /marker
SPEC
mark=$(wc -l <"$LOG_FAULTY")
expect_exit 0 build --json --push "${creds[@]}" "$T/s/spec.yaml"
cp "$T/out" "$T/r1.json"
assert_eq "$(jq -r .skipped "$T/r1.json")" false "the first build is not skipped"
since "$LOG_FAULTY" "$mark" | grep -e "fault=head500-HEAD" >/dev/null || fail "the HEAD never got its 500"
image=$(jq -r .image "$T/r1.json")
got=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --creds "kiln:$KILN_TB_BASIC_PASS" --format '{{.Digest}}' "docker://$KILN_TB_BASIC/${image#*/}")
assert_eq "$got" "$(jq -r .digest "$T/r1.json")" "the pushed image, as skopeo reads it"
expect_exit 0 build --json --push "${creds[@]}" "$T/s/spec.yaml"
assert_eq "$(jq -r .skipped "$T/out")" true "the second build finds the image by GET"
assert_eq "$(jq -r .digest "$T/out")" "$(jq -r .digest "$T/r1.json")" "the digest the GET found"
pass "500 on HEAD: GET decides, the build pushes, then skips"

sed -i "s|^registry: .*|registry: $KILN_TB_FAULTY/manifest500|" "$T/s/spec.yaml"
expect_exit 5 build --push "${creds[@]}" "$T/s/spec.yaml"
assert_contains "$(cat "$T/err")" "exists: HEAD answered HTTP 500, and then GET: manifest $KILN_TB_FAULTY/manifest500/" "both answers are said"
assert_contains "$(cat "$T/err")" "UNKNOWN: unknown error (HTTP 500)" "the registry's error is said"
pass "500 on HEAD and GET: an error"
