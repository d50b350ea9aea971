"""Engine readers: text and Parquet flow-log objects into the canonical schema."""
