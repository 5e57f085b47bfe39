#!/usr/bin/python3
"""Write OCI image layouts from a root filesystem, without Docker.

  mkimage.py image --rootfs DIR|TAR --out LAYOUT --ref REF --arch amd64 \
      [--variant v8] [--os linux] [--env K=V]... [--cmd JSON] \
      [--owner UID:GID] [--epoch N] [--created-by TEXT]
  mkimage.py image ... --base LAYOUT:REF [--device PATH:c|b:MAJOR:MINOR]... \
      [--file PATH:MODE:SRC]...
  mkimage.py index --out LAYOUT --ref REF SRC_LAYOUT:SRC_REF...

`image` writes one gzip layer holding a deterministic tar of the rootfs
(entries sorted by name, owners kept, mtimes kept or clamped to --epoch /
$SOURCE_DATE_EPOCH), a config, a manifest, and an index.json entry with
org.opencontainers.image.ref.name = REF. `index` combines platform images
from other layouts into one image index (multi-platform image) under REF.
With --base the layer goes on top of that image's layers (its config's
Env and Cmd are kept unless given). --device and --file append entries
no rootfs directory holds without privileges: device nodes (mode 0666)
and root-owned files with any mode (setuid), e.g. for a hostile base.
An existing layout at --out is extended; an entry with the same REF is
replaced.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"


def canon_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class HashingWriter:
    """File-like sink that hashes (and counts) what passes through it."""

    def __init__(self, inner):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def flush(self):
        self.inner.flush()

    def digest(self):
        return "sha256:" + self.sha.hexdigest()


class Layout:
    def __init__(self, path):
        self.path = path
        self.blobs = os.path.join(path, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def blob_path(self, digest):
        algo, hexd = digest.split(":", 1)
        if algo != "sha256" or len(hexd) != 64:
            raise ValueError("unsupported digest " + digest)
        return os.path.join(self.blobs, hexd)

    def put_bytes(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        p = self.blob_path(digest)
        if not os.path.exists(p):
            tmp = p + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, p)
        return digest, len(data)

    def put_file(self, src, digest):
        p = self.blob_path(digest)
        if not os.path.exists(p):
            try:
                os.link(src, p)
            except OSError:
                shutil.copyfile(src, p)
        return p

    def read_blob(self, digest):
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def load_index(self):
        p = os.path.join(self.path, "index.json")
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
        return {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}

    def set_ref(self, desc, ref):
        index = self.load_index()
        index["manifests"] = [
            m
            for m in index.get("manifests", [])
            if m.get("annotations", {}).get(REF_ANNOTATION) != ref
        ]
        desc = dict(desc)
        desc["annotations"] = {REF_ANNOTATION: ref}
        index["manifests"].append(desc)
        tmp = os.path.join(self.path, "index.json.tmp")
        with open(tmp, "wb") as f:
            f.write(canon_json(index))
        os.rename(tmp, os.path.join(self.path, "index.json"))

    def find_ref(self, ref):
        for m in self.load_index().get("manifests", []):
            if m.get("annotations", {}).get(REF_ANNOTATION) == ref:
                return m
        raise KeyError("%s: no reference %r" % (self.path, ref))


def norm_name(name):
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/")
    return name.rstrip("/")


def tar_members_from_dir(root, owner, tar):
    """Yield (TarInfo, path-or-None) for every entry under root, sorted."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            entries.append((os.path.relpath(full, root), full))
    entries.sort(key=lambda e: e[0])
    for rel, full in entries:
        st = os.lstat(full)
        if stat.S_ISSOCK(st.st_mode):
            continue
        # the TarFile remembers inodes: later hard links become LNKTYPE
        ti = tar.gettarinfo(full, arcname=rel)
        ti.uname = ""
        ti.gname = ""
        if owner is not None:
            ti.uid, ti.gid = owner
        yield ti, (full if ti.isreg() else None)


