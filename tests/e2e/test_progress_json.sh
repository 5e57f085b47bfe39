# kiln build --progress json, plain and -q: every stderr line of json is
# one JSON object, every started step ends, the result is the pushed
# image's digest (as skopeo reads it); a failure ends its step with the
# exit status and emits an error event; -q prints only the image name.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/s"
cd "$T/s"
marker="progress-$RANDOM$RANDOM"
spec() { # the commands' last line
        cat >spec.yaml <<SPEC
name: progress
registry: $KILN_TB_PLAIN/e2e
base_image: $KILN_TB_PLAIN/testbed/busybox:latest
commands:
  - echo $marker
  - $1
SPEC
}
digest_of() { "${SKOPEO[@]}" inspect "${NOTLS[@]}" --format '{{.Digest}}' "docker://$1"; }
# every line one JSON object (fromjson fails on the first that is not JSON)
all_json() {
        jq -R -s -e 'split("\n") | map(select(length > 0) | fromjson | type == "object") | all' "$1" \
                >/dev/null || fail "$2: a line of stderr is not a JSON object: $(cat "$1")"
}
# some event of file $2 matches the jq condition $1
has() { jq -s -e "[.[] | select($1)] | length > 0" "$2" >/dev/null; }
# each step_start's (step, key) has exactly one step_end
steps_end() {
        local starts ends
        starts=$(jq -c 'select(.event == "step_start") | [.step, .key]' "$1" | sort)
        ends=$(jq -c 'select(.event == "step_end") | [.step, .key]' "$1" | sort)
        [ -n "$starts" ] || fail "$2: no step_start event"
        assert_eq "$ends" "$starts" "$2: every started step ends, once"
}

spec 'echo done'
name=$("$KILN" name spec.yaml)
expect_exit 0 build --progress json --json --push spec.yaml
all_json "$T/err" "json build"
steps_end "$T/err" "json build"
pushed=$(digest_of "$name")
assert_eq "$(jq -r .digest "$T/out")" "$pushed" "--json digest is the pushed image's"
assert_eq "$(jq -r 'select(.event == "result") | .digest' "$T/err")" "$pushed" "result event digest"
assert_eq "$(jq -r 'select(.event == "result") | .image' "$T/err")" "$name" "result event image"
assert_eq "$(jq -r 'select(.event == "build") | .image' "$T/err")" "$name" "build event image"
assert_eq "$(jq -r 'select(.event == "output" and .kind == "commands") | .line' "$T/err" | head -1)" \
        "$marker" "the command's output is an output event of its step"
has '.event == "result" and .bytes_pushed > 0 and .new_layers > 0' "$T/err" ||
        fail "result counts no pushed bytes or new layers: $(grep result "$T/err")"
has '.event == "step_end" and .kind == "commands" and .cached == false and .status == 0 and .duration_ms >= 0' \
        "$T/err" || fail "the commands step did not end as run and succeeded"
has '.event == "transfer_end" and .verb == "push" and .state == "pushed" and .bytes == .total' \
        "$T/err" || fail "no pushed transfer with its bytes"
pass "--progress json: valid events, steps end, result digest is the pushed one"

# Rebuilt: cached steps start and end as cached.
expect_exit 0 build --progress json --json --push --force spec.yaml
all_json "$T/err" "cached build"
steps_end "$T/err" "cached build"
assert_eq "$(jq -r 'select(.event == "step_end" and .kind == "commands") | .cached' "$T/err")" "true" \
        "the rebuilt commands step is cached"
assert_eq "$(jq -r 'select(.event == "result") | .digest' "$T/err")" "$pushed" "cached rebuild's result digest"
pass "--progress json: a cached rebuild"

# -q: one line, the name; nothing on stderr.
expect_exit 0 build -q --push --force spec.yaml
assert_eq "$(cat "$T/out")" "$name" "-q prints the image name alone"
assert_eq "$(wc -l <"$T/out")" "1" "-q prints one line"
assert_eq "$(wc -c <"$T/err")" "0" "-q prints nothing on stderr"
expect_exit 0 build -q --json --push --force spec.yaml
assert_eq "$(wc -l <"$T/out")" "1" "-q --json prints one line"
assert_eq "$(jq -r '.image + " " + .digest' "$T/out")" "$name $pushed" "-q --json: name and digest"
assert_eq "$(wc -c <"$T/err")" "0" "-q --json prints nothing on stderr"
pass "-q: the name on one line, nothing else"

# plain: the step's lines carry its number; auto off a terminal: kiln's lines as ever.
expect_exit 0 build --progress plain --no-cache -o "oci:$T/plain:x" spec.yaml
grep -qx "#[0-9]* \[commands\] $marker" "$T/err" || fail "plain: output not prefixed by its step: $(cat "$T/err")"
grep -qE '^#[0-9]+ step [0-9]+: commands: ' "$T/err" || fail "plain: no prefixed step line"
grep -qE '^#[0-9]+ done in [0-9.]+ s$' "$T/err" || fail "plain: no step end line"
expect_exit 0 build --no-cache -o "oci:$T/auto:x" spec.yaml
grep -qx "\[commands\] $marker" "$T/err" || fail "auto off a terminal: output line changed"
grep -qE '^step [0-9]+: commands: ' "$T/err" || fail "auto off a terminal: step line changed"
grep -q '^#' "$T/err" && fail "auto off a terminal: prefixed lines: $(cat "$T/err")"
pass "plain prefixes each step's lines; auto keeps the lines off a terminal"

# A failing step: its end says the status, an error event says the exit code.
spec 'exit 7'
expect_exit 9 build --progress json -o "oci:$T/fail:x" spec.yaml
all_json "$T/err" "failed build"
steps_end "$T/err" "failed build"
assert_eq "$(jq -r 'select(.event == "step_end" and .kind == "commands") | .status' "$T/err")" "7" \
        "the failing step's end has its exit status"
assert_eq "$(jq -r 'select(.event == "error") | .exit_code' "$T/err")" "9" "error event exit code"
assert_contains "$(jq -r 'select(.event == "error") | .message' "$T/err")" "status 7" "error event message"
has '.event == "result"' "$T/err" && fail "a failed build emitted a result"
[ ! -e "$T/fail" ] || fail "a failed build wrote its output"
# -q: the error and the failing step's output, nothing on stdout
expect_exit 9 build -q -o "oci:$T/fail:x" spec.yaml
assert_eq "$(wc -c <"$T/out")" "0" "-q failure: nothing on stdout"
assert_contains "$(cat "$T/err")" "[commands] $marker" "-q failure: the failing step's output"
assert_contains "$(cat "$T/err")" "kiln: error: " "-q failure: the error"
pass "a failure: step end with status, error event; -q shows the step's output"

expect_exit 2 build --progress fancy spec.yaml
assert_contains "$(cat "$T/err")" "--progress fancy: want auto, tty, plain or json" "bad --progress named"
pass "a bad --progress value is a usage error"
