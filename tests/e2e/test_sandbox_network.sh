# Build steps' network (issue 11): with the default (--network private)
# a step has a network namespace of its own. It cannot connect to a test
# bed service the spec does not name, nor reach an abstract unix socket
# opened on the host, nor capture the host's loopback traffic, nor see the
# host's interfaces; it can reach the spec's pip index on loopback (pip
# installs from it), an --allow-host port, and Debian's archive (apt
# installs). As root, with a subuid range and with a single mapped id.
# --network none: loopback and the spec's index only; --network host: the
# host's network, and a warning saying so. The kernel judges each attempt
# (connect's errno, /proc/net/dev), pip and apt judge the rest.
. "$(dirname "$0")/lib.sh"
: "${KILN_TB_PYINDEX:?the test bed has no python index}"

ensure_user kilne2e-range range
ensure_user kilne2e-single single
KILN=$(kiln_for_users)

port_of() { echo "${1##*:}"; }
PLAIN_PORT=$(port_of "$KILN_TB_PLAIN")  # a service no spec below names
ALLOW_PORT=$(port_of "$KILN_TB_BASIC")  # reached only through --allow-host
INDEX_PORT=$(echo "$KILN_TB_PYINDEX" | sed -E 's|^http://127\.0\.0\.1:([0-9]+)/.*|\1|')
[ -n "$INDEX_PORT" ] && [ "$INDEX_PORT" != "$KILN_TB_PYINDEX" ] || fail "index URL $KILN_TB_PYINDEX"

# Host side: an abstract unix socket that answers a marker, and loopback
# traffic that carries another, sent all along (what a sniffing step would
# capture: on the shared network it arrives within milliseconds).
SNIFF_MARK="kiln-sniff-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
start_host_abstract_socket
python3 - "$SNIFF_MARK" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    s.sendto(sys.argv[1].encode(), ("127.0.0.1", 9))
    time.sleep(0.02)
PY
SNIFF_PID=$!
trap 'kill $ABSTRACT_PID $SNIFF_PID 2>/dev/null; rm -rf "$T"' EXIT
wait_host_abstract_socket

# A python probe run as a build command: one "probe: NAME=RESULT" line per
# attempt, where RESULT is reached, seen, or why not (the errno's name).
write_probe() { # file
        cat >"$1" <<'PY'
import errno, os, socket, sys, time

def result(name, fn):
    try:
        r = fn()
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__
    print(f"probe: {name}={r}", flush=True)

def tcp(host, port):
    def f():
        socket.create_connection((host, port), timeout=10).close()
        return "reached"
    return f

def abstract(name):
    def f():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect("\0" + name)
        return "reached" if s.recv(64).startswith(b"HOST-ABSTRACT") else "connected"
    return f

def sniff(mark):
    def f():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.settimeout(1)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                if mark.encode() in s.recv(65536):
                    return "seen"
            except socket.timeout:
                pass
        return "not-seen"
    return f

def ifaces():
    with open("/proc/net/dev") as f:
        return ",".join(sorted(l.split(":")[0].strip() for l in f.readlines()[2:]))

for arg in sys.argv[1:]:
    kind, _, val = arg.partition("=")
    if kind == "tcp":
        host, port = val.rsplit(":", 1)
        result(arg, tcp(host, int(port)))
    elif kind == "abstract":
        result(arg, abstract(val))
    elif kind == "sniff":
        result(arg, sniff(val))
    elif kind == "ifaces":
        result(arg, ifaces)
PY
}

# Runs kiln as $1 in $T/$1/$2 (spec.yaml there) with the remaining flags
# and the cache $CACHE (default: the user's); the log in build.log, the
# exit code in rc.
build_in() { # user dir flags...
        local user=$1 dir="$T/$1/$2"
        shift 2
        chown -R "$user" "$T/$user" 2>/dev/null || true
        local rc=0
        (cd "$dir" && as_user "$user" env KILN_CACHE="${CACHE:-$T/$user/cache}" "$KILN" build spec.yaml \
                -o "oci:$dir/out:x" "$@" >"$dir/build.out" 2>"$dir/build.log") || rc=$?
        echo "$rc" >"$dir/rc"
}
probe_result() { # log name
        sed -n "s/^\[commands\] probe: $2=//p" "$1" | head -1
}
new_dir() { # user name: a directory with the probe in it
        mkdir -p "$T/$1/$2"
        write_probe "$T/$1/$2/probe.py"
}

