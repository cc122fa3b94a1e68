#!/usr/bin/env bash
# Runs spillway over every file of apache/parquet-testing (data/ and bad_data/): files written by
# other tools (parquet-mr, Impala, Spark, arrow-cpp, ...), odd encodings, and deliberately broken
# files. Each file becomes a one-symbol universe; `inspect` reads its footer, and `build` decodes it
# with its first timestamp/date column as the time column (files without one must fail cleanly
# with "no time column"). The only acceptable outcomes are exit 0 or exit 1 with a message naming
# the file; a panic, a signal or any other exit code fails the sweep.
#
#   scripts/parquet_testing.sh PATH/TO/parquet-testing        (a checkout; its files are not vendored)
set -uo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: $0 PATH/TO/parquet-testing}
py=${SPILLWAY_PYTHON:-target/venv/bin/python}
bin=target/release/spillway
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bad=0
printf '| file | inspect | build (time column) | message |\n|---|---|---|---|\n'
for f in "$src"/data/*.parquet "$src"/bad_data/*.parquet; do
  name=$(basename "$f")
  u="$work/u"; rm -rf "$u"; mkdir -p "$u"; cp "$f" "$u/X.parquet"
  time_col=$("$py" - "$f" <<'EOF' 2>/dev/null
import sys, pyarrow.parquet as pq, pyarrow as pa
try:
    s = pq.read_schema(sys.argv[1])
except Exception:
    sys.exit(0)
for fld in s:
    if pa.types.is_timestamp(fld.type) or pa.types.is_date(fld.type):
        print(fld.name); break
EOF
)
  RUST_BACKTRACE=1 $bin inspect --input "$u" > "$work/i.out" 2>&1; irc=$?
  args=(build --input "$u" --output "$work/o.spill" --quiet)
  [ -n "$time_col" ] && args+=(--time-col "$time_col")
  RUST_BACKTRACE=1 $bin "${args[@]}" > "$work/b.out" 2>&1; brc=$?
  msg=$(head -c 160 "$work/b.out" | tr '\n|' '  ')
  if grep -q "panicked at" "$work/i.out" "$work/b.out" || [ $irc -gt 1 ] || [ $brc -gt 1 ]; then
    bad=$((bad + 1)); msg="FAIL: $msg"
  fi
  printf '| %s | %s | %s (%s) | %s |\n' "$name" "$irc" "$brc" "${time_col:--}" "$msg"
  rm -f "$work/o.spill"
done
echo
if [ $bad -gt 0 ]; then echo "$bad file(s) gave a panic or an unexpected exit"; exit 1; fi
echo "every file: exit 0, or exit 1 with a message"
