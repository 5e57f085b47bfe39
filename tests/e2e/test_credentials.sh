# Where credentials come from: the auth files in their order, credential
# helpers (credHelpers and credsStore), docker.io aliases.
. "$(dirname "$0")/lib.sh"

img="testbed/busybox:latest"
u=$KILN_TB_BASIC_USER
p=$KILN_TB_BASIC_PASS

# $XDG_RUNTIME_DIR/containers/auth.json
write_auth_file "$XDG_RUNTIME_DIR/containers/auth.json" "$KILN_TB_BASIC" "$u" "$p"
"$KILN" pull -q "docker://$KILN_TB_BASIC/$img" -o "oci:$T/a:x" || fail "XDG_RUNTIME_DIR auth.json"
pass "containers auth.json"

# $REGISTRY_AUTH_FILE wins over it: a wrong password there must be used.
write_auth_file "$T/bad.json" "$KILN_TB_BASIC" "$u" "bad"
REGISTRY_AUTH_FILE="$T/bad.json" expect_exit 4 pull "docker://$KILN_TB_BASIC/$img" -o "oci:$T/b:x"
assert_contains "$(cat "$T/err")" "$T/bad.json" "the error names the auth file used"
pass "REGISTRY_AUTH_FILE first"
rm "$XDG_RUNTIME_DIR/containers/auth.json"

# A credential helper named in credHelpers.
mkdir -p "$T/bin" "$DOCKER_CONFIG"
cat >"$T/bin/docker-credential-kilntest" <<HELPER
#!/bin/sh
[ "\$1" = get ] || exit 1
read host
echo "\$host" >>"$T/helper.log"
if [ "\$host" = "$KILN_TB_BASIC" ]; then
        printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "\$host" "$u" "$p"
else
        echo "credentials not found in native keychain"; exit 1
fi
HELPER
chmod +x "$T/bin/docker-credential-kilntest"
printf '{"credHelpers":{"%s":"kilntest"}}\n' "$KILN_TB_BASIC" >"$DOCKER_CONFIG/config.json"
PATH="$T/bin:$PATH" "$KILN" pull -q "docker://$KILN_TB_BASIC/$img" -o "oci:$T/c:x" || fail "credHelpers"
grep -qx "$KILN_TB_BASIC" "$T/helper.log" || fail "the helper was not asked for the host"
pass "credHelpers"

printf '{"credsStore":"kilntest"}\n' >"$DOCKER_CONFIG/config.json"
PATH="$T/bin:$PATH" "$KILN" pull -q "docker://$KILN_TB_BASIC/$img" -o "oci:$T/d:x" || fail "credsStore"
pass "credsStore"

# Token auth with credentials in the docker config.
write_auth_file "$DOCKER_CONFIG/config.json" "$KILN_TB_TOKEN" "$KILN_TB_TOKEN_USER" "$KILN_TB_TOKEN_PASS"
"$KILN" pull -q "docker://$KILN_TB_TOKEN/$img" -o "oci:$T/e:x" || fail "token auth from docker config"
pass "bearer token with docker config credentials"

# Anonymous pull from a repository the token service opens to everyone.
rm "$DOCKER_CONFIG/config.json"
"$KILN" pull -q "docker://$KILN_TB_TOKEN/public/busybox:latest" -o "oci:$T/f:x" || fail "anonymous token"
pass "anonymous bearer token"

# A malformed auth file is an error that names it.
echo '{"auths": ' >"$T/broken.json"
REGISTRY_AUTH_FILE="$T/broken.json" expect_exit 7 pull "docker://$KILN_TB_BASIC/$img" -o "oci:$T/g:x"
assert_contains "$(cat "$T/err")" "$T/broken.json" "malformed auth file named"
pass "malformed auth file"
