#!/usr/bin/env python3
# Regenerates the seed corpora in tests/fuzz/corpus/ (references, headers,
# auth files, tars and oci-archives; manifests, configs and specs are copied
# from testdata/). Deterministic: rerunning gives the same bytes.
import os, io, json, tarfile, hashlib, glob, shutil
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
td = os.path.join(root, '../../../testdata')
def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, name), 'wb').write(data)
D = 'sha256:' + 'a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4'
refs = {
 'bare': 'debian', 'tag': 'debian:bookworm-slim', 'hub-full': 'docker.io/library/debian:bookworm',
 'ghcr': 'ghcr.io/flyteorg/flytekit:py3.11-1.10.0', 'port-digest': '127.0.0.1:5000/team/app@' + D,
 'tag-digest': 'localhost/x:v1@' + D, 'ipv6': '[::1]:5000/a/b:c', 'user-hub': 'flyteorg/flytekit',
 'oci': 'oci:/tmp/layout:latest', 'oci-archive': 'oci-archive:img.tar:v2', 'docker-archive': 'docker-archive:img.tar:foo/bar:baz',
 'docker-transport': 'docker://quay.io/prometheus/node-exporter:v1.7.0', 'deep': 'registry.example.com:443/a/b/c/d-e_f.g:1.0-rc.1',
 'upper-bad': 'Debian:latest',
}
for k, v in refs.items(): put('fuzz_ref', k, v)
ch = {
 'hub': 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"',
 'basic': 'Basic realm="Registry Realm"',
 'ghcr': 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:flyteorg/flytekit:pull"',
 'insufficient': 'Bearer realm="https://auth.example.com/token",service="example.com",scope="repository:a/b:pull,push",error="insufficient_scope"',
 'multi': 'Basic realm="x", Bearer realm="y",service="z"',
 'token68': 'Negotiate abc123==, Basic realm="a \\"quoted\\" realm"',
 'unquoted': 'bearer realm=https://h/token, service=h',
}
for k, v in ch.items(): put('fuzz_challenge', k, v)
tok = {
 'token': {'token': 'eyJhbGciOiJFUzI1NiJ9.e30.sig', 'expires_in': 300, 'issued_at': '2024-01-01T00:00:00Z'},
 'access': {'access_token': 'abc', 'expires_in': 3600},
 'both': {'token': 'a', 'access_token': 'b'},
 'noexp': {'token': 'a'},
 'badexp': {'token': 'a', 'expires_in': 'soon'},
 'empty': {},
}
for k, v in tok.items(): put('fuzz_token', k, json.dumps(v))
# found by fuzz_token: a double outside long's range (undefined conversion)
put('fuzz_token', 'negative-real-expiry', '{"token":"c","expires_in":-1e82}')
# a token that would inject request headers; a token that is not ASCII
put('fuzz_token', 'crlf', '{"token":"s3cr3t\\r\\nX-Injected: yes","expires_in":300}')
put('fuzz_token', 'utf8', '{"access_token":"s3cr3t\\u00e9"}')
auth = {
 'auth': {'auths': {'example.com': {'auth': 'dXNlcjpwYXNz'}}},
 'userpass': {'auths': {'https://example.com': {'username': 'u', 'password': 'p'}}},
 'identity': {'auths': {'example.com': {'auth': 'PHRva2VuPjo=', 'identitytoken': 'refresh'}}},
 'hub': {'auths': {'https://index.docker.io/v1/': {'auth': 'dXNlcjpwYXNz'}}},
 'helper': {'credHelpers': {'example.com': 'pass'}, 'auths': {}},
 'store': {'credsStore': 'desktop', 'auths': {'other.io': {'auth': 'eDp5'}}},
 'v1': {'auths': {'example.com/v1/': {'auth': 'dXNlcjpwYXNz'}}},
 'badb64': {'auths': {'example.com': {'auth': '!!!'}}},
}
for k, v in auth.items(): put('fuzz_authfile', k, json.dumps(v, indent=1))
# manifest: first byte selects the declared media type (see fuzz_manifest.c)
mts = [None, 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
       'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json']
for f in sorted(glob.glob(os.path.join(td, 'oci/*.json'))):
    b = os.path.basename(f)[:-5]
    data = open(f, 'rb').read()
    if b.startswith('config-'):
        put('fuzz_config', b, data)
        continue
    put('fuzz_manifest', b + '-undeclared', b'\x00' + data)
    try:
        mt = json.loads(data).get('mediaType')
    except Exception:
        mt = None
    if mt in mts:
        put('fuzz_manifest', b + '-declared', bytes([mts.index(mt)]) + data)
plats = {'same': 'linux/amd64\nlinux/amd64', 'arm64': 'linux/arm64/v8\nlinux/arm64', 'arm': 'linux/arm\nlinux/arm/v7',
         'alias': 'linux/x86_64\nlinux/amd64', 'aarch64': 'linux/aarch64\nlinux/arm64/v8', 'armhf': 'linux/armhf\nlinux/arm/v6',
         'windows': 'windows/amd64\nlinux/amd64', 'unknown': 'unknown/unknown\nunknown/unknown', 'ppc': 'linux/ppc64le'}
for k, v in plats.items(): put('fuzz_platform', k, v)
for f in sorted(glob.glob(os.path.join(td, 'spec/vectors/*.yaml')) + glob.glob(os.path.join(td, 'spec/bad/*.yaml'))):
    put('fuzz_spec', os.path.basename(os.path.dirname(f)) + '-' + os.path.basename(f)[:-5], open(f, 'rb').read())

