"""Reads Steward's change data lake export with engines nobody on the team wrote: DuckDB
(Hive-partitioned Parquet) and pyarrow datasets. Checks the rows are the audit entries of
the demo's change events: every promotion state change present, sequence numbers unique,
each row in the partition of its own day, the time column a UTC timestamp.

usage: lake_check.py LAKE_DIR"""

import sys

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

lake = sys.argv[1]
glob = f"{lake}/**/*.parquet"
con = duckdb.connect()
rows = con.execute(
    f"SELECT seq, time, action, date, environment, promotion_id FROM read_parquet('{glob}', hive_partitioning = true) ORDER BY seq"
).fetchall()
assert rows, "no rows"
seqs = [row[0] for row in rows]
assert len(seqs) == len(set(seqs)), "a sequence number appears twice"
for seq, time, action, date, environment, promotion_id in rows:
    assert str(time.date()) == str(date), f"entry {seq} at {time} is in partition {date}"
    if action.startswith("promotion.") and not action.endswith(".denied"):
        assert promotion_id is not None, f"entry {seq} ({action}) has no promotion id"
counts = dict(
    con.execute(
        f"SELECT action, count(*) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY action"
    ).fetchall()
)
for action, least in [("promotion.request", 3), ("promotion.approve", 5), ("promotion.apply", 3), ("promotion.review", 1)]:
    assert counts.get(action, 0) >= least, f"{action}: {counts.get(action, 0)} rows, expected at least {least}"
applied = con.execute(
    f"SELECT environment FROM read_parquet('{glob}', hive_partitioning = true) WHERE action = 'promotion.apply' ORDER BY seq"
).fetchall()
assert [env for (env,) in applied] == ["staging", "production", "production"], applied

dataset = ds.dataset(lake, format="parquet", partitioning="hive")
table = dataset.to_table()
assert table.num_rows == len(rows), (table.num_rows, len(rows))
assert table.schema.field("time").type == pa.timestamp("us", tz="UTC"), table.schema.field("time").type
print(f"DuckDB and pyarrow read {len(rows)} change events: {dict(sorted(counts.items()))}")
