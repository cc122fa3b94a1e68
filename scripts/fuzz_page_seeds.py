"""Writes fuzz/seeds/pages: one DOUBLE column chunk (100 rows) per codec, required and optional,
data page v1 and v2, plain and dictionary, from pyarrow; the first byte picks the codec, the
nullability and the rows skipped as fuzz_pages reads them. Run with a Python that has pyarrow."""
import io, pyarrow as pa, pyarrow.parquet as pq, numpy as np, os
out = "fuzz/seeds/pages"
codecs = {0: "NONE", 1: "SNAPPY", 2: "GZIP", 3: "LZ4", 4: "ZSTD", 5: "BROTLI"}
rng = np.random.default_rng(7)
vals = rng.standard_normal(100)
for pick, codec in codecs.items():
    for optional in (False, True):
        for version, dictionary in (("1.0", False), ("2.0", True), ("2.0", False)):
            if optional:
                arr = pa.array([None if i % 7 == 3 else float(v) for i, v in enumerate(vals)], pa.float64())
                field = pa.field("x", pa.float64(), nullable=True)
            else:
                arr = pa.array(np.round(vals, 1) if dictionary else vals)
                field = pa.field("x", pa.float64(), nullable=False)
            t = pa.Table.from_arrays([arr], schema=pa.schema([field]))
            buf = io.BytesIO()
            pq.write_table(t, buf, compression=codec, use_dictionary=dictionary,
                           data_page_version=version, data_page_size=256, write_statistics=False)
            data = buf.getvalue()
            md = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).column(0)
            start = md.dictionary_page_offset if md.has_dictionary_page and md.dictionary_page_offset else md.data_page_offset
            chunk = data[start:start + md.total_compressed_size]
            b0 = next(b for b in range(256) if b % 6 == pick and bool(b & 8) == optional and (b >> 4) in ((5, 6, 7) if dictionary else (0, 1, 2)))
            name = f"{codecs[pick].lower()}-{'opt' if optional else 'req'}-v{version[0]}{'-dict' if dictionary else ''}"
            open(os.path.join(out, name), "wb").write(bytes([b0]) + chunk)
print(len(os.listdir(out)))
