# Attestations: kiln build attaches an SBOM and a SLSA provenance to the
# image as OCI 1.1 referrers. On the test bed's registry (distribution 2.8,
# no referrers API) they are found through the tag schema by skopeo; through
# the faulty proxy's referrers/ repositories (an emulated referrers API) no
# tag is written and kiln reads them through the API; in an oci: layout
# they sit in index.json beside the image, which skopeo still reads by tag.
# Every manifest and index is judged by the OCI image-spec's schemas, the
# SBOM by SPDX's and CycloneDX's, and the provenance carries no credential
# and no secret's content.
. "$(dirname "$0")/lib.sh"

VALIDATE=(/usr/bin/python3 "$KILN_SRC/tests/schemas/validate.py")
PW1=url-pw-$RANDOM$RANDOM
PW2=extra-pw-$RANDOM$RANDOM
SECRET=secret-content-$RANDOM$RANDOM
mkdir -p "$T/p"
# a new image every run: the registry keeps what earlier runs pushed
printf 'run %s\n' "$(basename "$T")" >"$T/p/f.txt"
printf 'machine x login y password %s\n' "$SECRET" >"$T/p/netrc"
cat >"$T/p/spec.yaml" <<SPEC
name: attest
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
pip_index: http://kiln:$PW1@$KILN_TB_PLAIN/simple
pip_extra_index_url: ["http://tok:$PW2@127.0.0.1:9/simple"]
pip_secret_mounts: [[netrc, /root/.netrc]]
copy: [f.txt]
commands: ["echo built > /root/built"]
SPEC

(cd "$T/p" && "$KILN" build -q --json --push spec.yaml -o "oci:$T/lay:v1") >"$T/b.json" 2>"$T/b.err" ||
        { cat "$T/b.err" >&2; fail "build"; }
NAME=$(jq -r .image "$T/b.json")
DIGEST=$(jq -r .digest "$T/b.json")
REPO=${NAME%:*}
BASE=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$KILN_TB_PLAIN/testbed/busybox:latest" |
        sha256sum | cut -d' ' -f1)

# --- the registry: the referrers tag schema, read by skopeo ---
"${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$REPO:sha256-${DIGEST#sha256:}" >"$T/refs.json" ||
        fail "no sha256-<hex> tag for the image"
"${VALIDATE[@]}" oci-image-spec/image-index-schema.json "$T/refs.json" >/dev/null ||
        fail "the referrers index is not a valid OCI index"
assert_eq "$(jq -r '[.manifests[].artifactType] | sort | join(" ")' "$T/refs.json")" \
        "application/spdx+json application/vnd.in-toto+json" "artifact types in the tag schema"
for d in $(jq -r '.manifests[].digest' "$T/refs.json"); do
        "${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$REPO@$d" >"$T/art.json" ||
                fail "artifact $d not in the registry"
        "${VALIDATE[@]}" oci-image-spec/image-manifest-schema.json "$T/art.json" >/dev/null ||
                fail "artifact $d is not a valid OCI manifest"
        assert_eq "$(jq -r .subject.digest "$T/art.json")" "$DIGEST" "subject of $d"
        assert_eq "$(jq -r .config.digest "$T/art.json")" \
                "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" \
                "config of $d is the empty descriptor"
done
pass "the registry lists both referrers under sha256-<hex>; each is a valid manifest on the image"

# --- kiln reads them back, from the registry and from the layout ---
for src in "docker://$NAME" "oci:$T/lay:v1" "oci:$T/lay"; do
        "$KILN" provenance "$src" >"$T/prov.json" || fail "kiln provenance $src"
        assert_eq "$(jq -r .predicateType "$T/prov.json")" "https://slsa.dev/provenance/v1" \
                "predicate type ($src)"
        assert_eq "$(jq -r '.subject[0].digest.sha256' "$T/prov.json")" "${DIGEST#sha256:}" \
                "provenance subject ($src)"
        assert_eq "$(jq -r '.predicate.buildDefinition.resolvedDependencies[] |
                select(.name == "base") | .digest.sha256' "$T/prov.json")" "$BASE" \
                "provenance names the base's digest ($src)"
        assert_eq "$(jq -r '.predicate.buildDefinition.externalParameters.spec.pip_index' \
                "$T/prov.json")" "http://$KILN_TB_PLAIN/simple" "index URL without credentials"
        assert_eq "$(jq -r '.predicate.buildDefinition.externalParameters.spec.pip_secret_mounts |
                join(",")' "$T/prov.json")" "/root/.netrc" "a secret mount only by its target"
        assert_eq "$(jq -r '[.predicate.runDetails.byproducts[].annotations.kind] | join(" ")' \
                "$T/prov.json")" "ca-certs user env runtime-env copy commands user-config profile" \
                "a byproduct per step"
        "$KILN" sbom "$src" >"$T/sbom.json" || fail "kiln sbom $src"
        "${VALIDATE[@]}" spdx-2.3.schema.json "$T/sbom.json" >/dev/null ||
                fail "the SBOM of $src is not valid SPDX 2.3"
