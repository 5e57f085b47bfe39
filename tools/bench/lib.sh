# Shared by the benchmark suites.
# compare NAME PEER_NAME PREPARE_KILN KILN_CMD PREPARE_PEER PEER_CMD
compare() {
        local name=$1 peer=$2 pk=$3 k=$4 pp=$5 p=$6
        local slug=${name//[^a-zA-Z0-9]/_}
        hyperfine -N --style none --runs "$BENCH_RUNS" --export-json "$BENCH_OUT/$slug.json" \
                --prepare "$pk" -n kiln "$k" --prepare "$pp" -n "$peer" "$p" >"$BENCH_OUT/$slug.log" 2>&1 || {
                cat "$BENCH_OUT/$slug.log" >&2
                return 1
        }
        local km pm
        km=$(jq -r '.results[0].median' "$BENCH_OUT/$slug.json")
        pm=$(jq -r '.results[1].median' "$BENCH_OUT/$slug.json")
        printf '%-44s %12.3f %12.3f %8.2f   (%s)\n' "$name" "$km" "$pm" "$(awk -v a="$km" -v b="$pm" 'BEGIN{print a/b}')" "$peer"
}
