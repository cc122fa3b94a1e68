"""Build a spill file in Python: look at the universe first, build with the cross-sectional
filters and a JSON summary, check every checksum, and export a slice to Parquet.

    python docs/examples/build.py [UNIVERSE] [OUTPUT]
"""
import sys

import spillway


def main(universe: str, output: str) -> None:
    seen = spillway.inspect(universe, target="target")  # footers only: nothing is decoded
    print(f"{seen['symbols']} symbols, {seen['rows']} rows, about "
          f"{seen['estimated_output_bytes'] >> 20} MiB of output")
    summary = spillway.build(
        universe, output, target="target",
        drop_null_target=True,        # no row without a label
        min_cs=2,                     # timestamps with fewer than 2 symbols are dropped
        memory_budget="256MiB",       # the pipeline's shape is chosen to fit it
        summary=output + ".json",     # the summary, also written as JSON
    )
    print(f"{summary['rows']} rows, peak RSS {summary['peak_rss_bytes'] >> 20} MiB")
    report = spillway.verify(output)  # structure and every chunk checksum
    print(f"{report['chunks']} chunks verified")
    spillway.export(output, output + ".parquet", rows=(0, 1000), columns=["ts", "symbol", "target"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/universe",
         sys.argv[2] if len(sys.argv) > 2 else "data/train.spill")
