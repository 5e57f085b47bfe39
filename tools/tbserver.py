#!/usr/bin/python3
"""Small HTTP servers of the kiln test bed (started by tools/testbed).

  tbserver.py token     --state DIR --port P --service S --issuer I
  tbserver.py faulty    --state DIR --port P --upstream HOST:PORT --blobstore-port P
  tbserver.py blobstore --state DIR --port P --storage DIR
  tbserver.py hostile   --state DIR --port P --cert F --key F --realm-host H --realm-port P
  tbserver.py pyindex      --state DIR --port P --wheels DIR [--exclude NAME]...
  tbserver.py pyindex-auth --state DIR --port P --wheels DIR --pass-file F

All bind to 127.0.0.1, except hostile's token realm, which also listens on
--realm-host when that is an address of this machine (a host that is not
loopback, for the test that credentials never go there in clear text). Uses only Debian's python3 and python3-jwt /
python3-cryptography.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import html
import http.client
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid

MAX_LINE = 65536


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def write(self, fmt, *args):
        ts = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        with self.lock:
            self.f.write(ts + " " + (fmt % args) + "\n")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class BaseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kiln-testbed"

    def log_message(self, fmt, *args):  # quiet: we keep our own logs
        pass

    def send_body(self, status, body, ctype="text/plain; charset=utf-8",
                  extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# ---------------------------------------------------------------- token

class TokenHandler(BaseHandler):
    cfg = None  # set in main

    def _ttl(self):
        # A file in the state dir overrides the start-up value, so tests can
        # switch to short-lived tokens without restarting the server.
        p = os.path.join(self.cfg.state, "token-ttl")
        try:
            with open(p) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return self.cfg.ttl

    def _password(self):
        with open(os.path.join(self.cfg.state, "token.pass")) as f:
            return f.read().strip()

    def _check_basic(self):
        """Return (given, ok, user)."""
        h = self.headers.get("Authorization")
        if not h:
            return False, False, None
        if not h.lower().startswith("basic "):
            return True, False, None
        try:
            raw = base64.b64decode(h[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return True, False, None
        user, _, pw = raw.partition(":")
        ok = user == self.cfg.user and pw == self._password()
        return True, ok, user

    @staticmethod
    def _parse_scopes(values):
        out = []
        for value in values:
            for scope in value.split(" "):
                if not scope:
                    continue
                typ, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                if not typ or not name:
                    continue
                out.append((typ, name, [a for a in actions.split(",") if a]))
        return out

    def _issue(self, params, given, ok, user):
        service = (params.get("service") or [""])[0]
        scopes = self._parse_scopes(params.get("scope", []))
        access = []
        for typ, name, actions in scopes:
            if ok:
                granted = [a for a in actions if a in ("pull", "push", "delete", "*")]
            elif typ == "repository" and name.startswith("public/"):
                granted = [a for a in actions if a == "pull"]
            else:
                granted = []
            if granted:
                access.append({"type": typ, "name": name, "actions": granted})
        now = int(time.time())
        ttl = self._ttl()
        exp = now + ttl
        if os.path.exists(os.path.join(self.cfg.state, "token-strict")):
            # distribution 2.8 accepts tokens up to 60 s past "exp" (clock
            # skew leeway); in strict mode the registry really rejects the
            # token once expires_in has passed
            exp -= 60
        claims = {
            "iss": self.cfg.issuer,
            "sub": user if ok else "",
            "aud": service,
            "exp": exp,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        import jwt  # python3-jwt
        token = jwt.encode(claims, self.cfg.key, algorithm="RS256",
                           headers={"x5c": [self.cfg.cert_b64]})
        issued = datetime.datetime.fromtimestamp(
            now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"token": token, "access_token": token, "expires_in": ttl,
                "issued_at": issued}
        self.cfg.log.write("%s %s auth=%s user_ok=%s granted=%s", self.command,
                           self.path, "basic" if given else "none", ok,
                           json.dumps(access, separators=(",", ":")))
        self.send_body(200, json.dumps(body), "application/json")

    def _deny(self, given):
        self.cfg.log.write("%s %s auth=%s -> 401", self.command, self.path,
                           "basic" if given else "none")
        self.send_body(401, json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                                    "message": "bad credentials"}]}),
                       "application/json",
                       {"WWW-Authenticate": 'Basic realm="kiln-testbed-token"'})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path != "/token":
            self.send_body(404, "not found\n")
            return
        params = urllib.parse.parse_qs(u.query)
        given, ok, user = self._check_basic()
        if given and not ok:
            self._deny(given)
            return
        self._issue(params, given, ok, user)

    def do_POST(self):
        # OAuth2 password grant (what docker/containerd use with refresh
        # tokens): form fields grant_type, username, password, service, scope
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        if u.path != "/token" or n > MAX_LINE:
            self.send_body(404 if u.path != "/token" else 413, "bad request\n")
            return
        form = urllib.parse.parse_qs(self.rfile.read(n).decode("utf-8", "replace"))
        if (form.get("grant_type") or [""])[0] != "password":
            self.cfg.log.write("POST %s unsupported grant", u.path)
            self.send_body(400, json.dumps({"error": "unsupported_grant_type"}),
                           "application/json")
            return
        user = (form.get("username") or [""])[0]
        pw = (form.get("password") or [""])[0]
        ok = user == self.cfg.user and pw == self._password()
        if not ok:
            self._deny(True)
            return
        self._issue(form, True, True, user)


def run_token(args):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    with open(args.key, "rb") as f:
        args.key = serialization.load_pem_private_key(f.read(), password=None)
    with open(args.cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    args.cert_b64 = base64.b64encode(
        cert.public_bytes(serialization.Encoding.DER)).decode()
    args.log = Log(os.path.join(args.state, "token.log"))
    TokenHandler.cfg = args
    srv = Server(("127.0.0.1", args.port), TokenHandler)
    args.log.write("token server listening on 127.0.0.1:%d", args.port)
    srv.serve_forever()


# ------------------------------------------------------------ blobstore

DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")


class BlobHandler(BaseHandler):
    cfg = None

    def _serve(self):
        path = urllib.parse.urlsplit(self.path).path
        auth = "Authorization" in self.headers
        if not path.startswith("/blobs/"):
            self.cfg.log.write("%s %s auth=%s -> 404", self.command, path, auth)
            self.send_body(404, "not found\n")
            return
        if auth:
            self.cfg.log.write("%s %s auth=LEAKED -> 400", self.command, path)
            self.send_body(400, "authorization header leaked to blob storage\n")
            return
        m = DIGEST_RE.match(path[len("/blobs/"):])
        if not m:
            self.cfg.log.write("%s %s -> 400 bad digest", self.command, path)
            self.send_body(400, "bad digest\n")
            return
        hexd = m.group(1)
        data = os.path.join(self.cfg.storage, "docker", "registry", "v2",
                            "blobs", "sha256", hexd[:2], hexd, "data")
        try:
            f = open(data, "rb")
        except OSError:
            self.cfg.log.write("%s %s -> 404", self.command, path)
            self.send_body(404, "blob unknown\n")
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.cfg.log.write("%s %s -> 200 (%d bytes)", self.command, path, size)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Docker-Content-Digest", "sha256:" + hexd)
            self.end_headers()
            if self.command == "HEAD":
                return
            while True:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                self.wfile.write(chunk)

    do_GET = _serve
    do_HEAD = _serve


def run_blobstore(args):
    args.log = Log(os.path.join(args.state, "blobstore.log"))
    BlobHandler.cfg = args
    srv = Server(("127.0.0.1", args.port), BlobHandler)
    args.log.write("blobstore listening on 127.0.0.1:%d", args.port)
    srv.serve_forever()


# --------------------------------------------------------------- faulty

# Under any sane floor, and slow enough that no blob ends in a test's time.
TRICKLE_RATE = 512
TRICKLE_UPLOAD_RATE = 64

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate",
              "proxy-authorization", "te", "trailer", "trailers",
              "transfer-encoding", "upgrade", "host"}
PATH_RE = re.compile(r"^/v2/(.+)/(blobs|manifests)/([^/]+)$")


REFERRERS_RE = re.compile(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$")
MANIFEST_MAX = 4 << 20


class FaultState:
    def __init__(self):
        self.lock = threading.Lock()
        self.blob_gets = {}
        self.manifest_seen = set()
        # the referrers API of repositories under referrers/: (name, subject
        # digest) -> {artifact digest: descriptor}
        self.referrers = {}

    def add_referrer(self, name, subject, desc):
        with self.lock:
            self.referrers.setdefault((name, subject), {})[desc["digest"]] = desc

    def list_referrers(self, name, subject):
        with self.lock:
            return list(self.referrers.get((name, subject), {}).values())

    def next_blob_get(self, digest):
        with self.lock:
            n = self.blob_gets.get(digest, 0) + 1
            self.blob_gets[digest] = n
            return n

    def first_manifest(self, path):
        with self.lock:
            if path in self.manifest_seen:
                return False
            self.manifest_seen.add(path)
            return True

    def reset(self):
        with self.lock:
            self.blob_gets.clear()
            self.manifest_seen.clear()
            self.referrers.clear()


class ProxyHandler(BaseHandler):
    cfg = None

    def _classify(self):
        path = urllib.parse.urlsplit(self.path).path
        m = PATH_RE.match(path)
        if not m:
            return None, None, None
        name, kind, ref = m.groups()
        if kind == "blobs" and ref == "uploads":
            return None, None, None
        return name.split("/", 1)[0], kind, ref

    def _request_body(self):
        """Return (body, chunked) to forward upstream (streamed)."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            def gen():
                while True:
                    line = self.rfile.readline(MAX_LINE)
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                            pass
                        return
                    left = size
                    while left:
                        chunk = self.rfile.read(min(left, 1 << 16))
                        if not chunk:
                            raise ConnectionError("client closed mid-chunk")
                        left -= len(chunk)
                        yield chunk
                    self.rfile.readline(MAX_LINE)
            return gen(), True
        n = int(self.headers.get("Content-Length") or 0)
        if n == 0:
            return None, False

        def gen_len():
            left = n
            while left:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    raise ConnectionError("client closed mid-body")
                left -= len(chunk)
                yield chunk
        return gen_len(), False

    def _upstream(self, method=None):
        host, port = self.cfg.upstream.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        body, chunked = self._request_body() if method is None else (None, False)
        # a list, not a dict: clients send several Accept headers
        headers = [(k, v) for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
        headers.append(("Host", self.cfg.upstream))
        if body is not None and not chunked:
            headers.append(("Content-Length", self.headers["Content-Length"]))
        conn.putrequest(method or self.command, self.path, skip_host=True,
                        skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        if body is not None:
            for chunk in body:
                if chunked:
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    conn.send(chunk)
            if chunked:
                conn.send(b"0\r\n\r\n")
        return conn, conn.getresponse()

    def _rewrite_location(self, value):
        up = "http://" + self.cfg.upstream
        if value.startswith(up):
            host = self.headers.get("Host") or "127.0.0.1:%d" % self.cfg.port
            return "http://" + host + value[len(up):]
        return value

    def _relay(self, resp, corrupt=False, truncate=False):
        """Send the upstream response; optionally corrupt or truncate."""
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == "content-length":
                continue
            if lk == "location":
                v = self._rewrite_location(v)
            self.send_header(k, v)
        no_body = self.command == "HEAD" or resp.status in (204, 304)
        if length is not None:
            self.send_header("Content-Length", length)
        elif not no_body:
            self.send_header("Transfer-Encoding", "chunked")
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if no_body:
            resp.read()
            return
        total = int(length) if length is not None else None
        flip_at = total // 2 if (corrupt and total) else (0 if corrupt else None)
        limit = total // 2 if (truncate and total is not None) else None
        sent = 0
        while True:
            want = 1 << 16
            if limit is not None:
                want = min(want, limit - sent)
                if want <= 0:
                    break
            chunk = resp.read(want)
            if not chunk:
                break
            if flip_at is not None and sent <= flip_at < sent + len(chunk):
                b = bytearray(chunk)
                b[flip_at - sent] ^= 0xFF
                chunk = bytes(b)
            if total is None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(chunk)
            sent += len(chunk)
        if truncate:
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if total is None:
            self.wfile.write(b"0\r\n\r\n")

    def _trickle(self, resp):
        """Relay a blob at TRICKLE_RATE bytes/s: a server that holds a
        pull open while sending just enough to look alive. Logged when it
        starts: the client has given up long before the handler notices."""
        self.cfg.log.write("%s %s trickle started", self.command, self.path)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        self.end_headers()
        step = TRICKLE_RATE // 4
        try:
            while True:
                chunk = resp.read(step)
                if not chunk:
                    return
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(0.25)
        except OSError:  # the client gave up, as it should
            self.close_connection = True

    def _slow_upload(self):
        """Read an upload's body at TRICKLE_UPLOAD_RATE bytes/s, never pass
        it on and never answer: a server that holds a push open until the
        client gives up."""
        self.cfg.log.write("%s %s slow upload started", self.command, self.path)
        left = int(self.headers.get("Content-Length") or 0)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, TRICKLE_UPLOAD_RATE // 4))
                if not chunk:
                    break
                left -= len(chunk)
                time.sleep(0.25)
            self.rfile.read(1)  # returns when the client hangs up
        except OSError:
            pass
        self.close_connection = True

    def _crlf_challenge(self):
        """A registry whose token service answers a token holding CR/LF: a
        client that copies it into a header sends X-Injected."""
        self._drain_request()
        if self.headers.get("Authorization", "").startswith("Bearer "):
            self.send_body(401, '{"errors":[{"code":"DENIED"}]}\n',
                           "application/json")
            return
        realm = "http://127.0.0.1:%d/_testbed/crlf-token" % self.cfg.port
        self.send_body(401, '{"errors":[{"code":"UNAUTHORIZED"}]}\n',
                       "application/json", {
                           "WWW-Authenticate":
                           'Bearer realm="%s",service="kiln-crlf"' % realm})

    def _referrers_put(self, name):
        """A manifest PUT under referrers/: forwarded; one with a subject is
        indexed and answered with OCI-Subject, as a registry with the OCI
        1.1 referrers API does (distribution 2.8 has none)."""
        n = int(self.headers.get("Content-Length") or 0)
        if n > MANIFEST_MAX:
            self.send_body(413, "manifest too large\n")
            return "referrers-too-large"
        body = self.rfile.read(n)
        host, port = self.cfg.upstream.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"}
        headers["Host"] = self.cfg.upstream
        conn.request("PUT", self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        extra = {k: v for k, v in resp.getheaders()
                 if k.lower() in ("location", "docker-content-digest", "www-authenticate")}
        if "Location" in extra:
            extra["Location"] = self._rewrite_location(extra["Location"])
        tag = "referrers-put-%d" % resp.status
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if resp.status == 201 and isinstance(subject, dict) and "digest" in subject:
            desc = {"mediaType": doc.get("mediaType") or self.headers.get("Content-Type"),
                    "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
                    "size": len(body)}
            at = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
            if at:
                desc["artifactType"] = at
            if isinstance(doc.get("annotations"), dict):
                desc["annotations"] = doc["annotations"]
            self.cfg.faults.add_referrer(name, subject["digest"], desc)
            extra["OCI-Subject"] = subject["digest"]
            tag = "referrers-indexed"
        self.send_body(resp.status, data, resp.getheader("Content-Type") or
                       "application/json", extra)
        return tag

    def _referrers_get(self, name, subject):
        """GET /v2/NAME/referrers/DIGEST: the upstream decides access (a
        HEAD of the subject with the caller's credentials)."""
        conn, resp = self._upstream("HEAD")
        resp.read()
        conn.close()
        if resp.status in (401, 403):
            self._relay_status(resp)
            return "referrers-get-%d" % resp.status
        want = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get(
            "artifactType", [None])[0]
        found = self.cfg.faults.list_referrers(name, subject)
        extra = {}
        if want:
            found = [d for d in found if d.get("artifactType") == want]
            extra["OCI-Filters-Applied"] = "artifactType"
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": found}
        self.send_body(200, json.dumps(idx), "application/vnd.oci.image.index.v1+json",
                       extra)
        return "referrers-get-%d" % len(found)

    def _handle(self):
        path = urllib.parse.urlsplit(self.path).path
        rm = REFERRERS_RE.match(path)
        if rm and rm.group(1).startswith("referrers/") and self.command == "GET":
            # HEAD of the subject manifest, under the caller's credentials
            self.path = "/v2/%s/manifests/%s" % rm.groups()
            tag = self._referrers_get(*rm.groups())
            self.cfg.log.write("GET %s fault=%s", path, tag)
            return
        pm = PATH_RE.match(path)
        if pm and pm.group(1).startswith("referrers/") and pm.group(2) == "manifests" \
                and self.command == "PUT":
            tag = self._referrers_put(pm.group(1))
            self.cfg.log.write("PUT %s fault=%s", path, tag)
            return
        if path == "/_testbed/crlf-token":
            self.cfg.log.write("%s %s crlf token issued", self.command, path)
            self.send_body(200, json.dumps({
                "token": "kiln-crlf-secret\r\nX-Injected: yes",
                "expires_in": 300}), "application/json")
            return
        if path == "/_testbed/reset":
            self.cfg.faults.reset()
            self.cfg.log.write("%s %s reset fault counters", self.command, path)
            self.send_body(200, "reset\n")
            return
        fault, kind, ref = self._classify()
        auth = "Authorization" in self.headers
        tag = "pass"
        if "X-Injected" in self.headers:
            tag = "INJECTED-HEADER"
        try:
            if self.command in ("PUT", "PATCH") and path.startswith("/v2/trickle/") \
                    and "/blobs/uploads/" in path:
                tag = "trickle-upload"
                self._slow_upload()
                return
            if fault == "crlftoken":
                tag = "crlftoken" if tag == "pass" else tag
                self._crlf_challenge()
                return
            if kind == "manifests" and (
                    (self.command == "HEAD" and fault in ("head500", "manifest500")) or
                    (self.command == "GET" and fault == "manifest500")):
                # head500: Harbor's answer to HEAD of a repository not
                # created yet; manifest500: a registry that is down
                tag = "%s-%s" % (fault, self.command)
                self._drain_request()
                self.send_body(500, '{"errors":[{"code":"UNKNOWN","message":'
                               '"unknown error"}]}\n', "application/json")
                return
            if kind == "blobs" and self.command == "GET" and fault == "trickle":
                conn, resp = self._upstream()
                if resp.status == 200:
                    tag = "trickle"
                    self._trickle(resp)
                else:
                    self._relay(resp)
                conn.close()
                return
            if kind == "blobs" and self.command == "GET" and fault == "redirect":
                # only redirect callers the registry would serve; otherwise
                # pass its 401 (and challenge) through
                conn, resp = self._upstream("HEAD")
                resp.read()
                conn.close()
                if resp.status != 200:
                    tag = "redirect-upstream-%d" % resp.status
                    self._drain_request()
                    self._relay_status(resp)
                    return
                loc = "http://localhost:%d/blobs/%s" % (self.cfg.blobstore_port, ref)
                tag = "redirect-307"
                self.send_body(307, "", extra={"Location": loc,
                                               "Docker-Content-Digest": ref})
                return
            if kind == "blobs" and self.command == "GET" and fault == "flaky":
                n = self.cfg.faults.next_blob_get(ref)
                if n == 1:
                    tag = "flaky-503"
                    self.send_body(503, "try again\n", extra={"Retry-After": "1"})
                    return
                conn, resp = self._upstream()
                if n == 2 and resp.status == 200:
                    tag = "flaky-truncated"
                    self._relay(resp, truncate=True)
                else:
                    tag = "flaky-get-%d" % n
                    self._relay(resp)
                conn.close()
                return
            if kind == "manifests" and fault == "flaky" and \
                    self.cfg.faults.first_manifest(path):
                tag = "flaky-429"
                self._drain_request()
                self.send_body(429, "slow down\n", extra={"Retry-After": "1"})
                return
            conn, resp = self._upstream()
            corrupt = (kind == "blobs" and self.command == "GET" and
                       fault == "corrupt" and resp.status in (200, 206))
            if corrupt:
                tag = "corrupt"
            self._relay(resp, corrupt=corrupt)
            conn.close()
        finally:
            self.cfg.log.write("%s %s auth=%s fault=%s", self.command, self.path,
                               auth, tag)

    def _drain_request(self):
        body, _ = self._request_body()
        if body is not None:
            for _ in body:
                pass

    def _relay_status(self, resp):
        extra = {}
        for k in ("WWW-Authenticate", "Docker-Distribution-Api-Version"):
            if resp.getheader(k):
                extra[k] = resp.getheader(k)
        self.send_body(resp.status, "", "application/json", extra)

    do_GET = _handle
    do_HEAD = _handle
    do_PUT = _handle
    do_POST = _handle
    do_PATCH = _handle
    do_DELETE = _handle


def run_faulty(args):
    args.log = Log(os.path.join(args.state, "faulty.log"))
    args.faults = FaultState()
    ProxyHandler.cfg = args
    srv = Server(("127.0.0.1", args.port), ProxyHandler)
    args.log.write("faulty proxy on 127.0.0.1:%d -> %s", args.port, args.upstream)
    srv.serve_forever()

# -------------------------------------------------------------- hostile

class HostileHandler(BaseHandler):
    """An HTTPS registry whose Bearer realm is plain HTTP. Asked as
    localhost the realm is on 127.0.0.1 (loopback: allowed); asked as
    anything else it is on --realm-host (not loopback: credentials must
    never be sent there)."""
    cfg = None

    def _handle(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        realm_host = "127.0.0.1" if host == "localhost" else self.cfg.realm_host
        realm = "http://%s:%d/token" % (realm_host, self.cfg.realm_port)
        auth = self.headers.get("Authorization", "")
        self.cfg.log.write("registry %s %s host=%s auth=%s", self.command, self.path,
                           host, auth.split(" ", 1)[0] or "none")
        if auth == "Bearer hostile-token":
            self.send_body(404, '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}\n',
                           "application/json")
            return
        self.send_body(401, '{"errors":[{"code":"UNAUTHORIZED"}]}\n',
                       "application/json", {
                           "WWW-Authenticate":
                           'Bearer realm="%s",service="kiln-hostile"' % realm})

    do_GET = _handle
    do_HEAD = _handle


class RealmHandler(BaseHandler):
    cfg = None

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        self.cfg.log.write("realm %s %s via=%s auth=%s", self.command, self.path,
                           self.server.server_address[0],
                           auth.split(" ", 1)[0] or "none")
        self.send_body(200, json.dumps({"token": "hostile-token",
                                        "expires_in": 300}),
                       "application/json")


def run_hostile(args):
    import ssl
    args.log = Log(os.path.join(args.state, "hostile.log"))
    HostileHandler.cfg = RealmHandler.cfg = args
    binds = ["127.0.0.1"]
    try:
        socket.inet_aton(args.realm_host)
        binds.append(args.realm_host)
    except OSError:
        pass  # a name that does not resolve: nothing can be sent there
    for addr in binds:
        realm = Server((addr, args.realm_port), RealmHandler)
        threading.Thread(target=realm.serve_forever, daemon=True).start()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv = Server(("127.0.0.1", args.port), HostileHandler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    args.log.write("hostile registry on https://127.0.0.1:%d, realm on %s:%d",
                   args.port, " and ".join(binds), args.realm_port)
    srv.serve_forever()


# -------------------------------------------------------------- pyindex

WHEEL_RE = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-[^-/]+"
                      r"(?:-[^-/]+)?-[^-/]+-[^-/]+-[^-/]+\.whl$")


def pep503_normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class WheelDir:
    """The wheels in a directory, re-read when it changes (the test bed
    points a symlink at a new cache entry when the sources change)."""

    def __init__(self, path, exclude):
        self.path = path
        self.exclude = {pep503_normalize(x) for x in exclude}
        self.lock = threading.Lock()
        self.stamp = None
        self.projects = {}  # normalized name -> [(file, sha256 hex)]
        self.files = {}     # file -> (path, sha256 hex)

    def _scan(self):
        real = os.path.realpath(self.path)
        try:
            st = os.stat(real)
        except OSError:
            return {}, {}, None
        stamp = (real, st.st_mtime_ns, st.st_ino)
        if stamp == self.stamp:
            return self.projects, self.files, stamp
        projects, files = {}, {}
        for f in sorted(os.listdir(real)):
            m = WHEEL_RE.match(f)
            if not m:
                continue
            name = pep503_normalize(m.group(1))
            if name in self.exclude:
                continue
            p = os.path.join(real, f)
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 16), b""):
                    h.update(chunk)
            projects.setdefault(name, []).append((f, h.hexdigest()))
            files[f] = (p, h.hexdigest())
        return projects, files, stamp

    def snapshot(self):
        with self.lock:
            self.projects, self.files, self.stamp = self._scan()
            return self.projects, self.files


class PyIndexHandler(BaseHandler):
    cfg = None

    def _auth(self):
        """Return (given, ok). Never logs or echoes the password."""
        h = self.headers.get("Authorization")
        if not h:
            return False, self.cfg.pass_file is None
        if self.cfg.pass_file is None:
            return True, True
        if not h.lower().startswith("basic "):
            return True, False
        try:
            raw = base64.b64decode(h[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return True, False
        user, _, pw = raw.partition(":")
        try:
            with open(self.cfg.pass_file) as f:
                want = f.read().strip()
        except OSError:
            return True, False
        return True, user == self.cfg.user and hmac.compare_digest(pw, want)

    def _html(self, title, links):
        body = ["<!DOCTYPE html>", "<html>", "<head>",
                '<meta name="pypi:repository-version" content="1.0">',
                "<title>%s</title>" % html.escape(title), "</head>", "<body>",
                "<h1>%s</h1>" % html.escape(title)]
        for href, text in links:
            body.append('<a href="%s">%s</a><br>' % (html.escape(href), html.escape(text)))
        body += ["</body>", "</html>", ""]
        return "\n".join(body)

    def _serve(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        given, ok = self._auth()
        authlog = ("basic-ok" if ok else "basic-bad") if given else "none"
        status, size = self._route(path, ok)
        self.cfg.log.write("%s %s auth=%s -> %d%s", self.command, path, authlog,
                           status, " (%d bytes)" % size if size is not None else "")

    def _route(self, path, ok):
        if not ok:
            self.send_body(401, "authentication required\n",
                           extra={"WWW-Authenticate": 'Basic realm="kiln-pyindex"'})
            return 401, None
        projects, files = self.cfg.wheels.snapshot()
        if path in ("/", "/simple"):
            self.send_body(301, "", extra={"Location": "/simple/"})
            return 301, None
        if path == "/simple/":
            links = [(n + "/", n) for n in sorted(projects)]
            self.send_body(200, self._html("Simple index", links),
                           "text/html; charset=utf-8")
            return 200, None
        if path.startswith("/simple/"):
            name = path[len("/simple/"):]
            if name.endswith("/"):
                name = name[:-1]
            if not name or "/" in name:
                self.send_body(404, "not found\n")
                return 404, None
            norm = pep503_normalize(name)
            if norm != name or not path.endswith("/"):
                self.send_body(301, "", extra={"Location": "/simple/%s/" % norm})
                return 301, None
            if norm not in projects:
                self.send_body(404, "no such project\n")
                return 404, None
            links = [("../../files/%s#sha256=%s" % (f, h), f)
                     for f, h in projects[norm]]
            self.send_body(200, self._html("Links for " + norm, links),
                           "text/html; charset=utf-8")
            return 200, None
        if path.startswith("/files/"):
            f = path[len("/files/"):]
            if f not in files:
                self.send_body(404, "no such file\n")
                return 404, None
            p, h = files[f]
            with open(p, "rb") as fh:
                data = fh.read()
            # As PyPI serves files: immutable, so clients (pip's HTTP
            # cache) may keep them.
            self.send_body(200, data, "application/octet-stream",
                           extra={"ETag": '"%s"' % h,
                                  "Cache-Control": "max-age=365000000, immutable, public"})
            return 200, len(data)
        self.send_body(404, "not found\n")
        return 404, None

    do_GET = _serve
    do_HEAD = _serve


def run_pyindex(args):
    name = args.command
    args.log = Log(os.path.join(args.state, name + ".log"))
    args.wheels = WheelDir(args.wheels, args.exclude)
    PyIndexHandler.cfg = args
    srv = Server(("127.0.0.1", args.port), PyIndexHandler)
    args.log.write("%s listening on 127.0.0.1:%d (wheels %s, auth %s)", name,
                   args.port, args.wheels.path, "basic" if args.pass_file else "none")
    srv.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("token")
    t.add_argument("--state", required=True)
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--key", required=True)
    t.add_argument("--cert", required=True)
    t.add_argument("--issuer", default="kiln-testbed-issuer")
    t.add_argument("--user", default="kiln")
    t.add_argument("--ttl", type=int,
                   default=int(os.environ.get("KILN_TB_TOKEN_TTL") or 60))
    t.set_defaults(func=run_token)
    f = sub.add_parser("faulty")
    f.add_argument("--state", required=True)
    f.add_argument("--port", type=int, required=True)
    f.add_argument("--upstream", required=True)
    f.add_argument("--blobstore-port", type=int, required=True)
    f.set_defaults(func=run_faulty)
    b = sub.add_parser("blobstore")
    b.add_argument("--state", required=True)
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--storage", required=True)
    b.set_defaults(func=run_blobstore)
    h = sub.add_parser("hostile")
    h.add_argument("--state", required=True)
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--cert", required=True)
    h.add_argument("--key", required=True)
    h.add_argument("--realm-host", required=True)
    h.add_argument("--realm-port", type=int, required=True)
    h.set_defaults(func=run_hostile)
    for cmd in ("pyindex", "pyindex-auth"):
        p = sub.add_parser(cmd)
        p.add_argument("--state", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--wheels", required=True)
        p.add_argument("--exclude", action="append", default=[])
        p.add_argument("--user", default="kiln")
        p.add_argument("--pass-file", required=(cmd == "pyindex-auth"),
                       default=None)
        p.set_defaults(func=run_pyindex)
    args = ap.parse_args()
    try:
        args.func(args)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
