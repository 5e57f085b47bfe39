# Shared by the end-to-end tests: the test bed's addresses, a scratch
# directory per test, and assertions that say what was expected.
set -euo pipefail

: "${KILN:?KILN must name the kiln binary}"
: "${KILN_SRC:?KILN_SRC must name the source tree}"
export KILN_TESTBED_STATE=${KILN_TESTBED_STATE:-/tmp/kiln-testbed}
if [ ! -f "$KILN_TESTBED_STATE/env" ]; then
        echo "test bed not running: no $KILN_TESTBED_STATE/env (run tools/testbed up)" >&2
        exit 1
fi
# shellcheck disable=SC1091
. "$KILN_TESTBED_STATE/env"

# Tools nobody here wrote judge kiln's output; in CI a missing judge is a
# failure, never a skip.
for tool in skopeo umoci jq; do
        command -v "$tool" >/dev/null || { echo "missing required tool: $tool" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-e2e.XXXXXX")
trap 'rm -rf "$T"' EXIT
# Each test gets an empty cache and no ambient credentials.
export KILN_CACHE="$T/cache"
export HOME="$T/home" DOCKER_CONFIG="$T/home/.docker" XDG_RUNTIME_DIR="$T/run"
unset REGISTRY_AUTH_FILE SSL_CERT_FILE
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"

SKOPEO=(skopeo --insecure-policy)
NOTLS=(--tls-verify=false)

fail() {
        echo "FAIL: $*" >&2
        exit 1
}
pass() {
        echo "ok: $*"
}
assert_eq() { # got want what
        [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}
assert_contains() { # haystack needle what
        case "$1" in *"$2"*) ;; *) fail "$3: '$2' not in: $1" ;; esac
}
# Runs kiln expecting exit code $1; stdout to $T/out, stderr to $T/err.
expect_exit() {
        local want=$1
        shift
        local got=0
        "$KILN" "$@" >"$T/out" 2>"$T/err" || got=$?
        if [ "$got" != "$want" ]; then
                echo "--- stdout" >&2; cat "$T/out" >&2
                echo "--- stderr" >&2; cat "$T/err" >&2
                fail "kiln $* exited $got, want $want"
        fi
}
sha256_of() {
        echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"
}
# Writes a containers auth.json with user:pass for host.
write_auth_file() { # file host user pass
        mkdir -p "$(dirname "$1")"
        local b64
        b64=$(printf '%s:%s' "$3" "$4" | base64 -w0)
        printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$2" "$b64" >"$1"
}

# Unprivileged users for rootless runs: one with /etc/subuid ranges (the
# widest mapping), one without (a single mapped id).
ensure_user() { # name range|single
        id "$1" >/dev/null 2>&1 || useradd -m "$1"
        if [ "$2" = single ]; then
                sed -i "/^$1:/d" /etc/subuid /etc/subgid
        elif ! grep -q "^$1:" /etc/subuid; then
                fail "user $1 has no /etc/subuid range"
        fi
}
# The checkout may sit below a directory ordinary users cannot enter (a
# clone in /root): they run a copy of kiln from the test's own directory.
kiln_for_users() {
        chmod 755 "$T"
        cp "$KILN" "$T/kiln"
        chmod 755 "$T/kiln"
        echo "$T/kiln"
}
# Runs a command as user $1 (or as root when $1 is root).
as_user() {
        local u=$1
        shift
        if [ "$u" = root ]; then "$@"; else runuser -u "$u" -- "$@"; fi
}
# Runs a shell command in an image unpacked by `umoci unpack` with runc,
# which applies the image's user, working directory and environment itself
# (umoci resolved them from the config): what a container runtime would do.
run_image() { # bundle command
        local b=$1
        jq --arg c "$2" '.process.terminal = false | .process.args = ["/bin/sh", "-c", $c]' \
                "$b/config.json" >"$b/config.json.run" && mv "$b/config.json.run" "$b/config.json"
        runc run --bundle "$b" "kiln-e2e-$$-$RANDOM" </dev/null
}
# Pushes image $1 of the plain registry with one more layer, the tar $3,
# as $2 (repo:tag) on the plain registry: hostile bases are made this way.
push_with_layer() { # src-image dest-repo:tag tar
        rm -rf "$T/with-layer"
        "${SKOPEO[@]}" copy -q --src-tls-verify=false "docker://$KILN_TB_PLAIN/$1" "oci:$T/with-layer:src"
        python3 "$KILN_SRC/tests/e2e/append-layer.py" "$T/with-layer" src "$3"
        "${SKOPEO[@]}" copy -q --dest-tls-verify=false "oci:$T/with-layer:src" "docker://$KILN_TB_PLAIN/$2"
}

# An abstract unix socket on the host that answers HOST-ABSTRACT, for the
# tests that prove a step cannot reach it: sets ABSTRACT (its name) and
# ABSTRACT_PID (for the test's trap); wait_host_abstract_socket then waits
# until it answers (a generous bound on a loaded machine).
start_host_abstract_socket() {
        ABSTRACT="kiln-e2e-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
        python3 - "$ABSTRACT" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + sys.argv[1])
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(b"HOST-ABSTRACT\n")
    c.close()
PY
        ABSTRACT_PID=$!
}
host_abstract_socket_answers() {
        python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect("\0" + sys.argv[1])
assert s.recv(64).startswith(b"HOST-ABSTRACT")' "$ABSTRACT" 2>/dev/null
}
wait_host_abstract_socket() {
        local i
        for i in $(seq 600); do
                host_abstract_socket_answers && return 0
                sleep 0.1
        done
        fail "the host's abstract socket does not answer on the host"
}