def tar_members_from_tar(path, owner):
    """Yield (TarInfo, fileobj-or-None) sorted by name from a tar file.

    Hard links must point at an earlier entry; after sorting, the first
    member of each hard-link group carries the data."""
    src = tarfile.open(path, "r:*")
    members = []
    for m in src.getmembers():
        m.name = norm_name(m.name)
        if m.islnk():
            m.linkname = norm_name(m.linkname)
        if m.name in ("", "."):
            continue
        members.append(m)
    by_name = {m.name: m for m in members}
    # group hard links by their data-carrying target
    group_of = {}
    for m in members:
        if m.islnk():
            tgt = m.linkname
            while tgt in by_name and by_name[tgt].islnk():
                tgt = by_name[tgt].linkname
            group_of[m.name] = tgt
        elif m.isreg():
            group_of.setdefault(m.name, m.name)
    members.sort(key=lambda m: m.name)
    first_of_group = {}
    for m in members:
        if owner is not None:
            m.uid, m.gid = owner
            m.uname = m.gname = ""
        grp = group_of.get(m.name)
        if grp is None:
            yield m, None
            continue
        data_member = by_name[grp]
        if grp not in first_of_group:
            first_of_group[grp] = m.name
            out = tarfile.TarInfo(m.name)
            for attr in ("mode", "uid", "gid", "uname", "gname", "mtime", "pax_headers"):
                setattr(out, attr, getattr(data_member, attr))
            if owner is not None:
                out.uid, out.gid = owner
                out.uname = out.gname = ""
            out.type = tarfile.REGTYPE
            out.size = data_member.size
            yield out, src.extractfile(data_member)
        else:
            out = tarfile.TarInfo(m.name)
            for attr in ("mode", "uid", "gid", "uname", "gname", "mtime", "pax_headers"):
                setattr(out, attr, getattr(data_member, attr))
            if owner is not None:
                out.uid, out.gid = owner
                out.uname = out.gname = ""
            out.type = tarfile.LNKTYPE
            out.linkname = first_of_group[grp]
            out.size = 0
            yield out, None


def extra_members(devices, files, epoch):
    """Yield (TarInfo, fileobj-or-None) for --device and --file entries."""
    for spec in devices:
        path, kind, major, minor = spec.split(":")
        ti = tarfile.TarInfo(norm_name(path))
        ti.type = {"c": tarfile.CHRTYPE, "b": tarfile.BLKTYPE}[kind]
        ti.devmajor, ti.devminor = int(major), int(minor)
        ti.mode = 0o666
        ti.mtime = epoch or 0
        yield ti, None
    for spec in files:
        path, mode, src = spec.split(":", 2)
        with open(src, "rb") as f:
            data = f.read()
        ti = tarfile.TarInfo(norm_name(path))
        ti.mode = int(mode, 8)
        ti.size = len(data)
        ti.mtime = epoch or 0
        yield ti, io.BytesIO(data)


