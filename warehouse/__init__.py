"""Warehouse access: connections, dialects, atomic builds, grants and the data dictionary."""
from .connection import LAYER_SCHEMAS, Warehouse, dlt_pipelines_dir, duckdb_file, qualify, quote_ident, redact, split_statements, warehouse_url

__all__ = ["LAYER_SCHEMAS", "Warehouse", "dlt_pipelines_dir", "duckdb_file", "qualify", "quote_ident", "redact", "split_statements", "warehouse_url"]
