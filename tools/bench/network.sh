#!/usr/bin/env bash
# What the private network costs: the apt+pip reference spec built cold
# (a fresh KILN_CACHE each time, so the base is pulled and unpacked, apt
# downloads from Debian's archive and pip from the test bed's index) with
# --network private against --network host, the two interleaved so a
# change in the machine's load hits both alike; then the same with a warm
# cache and every step rerun (--no-cache), where the network's own cost
# (slirp4netns started for each sandboxed step) weighs more. Medians of
# BENCH_RUNS each.
# Not in the default suites (it spends minutes on the archive's network):
#   tools/bench/run network
set -euo pipefail
. "$(dirname "$0")/lib.sh"
w=$BENCH_OUT/network
reference_pip_context "$w" bench-network
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# measure NAME COLD: BENCH_RUNS builds with each network, interleaved;
# COLD=1 empties KILN_CACHE before each, else every step reruns
# (--no-cache) over a warm cache (the installers' downloads cached).
measure() {
        local name=$1 cold=$2 slug=${1//[^a-zA-Z0-9]/_}
        local flags=()
        [ "$cold" = 1 ] || flags=(--no-cache)
        rm -rf "$w/cache"
        [ "$cold" = 1 ] || (cd "$w/ctx" && KILN_CACHE=$w/cache "$KILN" build -q spec.yaml \
                -o "oci:$w/out:x" >/dev/null 2>&1)
        for i in $(seq "$BENCH_RUNS"); do
                for net in host private; do
                        [ "$cold" = 1 ] && rm -rf "$w/cache"
                        rm -rf "$w/out"
                        local start
                        start=$(date +%s.%N)
                        (cd "$w/ctx" && KILN_CACHE=$w/cache "$KILN" build -q --network "$net" \
                                "${flags[@]}" spec.yaml -o "oci:$w/out:x" >/dev/null 2>"$w/$slug.$net.$i.log") ||
                                { cat "$w/$slug.$net.$i.log" >&2; exit 1; }
                        awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.3f\n", e - s}' \
                                >>"$w/$slug.$net.times"
                done
        done
        local p h
        p=$(median <"$w/$slug.private.times")
        h=$(median <"$w/$slug.host.times")
        printf '%-44s %12.3f %12.3f %8.2f   (--network host; runs: private %s, host %s)\n' \
                "$name" "$p" "$h" "$(awk -v a="$p" -v b="$h" 'BEGIN{print a/b}')" \
                "$(paste -sd' ' "$w/$slug.private.times")" "$(paste -sd' ' "$w/$slug.host.times")"
}
measure "apt+pip cold, --network private" 1
measure "apt+pip, steps rerun, --network private" 0
