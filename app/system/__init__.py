"""Operational endpoints: liveness, readiness and the effective configuration."""