# ---- attacks: each one function that gives the probe's arguments (what a
# step tries) and checks the outcome in the build's log ----

# A loopback service of the host that the spec does not name: the plain
# registry kiln pulled the base from. The step's connect must fail.
attack_unnamed_loopback_service() { # probe | check LOG WHO
        local what="tcp=127.0.0.1:$PLAIN_PORT"
        [ "$1" = probe ] && { echo "$what"; return; }
        local r
        r=$(probe_result "$2" "$what")
        [ -n "$r" ] || { cat "$2" >&2; fail "$3: the loopback probe did not run"; }
        [ "$r" != reached ] || fail "$3: a step reached the host's $KILN_TB_PLAIN, which the spec does not name"
        pass "$3: a step cannot connect to the host's loopback service $KILN_TB_PLAIN ($r)"
}

# An abstract unix socket the test opened on the host: abstract sockets
# belong to a network namespace, so the step's connect must fail.
attack_host_abstract_socket() { # probe | check LOG WHO
        local what="abstract=$ABSTRACT"
        [ "$1" = probe ] && { echo "$what"; return; }
        local r
        r=$(probe_result "$2" "$what")
        [ -n "$r" ] || { cat "$2" >&2; fail "$3: the abstract socket probe did not run"; }
        [ "$r" = ECONNREFUSED ] || fail "$3: a step reached the host's abstract socket @$ABSTRACT ($r)"
        pass "$3: a step cannot reach an abstract unix socket of the host ($r)"
}

# ---- private (the default): what a step reaches, and what it does not ----

private_build() { # user
        local user=$1 d="$T/$1/private"
        new_dir "$user" private
        cat >"$d/spec.yaml" <<SPEC
name: net-private
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
apt_packages: [jq]
packages: [kiln-hello==1.1.0]
pip_index: $KILN_TB_PYINDEX
copy: [probe.py]
commands:
  - python3 /root/probe.py $(attack_unnamed_loopback_service probe) $(attack_host_abstract_socket probe) tcp=127.0.0.1:$ALLOW_PORT tcp=127.0.0.1:$INDEX_PORT ifaces sniff=$SNIFF_MARK
SPEC
        build_in "$user" private --allow-host "127.0.0.1:$ALLOW_PORT"
        [ "$(cat "$d/rc")" = 0 ] || { cat "$d/build.log" >&2; fail "$user: private build"; }
        local log="$d/build.log"
        attack_unnamed_loopback_service check "$log" "$user"
        attack_host_abstract_socket check "$log" "$user"
        grep -q '^\[apt\] Get:.* jq amd64' "$log" || fail "$user: apt did not download jq from Debian's archive"
        grep -q 'Downloading.*kiln_hello' "$log" || fail "$user: pip did not download kiln-hello from the index"
        assert_eq "$(probe_result "$log" "tcp=127.0.0.1:$ALLOW_PORT")" reached "$user: the --allow-host port"
        assert_eq "$(probe_result "$log" "tcp=127.0.0.1:$INDEX_PORT")" reached "$user: the spec's index port"
        assert_eq "$(probe_result "$log" ifaces)" "lo,tap0" "$user: the step's interfaces (/proc/net/dev)"
        local s
        s=$(probe_result "$log" "sniff=$SNIFF_MARK")
        case "$s" in
        not-seen | EPERM) ;;
        *) fail "$user: a packet socket in the step captured the host's loopback traffic ($s)" ;;
        esac
        umoci unpack --image "$d/out:x" "$d/b" >/dev/null
        assert_eq "$(chroot "$d/b/rootfs" /root/.venv/bin/kiln-hello)" "hello from kiln-hello 1.1.0" \
                "$user: the installed console script runs"
        chroot "$d/b/rootfs" jq --version >/dev/null || fail "$user: jq does not run"
        pass "$user: private: apt (Debian's archive), pip (the spec's loopback index) and --allow-host work; no host interface, no host traffic ($s)"
}

for user in root kilne2e-range kilne2e-single; do
        mkdir -p "$T/$user/cache"
        private_build "$user"
done

