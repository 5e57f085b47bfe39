# kiln build in a real terminal (a tmux pane): the live view while a step
# runs (the step with its elapsed time, its last lines, transfer bars), the
# summary after, and on a failure the failing step's whole output. The
# step waits for a file the test serves over a loopback port, so the
# capture "during" never races the build. The captures are kept in
# $KILN_ARTIFACTS/test_progress_tty (default: artifacts/ beside $KILN).
. "$(dirname "$0")/lib.sh"

command -v tmux >/dev/null || fail "tmux is missing (tools/install-deps installs it)"
ART=${KILN_ARTIFACTS:-$(dirname "$KILN")/artifacts}/test_progress_tty
rm -rf "$ART"
mkdir -p "$ART" "$T/s" "$T/srv"
kill_panes() { for s in "$T"/tmux.*.sock; do if [ -S "$s" ]; then tmux -S "$s" kill-server 2>/dev/null || true; fi; done; }
trap 'kill_panes; [ -z "${SRV:-}" ] || kill "$SRV" 2>/dev/null; rm -rf "$T"' EXIT
cd "$T/s"

# Polls (0.2 s) until $1 (a command) succeeds; fails after $2 seconds.
wait_for() {
        local i=0
        until eval "$1"; do
                i=$((i + 1))
                [ "$i" -lt $(($2 * 5)) ] || fail "waited $2 s for: $1"
                sleep 0.2
        done
}
capture() { tmux -S "$TMUX_SOCK" capture-pane -p -J -S - -t kiln >"$1"; }
# Runs kiln build ARGS in a fresh 150x50 pane; its exit code goes to
# $T/rc, the bytes it wrote to the terminal to $T/raw (script(1)).
run_in_pane() {
        rm -f "$T/rc" "$T/raw"
        # a server of its own per run: a new session started on the socket
        # of a server still shutting down fails ("server exited unexpectedly")
        kill_panes
        PANES=$((${PANES:-0} + 1))
        TMUX_SOCK="$T/tmux.$PANES.sock"
        printf '%q ' "$KILN" build "$@" >"$T/run.sh"
        tmux -S "$TMUX_SOCK" new-session -d -s kiln -x 150 -y 50 \
                "cd $T/s; script -q -e -c 'bash $T/run.sh' $T/raw; echo \$? >$T/rc; sleep 600"
}

/usr/bin/python3 -u -m http.server --bind 127.0.0.1 0 --directory "$T/srv" >"$T/srv.log" 2>&1 &
SRV=$!
wait_for 'grep -q "port [0-9]" "$T/srv.log"' 30
port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$T/srv.log" | head -1)
cat >spec.yaml <<SPEC
name: progress-tty
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
commands:
  - head -c 3000000 /dev/urandom >/blob
  - i=0; until wget -q -O /dev/null http://127.0.0.1:$port/go 2>/dev/null; do i=\$((i+1)); [ \$i -lt 3000 ] || exit 3; echo waiting-\$i; sleep 0.2; done
SPEC
name=$("$KILN" name spec.yaml)

run_in_pane --push --allow-host "127.0.0.1:$port" spec.yaml
# During: the running step with its elapsed time and the program's last line.
running='^#[0-9]+ commands: .*  running [0-9]+\.[0-9]s$'
wait_for 'capture "$T/during1"; grep -qE "$running" "$T/during1" && grep -qE "^  \| waiting-[0-9]+$" "$T/during1"' 120
# ... redrawn in place: later, one running line still, with a later time
t1=$(grep -E "$running" "$T/during1" | sed -E 's/.* running ([0-9.]+)s$/\1/')
wait_for 'capture "$T/during"; t2=$(grep -E "$running" "$T/during" | sed -E "s/.* running ([0-9.]+)s\$/\\1/"); [ -n "$t2" ] && [ "$(grep -cE "^  \| waiting-" "$T/during")" = 5 ] && awk -v a="$t1" -v b="$t2" "BEGIN { exit !(b > a) }"' 120
cp "$T/during" "$ART/during.txt"
assert_eq "$(grep -cE "$running" "$T/during")" "1" "one live line for the running step"
assert_eq "$(grep -cE '^  \| waiting-' "$T/during")" "5" "the running step's last 5 lines"
grep -qE '^pull sha256:[0-9a-f]{12} \[=+\] [0-9.]+ [KM]?i?B / [0-9.]+ [KM]?i?B  [0-9.]+ [KMG]?i?B/s' "$T/during" ||
        fail "no transfer bar while the build runs: $(cat "$T/during")"
grep -q '^building '"$name"' (linux/amd64)$' "$T/during" || fail "no build line naming $name"
touch "$T/srv/go"
wait_for '[ -s "$T/rc" ]' 300
capture "$T/after"
cp "$T/after" "$ART/after.txt"
assert_eq "$(cat "$T/rc")" "0" "the build in the pane"
digest=$("${SKOPEO[@]}" inspect "${NOTLS[@]}" --format '{{.Digest}}' "docker://$name")
grep -qx "image:   $name" "$T/after" || fail "summary: no image line: $(cat "$T/after")"
grep -qx "digest:  $digest" "$T/after" || fail "summary: the digest is not the pushed $digest"
grep -qE '^layers:  [1-9][0-9]* new, [0-9]+ steps cached$' "$T/after" || fail "summary: no layers line"
grep -qE '^pushed:  [0-9.]+ MiB$' "$T/after" || fail "summary: the 3 MB layer's push is not counted"
grep -qE '^time:    [0-9]+\.[0-9]s$' "$T/after" || fail "summary: no total time"
grep -qE '^push sha256:[0-9a-f]{12} \[=+\] .* pushed$' "$T/after" || fail "no full push bar after the push"
grep -qE '^#[0-9]+ commands: .*  DONE [0-9]+\.[0-9]s$' "$T/after" || fail "the commands step did not end DONE"
grep -qE 'running [0-9.]+s$|^  \| waiting-' "$T/after" && fail "the live block was not erased: $(cat "$T/after")"
pass "tty: live step line with elapsed time, its last lines, bars; the summary"

# A failure: the failing step's whole output (more than the 5 live lines).
cat >fail.yaml <<SPEC
name: progress-tty-fail
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
commands:
  - for i in \$(seq 12); do echo line-\$i-$RANDOM; done; exit 7
SPEC
run_in_pane -o "oci:$T/fail:x" fail.yaml
wait_for '[ -s "$T/rc" ]' 300
capture "$T/failure"
cp "$T/failure" "$ART/failure.txt"
assert_eq "$(cat "$T/rc")" "9" "the failing build's exit code"
assert_eq "$(grep -cE '^\[commands\] line-([1-9]|1[0-2])-[0-9]+$' "$T/failure")" "12" \
        "every line of the failing step is shown"
grep -qE '^#[0-9]+ commands: .*  FAILED after [0-9.]+s \(status 7\)$' "$T/failure" || fail "no FAILED step line"
grep -q '^kiln: error: .*status 7' "$T/failure" || fail "no error line"
# read as a stream of lines (the flytekit plugin does), the error line
# starts with its text, not after the live view's escapes
tr -d '\r' <"$T/raw" | grep -aq '^kiln: error: .*status 7' ||
        fail "the error line does not start a line of the stream: $(tr -d '\r' <"$T/raw" | grep -a 'kiln: error' | cat -v)"
pass "tty: a failure shows the step's whole output"
