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

# host:port of the test bed's python index (pip's --trusted-host).
pyindex_host() {
        local h=${KILN_TB_PYINDEX#http://}
        echo "${h%%/*}"
}

# Writes DIR/buildah.sh, a rebuild with buildah's layer cache (bud
# --layers of DIR/ctx/Containerfile) and a push of the result, and runs it
# once so the cache is warm.
buildah_rebuild_script() { # dir tag
        cat >"$1/buildah.sh" <<SH
set -e
cd "$1/ctx"
buildah bud -q --layers --network=host --tls-verify=false -t $2 . >/dev/null 2>&1
buildah push -q --tls-verify=false $2 >/dev/null
SH
        bash "$1/buildah.sh"
}

# reference_context with three packages from the test bed's index.
reference_pip_context() { # dir name
        local pkgs="kiln-hello==1.1.0 kiln-dep==0.1.0 kiln-data==2.0.0"
        reference_context "$1" "$2" "packages: [${pkgs// /, }]" \
                "RUN /root/.venv/bin/pip install --index-url $KILN_TB_PYINDEX --trusted-host $(pyindex_host) $pkgs"
}

# The reference context of the rebuild benchmarks in DIR/ctx: a spec with
# apt [curl, jq], python packages, pip_index and a copied tree, and the
# Containerfile flytekit's default builder would write for it. PIP_SPEC is
# the spec's packages line(s), PIP_CF the Containerfile's pip line(s).
# Sets base.
reference_context() { # dir name pip-spec pip-cf
        mkdir -p "$1/ctx/tree"
        echo "copied" >"$1/ctx/tree/a.txt"
        base="$KILN_TB_PLAIN/testbed/python:bookworm"
        cat >"$1/ctx/spec.yaml" <<SPEC
name: $2
registry: $KILN_TB_PLAIN/bench
base_image: $base
apt_packages: [curl, jq]
$3
pip_index: $KILN_TB_PYINDEX
copy:
  - tree
SPEC
        cat >"$1/ctx/Containerfile" <<CF
FROM $base
RUN apt-get update && apt-get install -y --no-install-recommends curl jq
RUN id -u flytekit || useradd --create-home --shell /bin/bash flytekit
RUN chown -R flytekit /root && chown -R flytekit /home
RUN python3 -m venv --system-site-packages /root/.venv
$4
ENV PATH="/root/.venv/bin:\$PATH" PYTHONPATH=/root
COPY --chown=flytekit tree /root/tree
WORKDIR /root
USER flytekit
CF
}
