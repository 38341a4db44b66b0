#!/usr/bin/env bash
# bd's unet against its PyTorch peer, side by side on this machine.
#
#   tests/bench/run_peer.sh [--threads N] [--widths 32,64] [--batches 64,128]
#                           [--build DIR]
#
# Builds bench_unet and the unet plugin (in DIR, default build-bench),
# installs Debian's python3-torch if /usr/bin/python3 cannot import torch,
# then for every (mode, width, batch) runs bd's step and PyTorch's in turn,
# one after the other, with the same thread count (so a busy machine hurts
# both alike), and prints the table with the ratios bd / PyTorch. The sgemm
# ceiling is measured before and after. Each side's raw lines are kept in
# DIR/bench/run_peer.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=2 widths=32,64 batches=64,128 build=$root/build-bench
while [ $# -gt 0 ]; do
    case $1 in
        --threads) threads=$2; shift 2 ;;
        --widths)  widths=$2; shift 2 ;;
        --batches) batches=$2; shift 2 ;;
        --build)   build=$2; shift 2 ;;
        *) echo "usage: $0 [--threads N] [--widths 32,64] [--batches 64,128] [--build DIR]" >&2
           exit 2 ;;
    esac
done

py=/usr/bin/python3
if ! $py -c 'import torch' 2>/dev/null; then
    echo "installing Debian's python3-torch (CPU PyTorch, for the peer only)"
    apt-get install -y python3-torch >/dev/null
fi
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j2 --target bench_unet bd_unet >/dev/null
bench=$build/bench/bench_unet
peer=$root/tests/bench/unet_torch.py
log=$build/bench/run_peer.log
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

$bench --threads "$threads" --ceiling | tee "$log"
ceiling=$(awk '/^CEILING/ { print $2 }' "$log")
for mode in train sample; do
    for w in ${widths//,/ }; do
        for b in ${batches//,/ }; do
            $bench --threads "$threads" --one $mode "$w" "$b" "$ceiling" | tee -a "$log"
            $py "$peer" --threads "$threads" --bench "$bench" --widths "$w" \
                --one $mode "$w" "$b" | tee -a "$log"
        done
    done
done
$bench --threads "$threads" --ceiling | tee -a "$log"

# PARAMS <side> <width> <n>; RESULT <side> <mode> <width> <batch> <img/s>
# <GFLOP/s> <peak MiB> <ms/step>; CEILING <square> <im2col> (before, after)
awk -v threads="$threads" '
    /^PARAMS/  { params[$2, $3] = $4 }
    /^CEILING/ { ceil[++nc] = $2 }
    /^RESULT/  { k = $3 " " $4 " " $5; if (!(k in seen)) { seen[k] = 1; keys[++n] = k }
                 ips[$2, k] = $6; gf[$2, k] = $7; mem[$2, k] = $8 }
    END {
        printf "\n%d threads; sgemm ceiling (square 2048) %.1f GFLOP/s before, %.1f after\n",
               threads, ceil[1], ceil[nc]
        bad = 0
        for (p in params) {
            split(p, pw, SUBSEP)
            if (pw[1] == "bd" && params["torch", pw[2]] != params[p]) {
                printf "PARAMETER COUNTS DIFFER at width %s: bd %s, torch %s\n",
                       pw[2], params[p], params["torch", pw[2]]; bad = 1
            } else if (pw[1] == "bd")
                printf "width %s: %s parameters on both sides\n", pw[2], params[p]
        }
        printf "\n%-6s %5s %5s | %8s %8s %6s | %7s %7s %5s | %7s %7s\n", "mode", "width",
               "batch", "bd img/s", "pt img/s", "bd/pt", "bd GF/s", "pt GF/s", "bd %",
               "bd MiB", "pt MiB"
        for (i = 1; i <= n; i++) {
            k = keys[i]; split(k, f, " ")
            r = ips["torch", k] > 0 ? ips["bd", k] / ips["torch", k] : 0
            printf "%-6s %5s %5s | %8.2f %8.2f %6.2f | %7.1f %7.1f %4.0f%% | %7.0f %7.0f\n",
                   f[1], f[2], f[3], ips["bd", k], ips["torch", k], r, gf["bd", k],
                   gf["torch", k], 100 * gf["bd", k] / ceil[1], mem["bd", k], mem["torch", k]
        }
        exit bad
    }' "$log"
