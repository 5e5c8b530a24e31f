#!/usr/bin/env bash
# Packing throughput and peak memory of `steward package build` against `tar` plus `sha256sum`
# over the same files (the peer writes the same bytes once and hashes them once), page cache
# warm, same run, medians of 3. Peak memory (max RSS, /usr/bin/time) is measured at two model
# sizes to show it does not grow with the model. Needs ~4 GiB free in $BENCH_DIR.
#   bench/pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/steward-target}
cargo build -q --release -p steward
steward="$CARGO_TARGET_DIR/release/steward"
dir=${BENCH_DIR:-/var/tmp/steward-pack-bench}
rm -rf "$dir"; mkdir -p "$dir"
make_model() { # name, number of 256 MiB shards
  mkdir -p "$dir/$1/data"
  for n in $(seq 1 "$2"); do head -c 268435456 /dev/urandom > "$dir/$1/shard-$n.safetensors"; done
  printf '{"hidden_size": 1024}' > "$dir/$1/config.json"
  printf 'numpy==2.1.0\n' > "$dir/$1/requirements.txt"
  printf 'income,age\n1,2\n' > "$dir/$1/data/sample.csv"
  printf 'version: 1.0.0\nlicence: Apache-2.0\n' > "$dir/$1/steward.yaml"
}
make_model big 4     # 1 GiB
make_model small 1   # 256 MiB
cat "$dir"/big/* "$dir"/small/* > /dev/null 2>&1 || true   # warm the page cache

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
run() { local start end; start=$(date +%s.%N); "$@" > /dev/null; end=$(date +%s.%N); echo "$end - $start" | bc -l; }
peer() { tar -cf "$dir/out.tar" -C "$1" . && sha256sum "$dir/out.tar"; }
ours() { "$steward" package build "$1" --out "$dir/out.oci"; }
bytes=$(du -cb "$dir/big" | tail -1 | cut -f1)
declare -A median
for tool in peer ours; do
  times=()
  for _ in 1 2 3; do
    rm -rf "$dir/out.tar" "$dir/out.oci"
    times+=("$(run "$tool" "$dir/big")")
  done
  median[$tool]=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
  printf '%-5s median %.2f s  %.0f MB/s  runs %s\n' "$tool" "${median[$tool]}" "$(echo "$bytes / ${median[$tool]} / 1000000" | bc -l)" "${times[*]}"
done
printf 'ratio steward / (tar + sha256sum): %.2f (goal <= 1.3)\n' "$(echo "${median[ours]} / ${median[peer]}" | bc -l)"
for size in small big; do
  rm -rf "$dir/out.oci"
  rss=$( { /usr/bin/time -f '%M' "$steward" package build "$dir/$size" --out "$dir/out.oci" > /dev/null; } 2>&1 | tail -1)
  printf 'peak RSS packing %-5s (%4d MiB of files): %d KiB\n' "$size" "$(( $(du -cb "$dir/$size" | tail -1 | cut -f1) / 1048576 ))" "$rss"
done
rm -rf "$dir"