done
pass "kiln provenance and kiln sbom read them from the registry and the layout"

# --- no credential, no secret anywhere: provenance, SBOM, layout, registry ---
for f in "$T/prov.json" "$T/sbom.json" "$T/refs.json" "$T/b.err"; do
        for s in "$PW1" "$PW2" "$SECRET"; do
                ! grep -q "$s" "$f" || fail "$s leaked into $(basename "$f")"
        done
done
for s in "$PW1" "$PW2" "$SECRET"; do
        ! grep -rq "$s" "$T/lay" || fail "$s leaked into the layout"
done
pass "no credential or secret content in the attestations"

# --- the layout: referrers in index.json, the image still read by tag ---
"${VALIDATE[@]}" oci-image-spec/image-index-schema.json "$T/lay/index.json" >/dev/null ||
        fail "index.json is not a valid OCI index"
assert_eq "$(jq -r '[.manifests[] | select(.artifactType) |
        .annotations["org.opencontainers.image.ref.name"] // "none"] | join(" ")' "$T/lay/index.json")" \
        "none none" "referrers in index.json carry no ref name"
"${SKOPEO[@]}" copy -q "oci:$T/lay:v1" "oci:$T/copy:v1" || fail "skopeo copy from the layout by tag"
"${SKOPEO[@]}" copy -q "${NOTLS[@]/--tls-verify/--src-tls-verify}" "docker://$NAME" "oci:$T/copy2:x" ||
        fail "skopeo copy from the registry"
assert_eq "$("${SKOPEO[@]}" inspect --raw "oci:$T/copy2:x" | sha256sum | cut -d' ' -f1)" \
        "${DIGEST#sha256:}" "skopeo copies the image itself"
pass "skopeo still copies the image, from the registry and the layout"

# --- a rebuild from the cache attaches the same documents, not new ones ---
(cd "$T/p" && "$KILN" build -q --json --push --force spec.yaml -o "oci:$T/again:v1") \
        >"$T/b2.json" 2>/dev/null || fail "rebuild"
assert_eq "$(jq -r .newLayers "$T/b2.json")" "0" "the rebuild came from the cache"
"${SKOPEO[@]}" inspect "${NOTLS[@]}" --raw "docker://$REPO:sha256-${DIGEST#sha256:}" >"$T/refs2.json"
assert_eq "$(jq -c '[.manifests[].digest] | sort' "$T/refs2.json")" \
        "$(jq -c '[.manifests[].digest] | sort' "$T/refs.json")" "referrers after the rebuild"
assert_eq "$(jq -c '[.manifests[] | select(.artifactType) | .digest] | sort' "$T/again/index.json")" \
        "$(jq -c '[.manifests[].digest] | sort' "$T/refs.json")" "referrers in the rebuild's layout"
pass "a cached image keeps its attestations: none added, both in a new layout"

# --- several platforms: each platform's image has its own ---
mkdir -p "$T/mp"
cp "$T/p/f.txt" "$T/mp/f.txt"
cat >"$T/mp/spec.yaml" <<SPEC
name: attest-mp
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/$KILN_TB_IMG_BUSYBOX_MULTI
platform: linux/amd64,linux/arm64
copy: [f.txt]
SPEC
(cd "$T/mp" && "$KILN" build -q --json --push spec.yaml -o "oci:$T/mplay:v1") >"$T/mp.json" \
        2>"$T/mp.err" || { cat "$T/mp.err" >&2; fail "two-platform build"; }
assert_eq "$(jq '[.manifests[] | select(.artifactType)] | length' "$T/mplay/index.json")" "4" \
        "two referrers per platform in the layout"
