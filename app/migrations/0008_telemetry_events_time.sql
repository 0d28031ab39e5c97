-- Retention deletes telemetry events by age alone; the (kind, occurred_at) index cannot find them by age.
CREATE INDEX IF NOT EXISTS telemetry_events_occurred_at_idx ON telemetry_events (occurred_at);
