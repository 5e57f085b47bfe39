#!/usr/bin/python3
"""Append a layer to an image of an OCI layout: append-layer.py LAYOUT REF TAR

TAR (an uncompressed tar, written by the test with exactly the entries it
wants, `./` included) becomes the image's top layer, gzip-compressed; the
config's diff_ids and history and the manifest follow, and REF names the
new manifest in index.json. Tests make hostile bases this way: setuid
files, a `./` entry of mode 0777, a sitecustomize.py."""
import gzip
import hashlib
import json
import os
import sys

MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF = "org.opencontainers.image.ref.name"


def put(layout, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d


def get(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def main():
    layout, ref, tar = sys.argv[1:4]
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    desc = next(m for m in index["manifests"] if m.get("annotations", {}).get(REF) == ref)
    manifest = json.loads(get(layout, desc["digest"]))
    config = json.loads(get(layout, manifest["config"]["digest"]))
    with open(tar, "rb") as f:
        raw = f.read()
    blob = gzip.compress(raw, mtime=0)
    config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(raw).hexdigest())
    config.setdefault("history", []).append({"created_by": "append-layer.py " + os.path.basename(tar)})
    cbytes = json.dumps(config).encode()
    manifest["config"] = {"mediaType": manifest["config"]["mediaType"],
                          "digest": put(layout, cbytes), "size": len(cbytes)}
    manifest["layers"].append({"mediaType": MT_LAYER, "digest": put(layout, blob), "size": len(blob)})
    mbytes = json.dumps(manifest).encode()
    desc.update(digest=put(layout, mbytes), size=len(mbytes))
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)


if __name__ == "__main__":
    main()
