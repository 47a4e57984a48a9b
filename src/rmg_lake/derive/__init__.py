"""Derive and view: the frames made from the log (Parquet, byte for byte), the DuckDB
catalog over them, and the quality checks as its `flags` view."""
