#!/usr/bin/env bash
# The SBOM documents test_sbom makes validate against the SPDX 2.3 and
# CycloneDX 1.5 JSON schemas (tests/schemas, Debian's python3-jsonschema),
# and the validator fails each document with a required field dropped, so
# a pass means something.
set -euo pipefail
test_sbom=$1
schemas=$(cd "$(dirname "$0")/../schemas" && pwd)
dir=$(mktemp -d /tmp/kiln-sbom-schema-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$test_sbom" --documents "$dir" >/dev/null
validate() { /usr/bin/python3 "$schemas/validate.py" "$@"; }
validate spdx-2.3.schema.json "$dir/sbom.spdx.json"
validate cyclonedx-bom-1.5.schema.json "$dir/sbom.cdx.json"
# drop a required field: the document must fail
drop() {
        /usr/bin/python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(d, open(sys.argv[3], "w"))' "$1" "$2" "$3"
}
drop "$dir/sbom.spdx.json" 'del d["packages"][2]["downloadLocation"]' "$dir/bad.spdx.json"
drop "$dir/sbom.cdx.json" 'del d["components"][1]["name"]' "$dir/bad.cdx.json"
if validate spdx-2.3.schema.json "$dir/bad.spdx.json" 2>"$dir/err"; then
        echo "an SPDX package without downloadLocation passed" >&2
        exit 1
fi
grep -q downloadLocation "$dir/err"
if validate cyclonedx-bom-1.5.schema.json "$dir/bad.cdx.json" 2>"$dir/err"; then
        echo "a CycloneDX component without a name passed" >&2
        exit 1
fi
grep -q name "$dir/err"
echo "SPDX 2.3 and CycloneDX 1.5 documents valid; broken ones refused"
