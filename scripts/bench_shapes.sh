#!/usr/bin/env bash
# spillway against its peers on every universe shape, in ONE run: narrow files, many small files,
# wide files (1000 and 4000 features) and the canonical M. Each universe is made by `spillway gen`
# (M: the anchors' gen_universe.py), each job is a separate process timed by
# ../shared/anchors/peers.py with outputs verified; then, per shape, the ratios spillway / fastest
# peer that writes an output and spillway / its own --decode-only, from medians.
#
#   scripts/bench_shapes.sh [REPEAT=3] [SHAPE ...]      # shapes: narrow small wide1000 wide4000 M
#
# Universes go to $SPILLWAY_SHAPES (default target/shapes); PEERS_PYTHON as in bench_peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-3}
shift || true
shapes=${*:-narrow small wide1000 wide4000 M}
root=${SPILLWAY_SHAPES:-target/shapes}
peers=pyarrow_stream,polars_scan_sink_ipc,polars_sink_ipc,duckdb_arrow,decode_mt
if [ -z "${PEERS_PYTHON:-}" ]; then
  if [ ! -x target/peers/bin/python ]; then
    python3 -m venv target/peers
    target/peers/bin/pip install --quiet polars duckdb pyarrow pandas numpy psutil
  fi
  export PEERS_PYTHON=$PWD/target/peers/bin/python
fi
cargo build --release --quiet
bin=$PWD/target/release/spillway
results=target/shapes_results.jsonl
since=$(date -u +%Y-%m-%dT%H:%M:%S)
mkdir -p "$root"
for shape in $shapes; do
  # symbols rows features (the issue's table), made once.
  case $shape in
    narrow) size="256 75000 10" ;;
    small) size="1024 4000 100" ;;
    wide1000) size="8 75000 1000" ;;
    wide4000) size="4 75000 4000" ;;
    M) size="" ;;
    *) echo "unknown shape $shape" >&2; exit 2 ;;
  esac
  dir=$root/$shape
  if [ -n "$size" ] && [ ! -d "$dir" ]; then
    set -- $size
    "$bin" gen --output "$dir" --symbols "$1" --rows "$2" --features "$3"
  fi
  gen=(--data-dir "$dir")
  [ "$shape" = M ] && gen=(--gen --data-dir "$dir")
  for name in spillway spillway_decode_only; do
    extra="$bin build --input {input} --output {output} --target target --quiet"
    args=(--extra-verify "$PEERS_PYTHON $PWD/scripts/peers_verify.py {output}")
    p=$peers
    if [ $name = spillway_decode_only ]; then
      extra="$extra --decode-only"
      args=()
      p=none
    fi
    "$PEERS_PYTHON" ../shared/anchors/peers.py --scale "$shape" "${gen[@]}" --repeat "$repeat" \
      --peer "$p" --extra "$extra" --extra-name "$name" --extra-ext .spill "${args[@]}" \
      --results "$results"
  done
done
"$PEERS_PYTHON" ../shared/anchors/peers.py --report --results "$results" --since "$since"
"$PEERS_PYTHON" - "$results" "$since" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = [r for r in runs if r.get("when", "") >= sys.argv[2] and r.get("ok_run")]
print("\n| shape | spillway s | peak MiB | fastest writing peer | s | ratio | decode-only s | build / decode-only |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
for scale in dict.fromkeys(r["scale"] for r in runs):
    mine = [r for r in runs if r["scale"] == scale]
    def med(name, key="wall_s"):
        v = sorted(r[key] for r in mine if r["peer"] == name)
        return v[(len(v) - 1) // 2] if v else None
    me, dec = med("spillway"), med("spillway_decode_only")
    peers = {r["peer"] for r in mine if r["kind"] == "peer"}
    best = min(peers, key=med) if peers else None
    rss = med("spillway", "peak_rss_mib")
    print(f"| {scale} | {me:.2f} | {rss:.0f} | {best} | {med(best):.2f} | {me / med(best):.2f} | "
          f"{dec:.2f} | {me / dec:.2f} |")
EOF
