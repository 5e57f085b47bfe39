# kiln pull of every test-bed image through every registry variant (plain
# HTTP, htpasswd basic auth, HTTPS with a private CA, bearer tokens) gives an
# OCI layout that skopeo reads, umoci unpacks, and skopeo copies back into a
# registry with the very same manifest digest.
. "$(dirname "$0")/lib.sh"

# Credentials reach kiln the ways users give them: an auth file, a docker
# config, --creds; the CA through --cert-dir and through SSL_CERT_FILE.
write_auth_file "$T/auth.json" "$KILN_TB_BASIC" "$KILN_TB_BASIC_USER" "$KILN_TB_BASIC_PASS"
mkdir -p "$DOCKER_CONFIG"
write_auth_file "$DOCKER_CONFIG/config.json" "$KILN_TB_TOKEN" "$KILN_TB_TOKEN_USER" "$KILN_TB_TOKEN_PASS"

# image   file that proves the rootfs unpacked
images="busybox:latest=bin/busybox busybox-multi:latest=bin/busybox debian:bookworm=usr/bin/apt-get python:bookworm=usr/bin/python3"

pull_via() { # variant host image dir ...kiln options
        local variant=$1 host=$2 image=$3 dir=$4
        shift 4
        export KILN_CACHE="$T/cache-$variant"
        "$KILN" pull -q --json "$@" "docker://$host/testbed/$image" -o "oci:$dir:v1" >"$T/pull.json" ||
                fail "pull $image via $variant"
}

for entry in $images; do
        image=${entry%%=*}
        probe=${entry#*=}
        name=${image%%:*}
        # The manifest skopeo sees in the registry for this host's platform.
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$KILN_TB_PLAIN/testbed/$image" >"$T/top.json"
        if jq -e '.manifests' "$T/top.json" >/dev/null; then
                want=$(jq -r '[.manifests[] | select(.platform.architecture=="amd64")][0].digest' "$T/top.json")
        else
                want=$(sha256_of "$T/top.json")
        fi
        for variant in plain basic tls tls-env token; do
                dir="$T/layout-$name-$variant"
                case $variant in
                plain) pull_via $variant "$KILN_TB_PLAIN" "$image" "$dir" ;;
                basic) REGISTRY_AUTH_FILE="$T/auth.json" pull_via $variant "$KILN_TB_BASIC" "$image" "$dir" ;;
                tls) pull_via $variant "$KILN_TB_TLS" "$image" "$dir" --cert-dir "$KILN_TB_CERT_DIR/$KILN_TB_TLS" ;;
                tls-env)
                        cat /etc/ssl/certs/ca-certificates.crt "$KILN_TB_CA" >"$T/bundle.pem"
                        SSL_CERT_FILE="$T/bundle.pem" pull_via $variant "$KILN_TB_TLS" "$image" "$dir" ;;
                token) pull_via $variant "$KILN_TB_TOKEN" "$image" "$dir" ;;
                esac
                got=$(jq -r .digest "$T/pull.json")
                assert_eq "$got" "$want" "$image via $variant: kiln's digest"
                # Judge 1: skopeo reads the layout and sees the same manifest.
                "${SKOPEO[@]}" inspect --raw "oci:$dir:v1" >"$T/m.json"
                assert_eq "$(sha256_of "$T/m.json")" "$want" "$image via $variant: skopeo's digest of the layout"
                # Judge 2: umoci unpacks it.
                rm -rf "$T/bundle"
                umoci unpack --rootless --image "$dir:v1" "$T/bundle" >/dev/null 2>"$T/umoci.err" ||
                        fail "umoci unpack $image via $variant: $(cat "$T/umoci.err")"
                [ -e "$T/bundle/rootfs/$probe" ] || [ -L "$T/bundle/rootfs/$probe" ] ||
                        fail "$image via $variant: /$probe missing after umoci unpack"
                pass "$image via $variant"
        done
        # Judge 3: skopeo copies the layout back; the registry gets the same digest.
        "${SKOPEO[@]}" copy -q "${NOTLS[@]}" "oci:$T/layout-$name-plain:v1" \
                "docker://$KILN_TB_PLAIN/roundtrip/$name:v1"
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$KILN_TB_PLAIN/roundtrip/$name:v1" >"$T/back.json"
        assert_eq "$(sha256_of "$T/back.json")" "$want" "$image: digest after skopeo copy back"
        pass "$image round trip"
done