def tarball(entries, fmt=tarfile.PAX_FORMAT):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode='w', format=fmt) as t:
        for ti, data in entries:
            ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return bio.getvalue()
def f(name, data=b'', mode=0o644, **kw):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode
    for k, v in kw.items(): setattr(ti, k, v)
    return (ti, data)
def d(name, mode=0o755): ti = tarfile.TarInfo(name); ti.type = tarfile.DIRTYPE; ti.mode = mode; return (ti, None)
def l(name, target, hard=False):
    ti = tarfile.TarInfo(name); ti.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE; ti.linkname = target; return (ti, None)
def dev(name, chr=True):
    ti = tarfile.TarInfo(name); ti.type = tarfile.CHRTYPE if chr else tarfile.FIFOTYPE; ti.devmajor = 1; ti.devminor = 3; return (ti, None)
put('fuzz_unpack', 'basic', tarball([d('etc/'), f('etc/hostname', b'kiln\n'), d('usr/bin/'), f('usr/bin/tool', b'#!/bin/sh\n', 0o755, uid=1000, gid=1000)]))
put('fuzz_unpack', 'links', tarball([d('bin'), f('bin/busybox', b'\x7fELF'), l('bin/sh', 'busybox'), l('bin/ls', 'bin/busybox', hard=True), l('abs', '/etc/passwd')]))
put('fuzz_unpack', 'whiteouts', tarball([d('a'), f('a/.wh.old'), d('b'), f('b/.wh..wh..opq'), f('b/new', b'x')]))
xa = f('cap', b'x'); xa[0].pax_headers = {'SCHILY.xattr.security.capability': '\x01\x00\x00\x02', 'SCHILY.xattr.user.k': 'v'}
put('fuzz_unpack', 'xattrs', tarball([xa]))
put('fuzz_unpack', 'devices', tarball([d('dev'), dev('dev/null'), dev('dev/fifo', chr=False)]))
put('fuzz_unpack', 'escape-dotdot', tarball([f('../escape', b'x')], fmt=tarfile.GNU_FORMAT))
put('fuzz_unpack', 'escape-symlink', tarball([l('up', '..'), f('up/escape', b'x'), l('abs', '/'), f('abs/tmp/escape', b'x')]))
put('fuzz_unpack', 'ustar-longname', tarball([d('a' * 90 + '/'), f('a' * 90 + '/' + 'b' * 60, b'y')], fmt=tarfile.USTAR_FORMAT))

def blob(data):
    h = hashlib.sha256(data).hexdigest(); return 'sha256:' + h, h
def oci_archive(tag=None, extra=(), two=False, layout=True):
    layer = tarball([f('hello', b'hi\n')])
    ld, lh = blob(layer)
    cfg = json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {'Cmd': ['/hello']},
                      'rootfs': {'type': 'layers', 'diff_ids': [ld]}}).encode()
    cd, ch_ = blob(cfg)
    man = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                      'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': cd, 'size': len(cfg)},
                      'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': ld, 'size': len(layer)}]}).encode()
    md, mh = blob(man)
    ent = {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': md, 'size': len(man)}
    if tag: ent['annotations'] = {'org.opencontainers.image.ref.name': tag}
    ents = [ent] + ([dict(ent, annotations={'org.opencontainers.image.ref.name': 'other'})] if two else [])
    idx = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': ents}).encode()
    files = [d('blobs/'), d('blobs/sha256/'), f('index.json', idx), f('blobs/sha256/' + mh, man),
             f('blobs/sha256/' + ch_, cfg), f('blobs/sha256/' + lh, layer)]
    if layout: files.insert(0, f('oci-layout', b'{"imageLayoutVersion":"1.0.0"}'))
    return tarball(files + list(extra), fmt=tarfile.USTAR_FORMAT)
put('fuzz_localimage', 'image', oci_archive())
put('fuzz_localimage', 'tagged', oci_archive(tag='latest'))
put('fuzz_localimage', 'two-tags', oci_archive(tag='latest', two=True))
put('fuzz_localimage', 'no-layout', oci_archive(layout=False))
put('fuzz_localimage', 'stray-entry', oci_archive(extra=[f('manifest.json', b'[]')]))
put('fuzz_localimage', 'escape', oci_archive(extra=[f('blobs/../../x', b'')]))

# fuzz_ignore: byte 0 = syntax (1 docker) | paths are dirs (2); the ignore
# file; NUL; paths one per line. Hostile patterns among them: a matcher
# that backtracks takes exponential time on these.
ign = {
 'git-basic': (2, '*.pyc\n__pycache__/\nbuild/\n!keep.pyc\n', 'a/b.pyc\n__pycache__\nbuild\nkeep.pyc\n'),
 'git-anchored': (0, '/top\nsub/x\n**/deep/**\n\\#lit\n', 'top\nsub/x\na/deep/b\n#lit\n'),
 'git-stars': (2, '**/**/**/**/**/**/**/**/a\n', 'b/b/b/b/b/b/b/b/b/b/b/b/b/b/b/b/b/b/b/b/c\n'),
 'git-class': (0, '[!a-z]?[]]*\n[\\]]\n', 'X1]y\n]\n'),
 'docker-basic': (1, '*.md\n!README.md\n**/node_modules\n/dist\n', 'a.md\nREADME.md\nx/node_modules/y\ndist\n'),
 'docker-stars': (3, '*a*a*a*a*a*a*a*a*a*a*a*b\n', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n'),
 'docker-bad': (1, '[\n', 'x\n'),
}
for k, (b, text, paths) in ign.items():
    put('fuzz_ignore', k, bytes([b]) + text.encode() + b'\0' + paths.encode())
