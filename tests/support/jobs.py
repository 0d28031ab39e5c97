"""Helpers for tests of inferred writes: the request body, and waiting for a job to finish."""

from __future__ import annotations

import time

import httpx


def infer_write(user: str, text: str, **extra: object) -> dict:
    return {"messages": [{"role": "user", "content": text}], "user_id": user, "infer": True, **extra}


def wait_job(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict:
    """The job once SUCCEEDED or FAILED; fails the test if it is still running after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {timeout_s}s: {job}")
