# An OCI layout's ref names follow the image spec's grammar (a component
# starts and ends with a letter or digit; '_' '-' '.' join two of them).
# flytekit's tags do not always: one in 32 starts with '_', some hold "__",
# and a tag_format may end in '_'. kiln writes such an image under the tag
# with a '0' put where the grammar needs one, says so, prints where it
# wrote each image, and skopeo reads every one back by that printed name.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/p/tree"
echo "refs" >"$T/p/tree/r.txt"
cd "$T/p"
spec() { # file n [tag_format]
        cat >"$1" <<SPEC
name: refs
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
copy: [tree]
env: {N: "$2"}
SPEC
        [ -z "${3:-}" ] || echo "tag_format: \"$3\"" >>"$1"
}
tag_of() { "$KILN" name --json "$1" | jq -r .tag; }

# Specs whose tags break the grammar each way, and one that keeps it.
want=(lead double trail valid)
declare -A found=()
for ((i = 0; i < 5000 && ${#found[@]} < 4; i++)); do
        spec try.yaml "$i"
        t=$(tag_of try.yaml)
        case $t in
        _*) kind=lead ;;
        *__*) kind=double ;;
        *) kind=valid ;;
        esac
        if [ -z "${found[$kind]:-}" ]; then
                found[$kind]=$i
                cp try.yaml "$kind.yaml"
        fi
        if [ -z "${found[trail]:-}" ] && [ "$kind" = valid ]; then
                spec trail.yaml "$i" "{spec_hash}_"
                found[trail]=$i
        fi
done
for k in "${want[@]}"; do
        [ -n "${found[$k]:-}" ] || fail "no spec with a '$k' tag in 5000 tries"
done
assert_contains "$(tag_of trail.yaml)" "_" "tag_format adds the trailing '_'"

expect_exit 0 build --json -o "oci:$T/layout" lead.yaml double.yaml trail.yaml valid.yaml
for k in "${want[@]}"; do
        tag=$(tag_of "$k.yaml")
        loc=$(jq -r --arg s "$k.yaml" '.[] | select(.spec == $s) | .outputs[0]' "$T/out")
        ref=${loc#"oci:$T/layout:"}
        [ "$ref" != "$loc" ] || fail "$k: printed output '$loc' is not in oci:$T/layout"
        # The ref is the tag with '0's put in, nothing else changed.
        assert_eq "$(printf %s "$ref" | sed 's/0//g')" "$(printf %s "$tag" | sed 's/0//g')" \
                "$k: ref $ref keeps tag $tag"
        if [ "$k" = valid ]; then
                assert_eq "$ref" "$tag" "a valid tag is the ref as it is"
        else
                [ "$ref" != "$tag" ] || fail "$k: tag $tag written unchanged"
                assert_contains "$(cat "$T/err")" "$tag is not a valid OCI ref name; the image is $ref" \
                        "$k: the rename is said"
        fi
        got=$("${SKOPEO[@]}" inspect "$loc" | jq -r .Digest) || fail "$k: skopeo cannot read $loc"
        assert_eq "$got" "$(jq -r --arg s "$k.yaml" '.[] | select(.spec == $s) | .digest' "$T/out")" \
                "$k: skopeo reads the built image at $loc"
done
assert_eq "$(jq '.manifests | length' "$T/layout/index.json")" "4" "four images in the layout"
pass "layout refs for tags starting, ending and doubling '_' (skopeo reads all four)"

# The text output prints where each image went, as a name skopeo reads.
expect_exit 0 build -o "oci:$T/single" valid.yaml
loc=$(sed -n 's/^  written: //p' "$T/out")
assert_eq "$loc" "oci:$T/single:latest" "one spec without a ref: latest, printed"
"${SKOPEO[@]}" inspect "$loc" >/dev/null || fail "skopeo cannot read $loc"
# A ref the user names must itself be one.
expect_exit 2 build -o "oci:$T/bad:_x" valid.yaml
assert_contains "$(cat "$T/err")" 'invalid image name "_x"' "a bad -o ref is refused"
pass "printed outputs; a bad -o ref is refused"
