"""Output sinks: ndjson and CSV (no pandas), DataFrame and Parquet, terminal table."""
