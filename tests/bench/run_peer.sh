#!/usr/bin/env bash
# bd's unet against its PyTorch peer, side by side on this machine.
#
#   tests/bench/run_peer.sh [--threads N] [--widths 32,64] [--batches 64,128]
#                           [--attention "none down2,down3,up1 ..."]
#                           [--modes "train sample"] [--size 32] [--emb 256]
#                           [--malloc "glibc tcmalloc"] [--build DIR]
#
# Builds bench_unet and the unet plugin (in DIR, default build-bench),
# installs Debian's python3-torch if /usr/bin/python3 cannot import torch
# (and libtcmalloc-minimal4 for --malloc tcmalloc), then for every (mode,
# attention, width, batch) runs bd's step and PyTorch's in turn, one after
# the other, with the same thread count (so a busy machine hurts both
# alike), and prints the table with the ratios bd / PyTorch and each side's
# fraction of the fp32 FMA peak. --attention lists the sets of attending
# blocks, space-separated (default: none; 8x8 and 4x4; all but 32x32; all
# six). --malloc lists the allocators PyTorch runs under, each in its own
# run: glibc's as installed, and tcmalloc (LD_PRELOAD), which keeps freed
# memory mapped where glibc returns the large blocks to the kernel and
# faults them back in every step (PyTorch trains width 32 1.4-1.5 times as
# fast under it here). The ratio is against PyTorch's best allocator, the
# peer at its best; bd uses its own arena and runs under glibc's. The FMA
# peak and the sgemm ceiling are measured before and after. The raw lines
# are kept in DIR/bench/run_peer.log.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
threads=2 widths=32,64 batches=64,128 build=$root/build-bench modes="train sample"
size=32 emb=256 mallocs="glibc tcmalloc"
tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
attention="none down2,down3,up1 down1,down2,down3,up1,up2 all"
while [ $# -gt 0 ]; do
    case $1 in
        --threads)   threads=$2; shift 2 ;;
        --widths)    widths=$2; shift 2 ;;
        --batches)   batches=$2; shift 2 ;;
        --attention) attention=$2; shift 2 ;;
        --modes)     modes=$2; shift 2 ;;
        --size)      size=$2; shift 2 ;;
        --emb)       emb=$2; shift 2 ;;
        --malloc)    mallocs=$2; shift 2 ;;
        --build)     build=$2; shift 2 ;;
        *) echo "usage: $0 [--threads N] [--widths 32,64] [--batches 64,128]" \
                "[--attention \"none all ...\"] [--modes \"train sample\"] [--size S]" \
                "[--emb E] [--malloc \"glibc tcmalloc\"] [--build DIR]" >&2
           exit 2 ;;
    esac
done
for m in $mallocs; do
    case $m in
        glibc|tcmalloc) ;;
        *) echo "$0: --malloc lists glibc and/or tcmalloc, not '$m'" >&2; exit 2 ;;
    esac
done

py=/usr/bin/python3
if ! $py -c 'import torch' 2>/dev/null; then
    echo "installing Debian's python3-torch (CPU PyTorch, for the peer only)"
    apt-get install -y -o DPkg::Lock::Timeout=600 python3-torch >/dev/null
fi
if [[ " $mallocs " == *" tcmalloc "* && ! -e $tcmalloc ]]; then
    echo "installing Debian's libtcmalloc-minimal4 (PyTorch's allocator at its best)"
    apt-get install -y -o DPkg::Lock::Timeout=600 libtcmalloc-minimal4 >/dev/null
fi
cmake -S "$root" -B "$build" >/dev/null
cmake --build "$build" -j2 --target bench_unet bd_unet >/dev/null
bench=$build/bench/bench_unet
peer=$root/tests/bench/unet_torch.py
log=$build/bench/run_peer.log
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

