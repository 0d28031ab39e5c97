"""The server's own telemetry: handlers enqueue without I/O; a background flusher stores batches in Postgres."""