def write_layer(layout, rootfs, epoch, owner, level, extras=()):
    """Write the gzip layer; return (digest, size, diff_id)."""
    fd, tmp = tempfile.mkstemp(dir=layout.blobs, prefix=".layer-")
    try:
        with os.fdopen(fd, "wb") as raw:
            outer = HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=outer,
                               mtime=0, compresslevel=level) as gz:
                inner = HashingWriter(gz)
                tar = tarfile.open(fileobj=inner, mode="w|",
                                   format=tarfile.PAX_FORMAT)
                if os.path.isdir(rootfs):
                    gen = tar_members_from_dir(rootfs, owner, tar)
                    from_dir = True
                else:
                    gen = tar_members_from_tar(rootfs, owner)
                    from_dir = False
                for ti, src in gen:
                    ti.mtime = int(ti.mtime)
                    if epoch is not None and ti.mtime > epoch:
                        ti.mtime = epoch
                    if from_dir and src is not None:
                        with open(src, "rb") as f:
                            tar.addfile(ti, f)
                    elif src is not None:
                        tar.addfile(ti, src)
                    else:
                        tar.addfile(ti)
                # after the rootfs, so their parent directories come first
                for ti, src in extras:
                    tar.addfile(ti, src)
                tar.close()
                diff_id = inner.digest()
        digest = outer.digest()
        size = outer.size
        final = layout.blob_path(digest)
        os.chmod(tmp, 0o644)
        os.rename(tmp, final)
        tmp = None
        return digest, size, diff_id
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def cmd_image(args):
    epoch = args.epoch
    if epoch is None and os.environ.get("SOURCE_DATE_EPOCH"):
        epoch = int(os.environ["SOURCE_DATE_EPOCH"])
    owner = None
    if args.owner:
        u, g = args.owner.split(":")
        owner = (int(u), int(g))
    layout = Layout(args.out)
    base_layers, base_config = [], {"config": {}, "rootfs": {"diff_ids": []}, "history": []}
    if args.base:
        path, _, ref = args.base.rpartition(":")
        src = Layout(path)
        bman = json.loads(src.read_blob(src.find_ref(ref)["digest"]))
        base_config = json.loads(src.read_blob(bman["config"]["digest"]))
        base_layers = bman["layers"]
        for d in base_layers:
            layout.put_file(src.blob_path(d["digest"]), d["digest"])
    digest, size, diff_id = write_layer(
        layout, args.rootfs, epoch, owner, args.compress_level,
        list(extra_members(args.device, args.file, epoch)))
    created_ts = epoch if epoch is not None else 0
    created = datetime.datetime.fromtimestamp(
        created_ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg = {"Env": args.env or base_config["config"].get("Env", [])}
    if args.cmd is not None:
        cfg["Cmd"] = json.loads(args.cmd)
    elif "Cmd" in base_config["config"]:
        cfg["Cmd"] = base_config["config"]["Cmd"]
    if args.workdir:
        cfg["WorkingDir"] = args.workdir
    config = {
        "created": created,
        "architecture": args.arch,
        "os": args.os,
        "config": cfg,
        "rootfs": {"type": "layers",
                   "diff_ids": base_config["rootfs"]["diff_ids"] + [diff_id]},
        "history": base_config.get("history", []) + [
            {"created": created,
             "created_by": args.created_by or
             "kiln testbed mkimage.py (%s)" % os.path.basename(args.rootfs)}],
    }
    if args.variant:
        config["variant"] = args.variant
    cdigest, csize = layout.put_bytes(canon_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": cdigest, "size": csize},
        "layers": base_layers + [{"mediaType": MT_LAYER_GZIP, "digest": digest,
                                  "size": size}],
    }
    mdigest, msize = layout.put_bytes(canon_json(manifest))
    platform = {"architecture": args.arch, "os": args.os}
    if args.variant:
        platform["variant"] = args.variant
    layout.set_ref({"mediaType": MT_MANIFEST, "digest": mdigest,
                    "size": msize, "platform": platform}, args.ref)
    print("%s %s layer=%s (%d bytes)" % (args.ref, mdigest, digest, size))


def cmd_index(args):
    out = Layout(args.out)
    entries = []
    for spec in args.sources:
        path, _, ref = spec.rpartition(":")
        if not path:
            raise SystemExit("index source must be LAYOUT:REF, got " + spec)
        src = Layout(path)
        desc = src.find_ref(ref)
        if desc.get("mediaType") != MT_MANIFEST:
            raise SystemExit("%s is not an image manifest" % spec)
        manifest = json.loads(src.read_blob(desc["digest"]))
        config = json.loads(src.read_blob(manifest["config"]["digest"]))
        for d in [desc] + [manifest["config"]] + manifest["layers"]:
            out.put_file(src.blob_path(d["digest"]), d["digest"])
        platform = {"architecture": config["architecture"], "os": config["os"]}
        if config.get("variant"):
            platform["variant"] = config["variant"]
        entries.append({"mediaType": MT_MANIFEST, "digest": desc["digest"],
                        "size": desc["size"], "platform": platform})
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}
    idigest, isize = out.put_bytes(canon_json(index))
    out.set_ref({"mediaType": MT_INDEX, "digest": idigest, "size": isize},
                args.ref)
    print("%s %s (index of %d)" % (args.ref, idigest, len(entries)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    im = sub.add_parser("image", help="one platform image from a rootfs")
    im.add_argument("--rootfs", required=True, help="directory or tar file")
    im.add_argument("--out", required=True, help="OCI layout directory")
    im.add_argument("--ref", required=True)
    im.add_argument("--arch", default="amd64")
    im.add_argument("--os", default="linux")
    im.add_argument("--variant")
    im.add_argument("--env", action="append", default=[])
    im.add_argument("--cmd", help='JSON array, e.g. \'["sh"]\'')
    im.add_argument("--workdir")
    im.add_argument("--owner", help="force UID:GID on every entry")
    im.add_argument("--epoch", type=int,
                    help="clamp mtimes (default $SOURCE_DATE_EPOCH)")
    im.add_argument("--created-by")
    im.add_argument("--compress-level", type=int, default=6)
    im.add_argument("--base", metavar="LAYOUT:REF",
                    help="put the layer on top of this image's layers")
    im.add_argument("--device", action="append", default=[],
                    metavar="PATH:c|b:MAJOR:MINOR", help="add a device node entry")
    im.add_argument("--file", action="append", default=[], metavar="PATH:MODE:SRC",
                    help="add SRC as a root-owned file with octal MODE (e.g. 4755)")
    im.set_defaults(func=cmd_image)
    ix = sub.add_parser("index", help="combine platform images into an index")
    ix.add_argument("--out", required=True)
    ix.add_argument("--ref", required=True)
    ix.add_argument("sources", nargs="+", metavar="LAYOUT:REF")
    ix.set_defaults(func=cmd_index)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
