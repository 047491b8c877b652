"""Data: records and JSONL (schema), media decoding (media), collation and dataset sources."""
