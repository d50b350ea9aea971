"""Where flow logs come from: local folders, S3, CloudWatch Logs."""