# ---- none: loopback and the spec's index, nothing else ----
d="$T/root/none"
new_dir root none
cat >"$d/spec.yaml" <<SPEC
name: net-none
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
packages: [kiln-hello==1.1.0]
pip_index: $KILN_TB_PYINDEX
copy: [probe.py]
commands:
  - python3 /root/probe.py ifaces tcp=127.0.0.1:$INDEX_PORT tcp=127.0.0.1:$PLAIN_PORT tcp=10.0.2.2:80 tcp=deb.debian.org:80
SPEC
CACHE=$d/cache build_in root none --network none # pip's cache empty: it downloads
[ "$(cat "$d/rc")" = 0 ] || { cat "$d/build.log" >&2; fail "none build"; }
assert_eq "$(probe_result "$d/build.log" ifaces)" lo "none: the step's interfaces"
assert_eq "$(probe_result "$d/build.log" "tcp=127.0.0.1:$INDEX_PORT")" reached "none: the spec's index"
assert_eq "$(probe_result "$d/build.log" "tcp=127.0.0.1:$PLAIN_PORT")" ECONNREFUSED "none: an unnamed port"
assert_eq "$(probe_result "$d/build.log" "tcp=10.0.2.2:80")" ENETUNREACH "none: slirp4netns's gateway"
r=$(probe_result "$d/build.log" "tcp=deb.debian.org:80")
[ -n "$r" ] && [ "$r" != reached ] || fail "none: a step reached deb.debian.org ($r)"
grep -q 'Downloading.*kiln_hello' "$d/build.log" || fail "none: pip did not install from the spec's index"
pass "none: only loopback; pip installs from the spec's index; outside unreachable ($r)"

# ---- an index named only in a requirements file (or a lock file: see
# test_build_lock) is forwarded too ----
d="$T/root/reqs"
new_dir root reqs
printf -- '--index-url %s\nkiln-hello==1.1.0\n' "$KILN_TB_PYINDEX" >"$d/requirements.txt"
cat >"$d/spec.yaml" <<SPEC
name: net-reqs
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
requirements: requirements.txt
SPEC
CACHE=$d/cache build_in root reqs --network none
[ "$(cat "$d/rc")" = 0 ] || { cat "$d/build.log" >&2; fail "an index named by requirements.txt is not reached"; }
grep -q 'Downloading.*kiln_hello' "$d/build.log" || fail "reqs: pip did not install from the file's index"
pass "an index named only in requirements.txt is forwarded"

# ---- host: the host's network, as before, and said so ----
d="$T/root/host"
new_dir root host
cat >"$d/spec.yaml" <<SPEC
name: net-host
base_image: $KILN_TB_PLAIN/testbed/python:bookworm
copy: [probe.py]
commands:
  - python3 /root/probe.py tcp=127.0.0.1:$PLAIN_PORT abstract=$ABSTRACT
SPEC
build_in root host --network host
[ "$(cat "$d/rc")" = 0 ] || { cat "$d/build.log" >&2; fail "host build"; }
assert_eq "$(probe_result "$d/build.log" "tcp=127.0.0.1:$PLAIN_PORT")" reached "host: the unnamed port"
assert_eq "$(probe_result "$d/build.log" "abstract=$ABSTRACT")" reached "host: the abstract socket"
grep -q "network host: build steps share this host's network" "$d/build.log" ||
        fail "host: no warning on stderr"
pass "host: the host's network as before, with a warning"

# ---- the setting in the plan and --json; refused values ----
(cd "$d" && "$KILN" build spec.yaml --dry-run --allow-host "localhost:$ALLOW_PORT" >"$T/plan")
grep -qx "network: private (forwarded from the host: 127.0.0.1:$ALLOW_PORT, \[::1\]:$ALLOW_PORT)" "$T/plan" ||
        { cat "$T/plan"; fail "the plan does not name the network and its forwarded ports"; }
(cd "$d" && "$KILN" build spec.yaml --json -o "oci:$T/json:x" --network host >"$T/json.out" 2>/dev/null)
assert_eq "$(jq -r .network "$T/json.out")" host "--json names the network"
expect_exit 2 build "$d/spec.yaml" --network bridge -o "oci:$T/x:x"
assert_contains "$(cat "$T/err")" "--network bridge: want private, host or none" "bad --network"
expect_exit 2 build "$d/spec.yaml" --allow-host 192.0.2.1:80 -o "oci:$T/x:x"
assert_contains "$(cat "$T/err")" "--allow-host 192.0.2.1:80: HOST must be a loopback address" "bad --allow-host"
pass "the plan and --json name the network; bad values are refused"
