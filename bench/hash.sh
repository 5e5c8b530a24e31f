#!/usr/bin/env bash
# Hashing throughput of `steward package sign` (hash every file, sign) against sha256sum
# over the same files, page cache warm, same run. Needs ~3 GiB free in $BENCH_DIR.
#   bench/hash.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/steward-target}
cargo build -q --release -p steward
steward="$CARGO_TARGET_DIR/release/steward"
dir=${BENCH_DIR:-/var/tmp/steward-hash-bench}
rm -rf "$dir"; mkdir -p "$dir/multi" "$dir/single"
for n in 1 2 3 4 5 6 7 8; do head -c 268435456 /dev/urandom > "$dir/multi/shard-$n.bin"; done
head -c 1073741824 /dev/urandom > "$dir/single/model.bin"
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/key.priv" && chmod 600 "$dir/key.priv"
cat "$dir"/multi/* "$dir"/single/* > /dev/null   # warm the page cache

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
run() { local start end; start=$(date +%s.%N); "$@" > /dev/null; end=$(date +%s.%N); echo "$end - $start" | bc -l; }
for case in multi single; do
  bytes=$(du -cb "$dir/$case" | tail -1 | cut -f1)
  for tool in sha256sum steward; do
    times=()
    for _ in 1 2 3; do
      rm -f "$dir/$case/model.sig"
      if [ "$tool" = sha256sum ]; then times+=("$(run sha256sum "$dir/$case"/*)"); else times+=("$(run "$steward" package sign "$dir/$case" --key "$dir/key.priv")"); fi
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
    printf '%-6s %-9s median %.2f s  %.0f MB/s  runs %s\n' "$case" "$tool" "$median" "$(echo "$bytes / $median / 1000000" | bc -l)" "${times[*]}"
  done
done
rm -rf "$dir"