for p in amd64 arm64; do
        want=$(jq -r --arg a "$p" '.platforms[] | select(.platform.architecture == $a) | .digest' \
                "$T/mp.json")
        "$KILN" provenance --platform "linux/$p" "docker://$(jq -r .image "$T/mp.json")" \
                >"$T/mprov.json" || fail "provenance of linux/$p"
        assert_eq "sha256:$(jq -r '.subject[0].digest.sha256' "$T/mprov.json")" "$want" \
                "provenance subject of linux/$p"
        assert_eq "$(jq -r .predicate.buildDefinition.internalParameters.platform "$T/mprov.json")" \
                "linux/$p" "provenance platform"
        "$KILN" sbom --platform "linux/$p" "oci:$T/mplay:v1" >"$T/msbom.json" ||
                fail "SBOM of linux/$p from the layout"
        "${VALIDATE[@]}" spdx-2.3.schema.json "$T/msbom.json" >/dev/null || fail "SPDX of linux/$p"
done
pass "each platform of an index has its own attestations"

# --- CycloneDX, and turning them off ---
(cd "$T/p" && "$KILN" build -q --sbom-format cyclonedx --provenance=false spec.yaml \
        -o "oci:$T/cdx:v1") >/dev/null 2>&1 || fail "build with --sbom-format cyclonedx"
"$KILN" sbom --format cyclonedx "oci:$T/cdx:v1" >"$T/cdx.json" || fail "kiln sbom --format cyclonedx"
"${VALIDATE[@]}" cyclonedx-bom-1.5.schema.json "$T/cdx.json" >/dev/null ||
        fail "the CycloneDX SBOM is not valid CycloneDX 1.5"
expect_exit 3 provenance "oci:$T/cdx:v1"
assert_contains "$(cat "$T/err")" "no provenance is attached" "--provenance=false: none attached"
(cd "$T/p" && "$KILN" build -q --sbom=false --provenance=false spec.yaml -o "oci:$T/none:v1") \
        >/dev/null 2>&1 || fail "build with both off"
assert_eq "$(jq '.manifests | length' "$T/none/index.json")" "1" "nothing beside the image"
expect_exit 3 sbom "oci:$T/none:v1"
expect_exit 2 build --sbom=maybe "$T/p/spec.yaml"
pass "CycloneDX validates; --sbom=false and --provenance=false attach nothing"

# --- a registry with the referrers API (the faulty proxy under referrers/) ---
PASS_BASIC=$(cat "$KILN_TESTBED_STATE/basic.pass")
probe=$(curl -s -o /dev/null -w '%{http_code}' -u "kiln:$PASS_BASIC" \
        "http://$KILN_TB_FAULTY/v2/referrers/none/referrers/sha256:$(printf '0%.0s' {1..64})")
if [ "$probe" != 200 ]; then
        [ "${CI:-}" != true ] || fail "the test bed's faulty proxy has no referrers API"
        echo "SKIP: the running test bed predates the referrers emulation (restart it)"
        exit 77
fi
sed -e "s|^registry: .*|registry: $KILN_TB_FAULTY/referrers|" \
        -e "s|^base_image: .*|base_image: $KILN_TB_FAULTY/testbed/busybox:latest|" \
        "$T/p/spec.yaml" >"$T/p/api.yaml"
(cd "$T/p" && "$KILN" build -q --json --push --creds "kiln:$PASS_BASIC" api.yaml) >"$T/a.json" ||
        fail "build pushed to the referrers API"
ANAME=$(jq -r .image "$T/a.json")
ADIGEST=$(jq -r .digest "$T/a.json")
! "${SKOPEO[@]}" inspect "${NOTLS[@]}" --creds "kiln:$PASS_BASIC" --raw \
        "docker://${ANAME%:*}:sha256-${ADIGEST#sha256:}" >/dev/null 2>&1 ||
        fail "a registry with the referrers API got a tag-schema index too"
"$KILN" provenance --creds "kiln:$PASS_BASIC" "$ANAME" >"$T/aprov.json" ||
        fail "kiln provenance through the referrers API"
assert_eq "$(jq -r '.subject[0].digest.sha256' "$T/aprov.json")" "${ADIGEST#sha256:}" \
        "provenance through the API"
grep -q "referrers/$ADIGEST fault=referrers-get-[1-9]" "$KILN_TESTBED_STATE/faulty.log" ||
        fail "kiln did not read the referrers API"
pass "through the referrers API: no tag written, kiln reads them back"
