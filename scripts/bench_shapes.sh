#!/usr/bin/env bash
# spillway against its peers on every universe shape, in ONE run: narrow files, many small files,
# wide files (1000 and 4000 features) and the canonical M. Each universe is made by `spillway gen`
# (M: the anchors' gen_universe.py), each job is a separate process timed by
# ../shared/anchors/peers.py with outputs verified; then, per shape, the decompression floor
# (target/release/zstd-floor, crates/floor: every compressed page decompressed by the same codec
# library on as many threads as cores, nothing else); then the ratios spillway / fastest peer that
# writes an output, spillway / its own --decode-only and spillway / the floor, from medians.
# Writes the results as JSON (date, commit, machine, command; per shape the universe and per job the medians and every
# run), which scripts/render_shapes.py renders into the performance chapter and the README.
#
#   scripts/bench_shapes.sh [REPEAT] [SHAPE ...]      # REPEAT default 3 (or $REPEAT);
#                                                     # shapes: narrow small wide1000 wide4000 M
#
# Environment:
#   SHAPES_JSON            the JSON written (default docs/bench/shapes.json)
#   SPILLWAY_SHAPES        where the universes are made, once (default target/shapes)
#   SPILLWAY_BIN           the spillway binary to time (default: cargo build --release, then
#                          target/release/spillway)
#   PEERS_PYTHON           as in bench_peers.sh (a venv with polars duckdb pyarrow pandas numpy)
#   SPILLWAY_SHAPES_SMALL  =1: tiny universes (under target/shapes_small), to test this script
#                          only; the JSON records it and the renderer says so
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  repeat=$1
  shift
else
  repeat=${REPEAT:-3}
fi
shapes=${*:-narrow small wide1000 wide4000 M}
small=${SPILLWAY_SHAPES_SMALL:-}
[ "$small" = 0 ] && small=
if [ -n "$small" ]; then
  root=${SPILLWAY_SHAPES:-target/shapes_small}
else
  root=${SPILLWAY_SHAPES:-target/shapes}
fi
json=${SHAPES_JSON:-docs/bench/shapes.json}
peers=pyarrow_stream,polars_scan_sink_ipc,polars_sink_ipc,duckdb_arrow,decode_mt
for shape in $shapes; do
  case $shape in narrow | small | wide1000 | wide4000 | M) ;; *) echo "unknown shape $shape" >&2; exit 2 ;; esac
done
if [ -z "${PEERS_PYTHON:-}" ]; then
  if [ ! -x target/peers/bin/python ]; then
    python3 -m venv target/peers
    target/peers/bin/pip install --quiet polars duckdb pyarrow pandas numpy psutil
  fi
  export PEERS_PYTHON=$PWD/target/peers/bin/python
fi
if [ -n "${SPILLWAY_BIN:-}" ]; then
  bin=$(realpath "$SPILLWAY_BIN")
else
  cargo build --release --quiet
  bin=$PWD/target/release/spillway
fi
cargo build --release --quiet -p spillway-floor
floor=$PWD/target/release/zstd-floor
threads=$(nproc)
# The command that reproduces this run (the environment that changes what is measured included).
cmdline="scripts/bench_shapes.sh $repeat $shapes"
[ -n "$small" ] && cmdline="SPILLWAY_SHAPES_SMALL=1 $cmdline"
[ "$json" != docs/bench/shapes.json ] && cmdline="SHAPES_JSON=$json $cmdline"
mkdir -p "$root"
results=$root/results.jsonl
meta=$root/meta.json
: > "$results"
"$PEERS_PYTHON" scripts/bench_meta.py --command "$cmdline" > "$meta"
for shape in $shapes; do
  # symbols rows features (the issue's table), made once.
  case $shape in
    narrow) size="256 75000 10" small_size="16 4000 10" ;;
    small) size="1024 4000 100" small_size="64 500 100" ;;
    wide1000) size="8 75000 1000" small_size="2 2000 1000" ;;
    wide4000) size="4 75000 4000" small_size="1 2000 4000" ;;
    M) size="" small_size="8 4000 100" ;;
  esac
  [ -n "$small" ] && size=$small_size
  dir=$root/$shape
  if [ -n "$size" ] && [ ! -d "$dir" ]; then
    set -- $size
    "$bin" gen --output "$dir" --symbols "$1" --rows "$2" --features "$3"
  fi
  gen=(--data-dir "$dir")
  [ -z "$size" ] && gen=(--gen --data-dir "$dir")
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
  "$floor" "$dir" --threads "$threads" --repeat "$repeat" > "$root/$shape.floor.json"