uptime | tee "$log"
$bench --threads "$threads" --ceiling | tee -a "$log"
peak=$(awk '/^CEILING/ { print $2 }' "$log")
for mode in $modes; do
    for at in $attention; do
        for w in ${widths//,/ }; do
            for b in ${batches//,/ }; do
                echo "ATTENTION $at" | tee -a "$log"
                $bench --threads "$threads" --size "$size" --emb "$emb" \
                    --attention "$at" --one $mode "$w" "$b" "$peak" | tee -a "$log"
                for m in $mallocs; do
                    preload=; [ "$m" = tcmalloc ] && preload=$tcmalloc
                    LD_PRELOAD=$preload $py "$peer" --threads "$threads" \
                        --bench "$bench" --widths "$w" --size "$size" --emb "$emb" \
                        --attention "$at" --one $mode "$w" "$b" \
                        | sed "s/^RESULT torch /RESULT torch:$m /" | tee -a "$log"
                done
            done
        done
    done
done
$bench --threads "$threads" --ceiling | tee -a "$log"
uptime | tee -a "$log"

# ATTENTION <set>; PARAMS <side> <width> <n>; RESULT <side> <mode> <width>
# <batch> <img/s> <GFLOP/s> <peak MiB> <ms/step>, side bd or torch:<malloc>;
# CEILING <fma peak> <sgemm square> <sgemm im2col> (before, after)
awk -v threads="$threads" -v size="$size" -v emb="$emb" '
    function short(a) {
        return a == "down2,down3,up1" ? "8,4" : a == "down1,down2,down3,up1,up2" \
               ? "no32" : a
    }
    /^ATTENTION/ { at = $2 }
    /^PARAMS/  { params[$2, at, $3] = $4; pk[at, $3] = 1 }
    /^CEILING/ { peak[++nc] = $2; square[nc] = $3 }
    /^RESULT/  { k = $3 " " short(at) " " $4 " " $5
                 if (!(k in seen)) { seen[k] = 1; keys[++n] = k }
                 side = $2 ~ /^torch:/ ? "torch" : $2
                 if (side == "torch") {
                     split($2, m, ":"); glibc[k] = m[2] == "glibc" ? $6 : glibc[k]
                     if ($6 <= ips["torch", k]) next
                     alloc[k] = m[2]
                 }
                 ips[side, k] = $6; gf[side, k] = $7; mem[side, k] = $8 }
    END {
        printf "\n%d threads, %dx%d images, codes of %d; fp32 FMA peak %.1f GFLOP/s" \
               " before, %.1f after; sgemm 2048 square %.1f, %.1f\n", threads, size,
               size, emb, peak[1], peak[nc], square[1], square[nc]
        bad = 0
        for (p in pk) {
            split(p, q, SUBSEP)
            if (params["bd", q[1], q[2]] != params["torch", q[1], q[2]]) {
                printf "PARAMETER COUNTS DIFFER at width %s, attention %s: bd %s," \
                       " torch %s\n", q[2], q[1], params["bd", q[1], q[2]],
                       params["torch", q[1], q[2]]; bad = 1
            }
        }
        printf "attention: 8,4 = down2,down3,up1 (8x8 and 4x4); no32 = all but" \
               " the 32x32 block; pt = PyTorch under its faster allocator (alloc)," \
               " pt glibc = under glibc%s as installed; %% = of the FMA peak before\n",
               "\047s"
        printf "\n%-6s %-5s %5s %5s | %8s %8s %-8s %8s %6s | %7s %7s %5s %5s | %7s %7s\n",
               "mode", "attn", "width", "batch", "bd img/s", "pt img/s", "alloc",
               "pt glibc", "bd/pt", "bd GF/s", "pt GF/s", "bd %", "pt %", "bd MiB",
               "pt MiB"
        for (i = 1; i <= n; i++) {
            k = keys[i]; split(k, f, " ")
            r = ips["torch", k] > 0 ? ips["bd", k] / ips["torch", k] : 0
            printf "%-6s %-5s %5s %5s | %8.2f %8.2f %-8s %8.2f %6.2f | %7.1f %7.1f" \
                   " %4.0f%% %4.0f%% | %7.0f %7.0f\n", f[1], f[2], f[3], f[4],
                   ips["bd", k], ips["torch", k], alloc[k], glibc[k], r, gf["bd", k],
                   gf["torch", k], 100 * gf["bd", k] / peak[1],
                   100 * gf["torch", k] / peak[1], mem["bd", k], mem["torch", k]
        }
        exit bad
    }' "$log"
