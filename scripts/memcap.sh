#!/usr/bin/env bash
# A build inside a memory cgroup whose cap counts page cache, as nightly users run it (containers,
# systemd slices): spillway must finish with the same bytes as an uncapped build, while the
# polars/pandas peers are killed at the same cap.
#
#   scripts/memcap.sh [--cap 256M] [--input DIR] [--peers polars_scan_sink_ipc,pandas_concat]
#                     [--order symbol|time]
#
# --order time caps a time-major build (its intermediate, transposition and output) instead.
#
# Default input: target/universe_M (see ../shared/anchors/README.md to make it). Needs root (to
# create a cgroup under our own) and PEERS_PYTHON for the peers. Works with cgroup v1 (memory
# controller; the cap also bounds memory+swap) and cgroup v2 (memory.max, memory.swap.max = 0).
# Where no cgroup can be made (no root, no delegation, a container without the controller), it says
# so and stops: run the same build under `systemd-run --scope -p MemoryMax=256M` or a container's
# `--memory=256m` instead, and compare with `cmp` as below.
set -euo pipefail
cd "$(dirname "$0")/.."

cap=256M
input=target/universe_M
peers=polars_scan_sink_ipc,pandas_concat
order=symbol
while [ $# -gt 0 ]; do
  case "$1" in
    --cap) cap=$2; shift 2 ;;
    --input) input=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --order) order=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=target/release/spillway
cargo build --release --quiet
work=target/memcap
mkdir -p "$work"

# --- find or make a cgroup -------------------------------------------------------------------
v1_parent=/sys/fs/cgroup/memory$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)
v2_root=""
for r in /sys/fs/cgroup /sys/fs/cgroup/unified; do
  if [ -f "$r/cgroup.controllers" ] && grep -qw memory "$r/cgroup.controllers"; then v2_root=$r; break; fi
done
cg=""
if [ -d "$v1_parent" ] && [ -f "$v1_parent/memory.limit_in_bytes" ] && mkdir "$v1_parent/spillway-memcap-$$" 2>/dev/null; then
  cg=$v1_parent/spillway-memcap-$$; kind=v1
  echo "$cap" > "$cg/memory.limit_in_bytes"
  echo "$cap" > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
elif [ -n "$v2_root" ]; then
  v2_parent=$v2_root$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)
  if mkdir "$v2_parent/spillway-memcap-$$" 2>/dev/null; then
    cg=$v2_parent/spillway-memcap-$$; kind=v2
    echo "$cap" > "$cg/memory.max"
    echo 0 > "$cg/memory.swap.max" 2>/dev/null || true
  fi
fi
if [ -z "$cg" ]; then
  echo "memcap: cannot create a memory cgroup here (needs root or a delegated cgroup)." >&2
  echo "memcap: fallback: systemd-run --scope -p MemoryMax=$cap $bin build ... or docker run --memory=$cap ..." >&2
  exit 3
fi
trap 'rmdir "$cg" 2>/dev/null || true' EXIT
echo "cgroup $kind: $cg, cap $cap (page cache counted)"

peak() { if [ "$kind" = v1 ]; then cat "$cg/memory.max_usage_in_bytes"; else cat "$cg/memory.peak" 2>/dev/null || echo 0; fi; }
reset_peak() { if [ "$kind" = v1 ]; then echo 0 > "$cg/memory.max_usage_in_bytes"; else echo 0 > "$cg/memory.peak" 2>/dev/null || true; fi; }
ooms() { if [ "$kind" = v1 ]; then awk '/oom_kill / {print $2}' "$cg/memory.oom_control"; else awk '/oom_kill / {print $2}' "$cg/memory.events"; fi; }

# Runs "$@" inside the cgroup; prints: name, exit status, wall seconds, cgroup peak, OOM kills.
capped() {
  local name=$1; shift
  reset_peak
  local before; before=$(ooms)
  local t0; t0=$(date +%s.%N)
  set +e
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@" > "$work/$name.log" 2>&1
  local rc=$?
  set -e
  local t1; t1=$(date +%s.%N)
  printf '| %s | %s | %.2f | %d | %d |\n' "$name" "$([ $rc = 0 ] && echo completed || echo "exit $rc")" \
    "$(echo "$t1 - $t0" | bc)" "$(( $(peak) / 1048576 ))" "$(( $(ooms) - before ))"
}

echo "uncapped reference build..."
$bin build --input "$input" --output "$work/free.spill" --target target --quiet --order "$order"
cat "$input"/*.parquet > /dev/null
echo
echo "| job under a $cap cap | result | wall s | cgroup peak MiB (incl. page cache) | OOM kills |"
echo "|---|---|---:|---:|---:|"
capped "spillway --order $order" $bin build --input "$input" --output "$work/capped.spill" --target target --quiet --memory-budget "$cap" --order "$order"
if cmp -s "$work/free.spill" "$work/capped.spill"; then same="byte-identical to the uncapped build"; else same="DIFFERENT from the uncapped build"; fi
if [ -n "${PEERS_PYTHON:-}" ]; then
  for p in ${peers//,/ }; do
    capped "$p" "$PEERS_PYTHON" ../shared/anchors/peers.py --worker "$p" --data-dir "$input" --output "$work/$p.out"
    rm -f "$work/$p.out"
  done
else
  echo "(PEERS_PYTHON not set: peers not run)"
fi
echo
echo "spillway output under the cap: $same"
"$bin" verify "$work/capped.spill"
rm -f "$work/free.spill" "$work/capped.spill"