done
"$PEERS_PYTHON" ../shared/anchors/peers.py --report --results "$results"
# The JSON: the run's metadata, then per shape its universe and per job the medians and the runs.
"$PEERS_PYTHON" - "$meta" "$results" "$json" "$repeat" "$peers" "$bin" "$root" "${small:-}" $shapes <<'PY'
import json, os, subprocess, sys
sys.path.insert(0, "scripts")
sys.path.insert(0, os.path.join("..", "shared", "anchors"))
import bench_meta
import peers as anchors
meta, results, out, repeat, peer_list, binary, root, small, *shapes = sys.argv[1:]
with open(meta) as fh:
    doc = bench_meta.finish(json.load(fh))
runs = [json.loads(ln) for ln in open(results) if ln.strip()]
KEEP = ("when", "wall_s", "peak_rss_mib", "user_s", "sys_s", "sampled_peak_rss_anon_mib",
        "sampled_peak_rss_file_mib", "output_bytes", "rc", "killed", "verified")


def median(v):
    v = sorted(x for x in v if x is not None)
    return v[(len(v) - 1) // 2] if v else None  # the lower median: a measured run


def job(recs):
    ok = [r for r in recs if r.get("ok_run")]
    # --decode-only writes nothing: nothing to verify (peers.py counts a missing output as unverified)
    verified = [None if r["peer"] == "spillway_decode_only" else r.get("verified") for r in recs]
    j = {"kind": recs[0]["kind"], "command": recs[0].get("command"),
         "description": anchors.PEERS.get(recs[0]["peer"], (None, None, None))[2],
         "wall_s": median(r["wall_s"] for r in ok), "peak_rss_mib": median(r.get("peak_rss_mib") for r in ok),
         "ok": len(ok) == len(recs),
         "verified": None if all(v is None for v in verified) else all(v is True for v in verified),
         "runs": []}
    for r in recs:
        run = {k: r.get(k) for k in KEEP if k in r}
        run["ok"] = r.get("ok_run")
        if r["peer"] == "spillway_decode_only":
            run["verified"] = None
        problems = (r.get("verify") or {}).get("problems")
        if problems:
            run["problems"] = problems
        j["runs"].append(run)
    if j["kind"] == "extra":
        j.pop("description")
    return j


doc["versions"] = {"spillway": subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip(),
                   **((runs[0].get("versions") or {}) if runs else {})}
doc["settings"] = {"repeat": int(repeat), "shapes": shapes, "peers": peer_list.split(","), "small": bool(small),
                   "spillway": binary, "peers_python": os.environ.get("PEERS_PYTHON"), "universes": root,
                   "median": "lower median of the successful runs (a measured run)"}
doc["shapes"] = {}
for shape in shapes:
    mine = [r for r in runs if r["scale"] == shape]
    if not mine:
        continue
    r0 = mine[0]
    jobs = {}
    for r in mine:
        jobs.setdefault(r["peer"], []).append(r)
    jobs = {name: job(recs) for name, recs in jobs.items()}
    writers = {n: j for n, j in jobs.items() if j["kind"] == "peer" and j["verified"] and j["wall_s"]}
    best = min(writers, key=lambda n: writers[n]["wall_s"]) if writers else None
    me, dec = jobs.get("spillway", {}).get("wall_s"), jobs.get("spillway_decode_only", {}).get("wall_s")
    ratio = lambda a, b: round(a / b, 3) if a and b else None
    with open(os.path.join(root, f"{shape}.floor.json")) as fh:
        floor = json.load(fh)
    floor["wall_s"], floor["runs"] = median(floor["wall_s"]), floor["wall_s"]
    doc["shapes"][shape] = {
        "universe": {"symbols": r0["files"], "rows": r0["input_rows"], "features": r0["features"],
                     "parquet_bytes": r0["input_bytes"], "dir": r0["data_dir"]},
        "jobs": jobs,
        "zstd_floor": floor,
        "fastest_peer": best,
        "ratios": {"spillway_vs_fastest_peer": ratio(me, best and writers[best]["wall_s"]),
                   "spillway_vs_decode_only": ratio(me, dec),
                   "spillway_vs_zstd_floor": ratio(me, floor["wall_s"])},
    }
bench_meta.write_json(doc, out)
print(f"\nwrote {out}", file=sys.stderr)
PY
python3 scripts/render_shapes.py "$json" --stdout
if [ "$json" = docs/bench/shapes.json ]; then
  echo "render into the docs: python3 scripts/render_shapes.py $json" >&2
fi
