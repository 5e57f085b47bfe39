#!/usr/bin/python3
"""Validates JSON documents against the schemas in this directory.

    validate.py SCHEMA FILE...    exit 0 when every FILE is valid

SCHEMA is a file name here (spdx-2.3.schema.json, cyclonedx-bom-1.5.schema.json,
oci-image-spec/image-manifest-schema.json ...). The OCI schemas use draft-4
`id` keys that move the base URI of nested `$ref`s, and CycloneDX refers to
its siblings by URL: every `$ref` is resolved by its file name in this
directory, so nothing is fetched. Uses Debian's python3-jsonschema.
"""
import json
import os
import sys
import urllib.parse

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))


def local_file(url):
    name = os.path.basename(urllib.parse.urlsplit(url).path)
    for d in (HERE, os.path.join(HERE, "oci-image-spec")):
        for candidate in (name, "cyclonedx-" + name):
            p = os.path.join(d, candidate)
            if name and os.path.isfile(p):
                return p
    raise jsonschema.RefResolutionError("no local schema for %s" % url)


def load(url):
    with open(local_file(url)) as f:
        return json.load(f)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.strip())
    path = os.path.join(HERE, sys.argv[1])
    with open(path) as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    resolver = jsonschema.RefResolver(
        base_uri="file://" + path, referrer=schema, handlers={"http": load, "https": load}
    )
    validator = cls(schema, resolver=resolver, format_checker=jsonschema.FormatChecker())
    bad = 0
    for doc in sys.argv[2:]:
        with open(doc) as f:
            data = json.load(f)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        for e in errors[:20]:
            where = "/".join(str(p) for p in e.path) or "(root)"
            print("%s: %s: %s" % (doc, where, e.message), file=sys.stderr)
        bad += bool(errors)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
