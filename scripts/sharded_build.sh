#!/usr/bin/env bash
# A sharded build with the CLI's building blocks, one step after another on this machine (what
# any scheduler runs; spillway.ray runs the same steps as Ray tasks):
#   scripts/sharded_build.sh INPUT OUT_DIR N [build filter flags...]
# N counts (the map), plan-cs (the reduce), N shard builds, then the manifest, OUT_DIR/dataset.json.
# Filter flags: --target T --drop-null-target --min-cs N --max-cs-samples K --seed S ...
set -euo pipefail
bin=${SPILLWAY_BIN:-target/release/spillway}
input=${1:?usage: sharded_build.sh INPUT OUT_DIR N [flags]}
out=${2:?}
n=${3:?}
shift 3
flags=("$@")
count_flags=() cs_flags=()   # count takes every filter but --min-cs; plan-cs the cross-section's
while (($#)); do
  case $1 in
    --min-cs) cs_flags+=("$1" "$2"); shift 2 ;;
    --max-cs-samples|--seed) cs_flags+=("$1" "$2"); count_flags+=("$1" "$2"); shift 2 ;;
    --drop-null-target) count_flags+=("$1"); shift ;;
    *) count_flags+=("$1" "$2"); shift 2 ;;
  esac
done
mkdir -p "$out/cs"
counts=() shards=()
for ((i = 0; i < n; i++)); do
  "$bin" count --input "$input" --shard "$i/$n" --output "$out/cs/count-$i" "${count_flags[@]}"
  counts+=("$out/cs/count-$i")
done
"$bin" plan-cs "${counts[@]}" "${cs_flags[@]}" --output "$out/cs/cs.plan"
for ((i = 0; i < n; i++)); do
  "$bin" build --input "$input" --shard "$i/$n" --cs-plan "$out/cs/cs.plan" --quiet \
    --output "$out/shard-$i.spill" "${flags[@]}"
  shards+=("$out/shard-$i.spill")
done
"$bin" manifest "${shards[@]}" --cs-plan "$out/cs/cs.plan" --output "$out/dataset.json"
