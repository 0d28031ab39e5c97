"""Model output is untrusted input (issue 22, item 1): a bad item of the extraction reply is dropped, counted on
/metrics and logged with the job, and the rest is stored; a reply with nothing usable fails its job as invalid output
after exactly one chat call."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.jobs import infer_write, wait_job

pytestmark = pytest.mark.slow  # waits seconds (outages, hangs, retries)


def _dropped(api) -> dict[tuple[str, str], float]:
    families = text_string_to_metric_families(api.get("/metrics").text)
    return {
        (sample.labels["item"], sample.labels["reason"]): sample.value
        for family in families
        if family.name == "mem0_model_output_dropped"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_a_label_outside_the_list_costs_no_fact(app_api, standin, caplog):
    user = f"u-{uuid.uuid4().hex[:8]}"
    reply = {
        "facts": ["Alice works at Acme", "Alice runs marathons", 42],
        "entities": [
            {"name": "Alice", "type": "Person"},
            {"name": "Acme", "type": "organization"},
            {"name": "Lisbon Marathon", "type": "event"},
        ],
    }
    standin.control(chat_reply=json.dumps(reply))
    before = _dropped(app_api)

    job = wait_job(app_api, app_api.post("/memories", json=infer_write(user, "x", async_mode=True)).json()["job_id"])

    assert job["status"] == "SUCCEEDED", job
    stored = {m["memory"] for m in app_api.get("/memories", params={"user_id": user}).json()["results"]}
    assert stored == {"Alice works at Acme", "Alice runs marathons"}
    named = app_api.get("/named-entities", params={"user_id": user}).json()["results"]
    assert {(entity["name"], entity["type"]) for entity in named} == {("Alice", "person"), ("Acme", "organization")}
    after = _dropped(app_api)
    assert after.get(("fact", "not_text"), 0) - before.get(("fact", "not_text"), 0) == 1
    assert after.get(("entity", "bad_type"), 0) - before.get(("entity", "bad_type"), 0) == 1
    assert any(
        getattr(record, "job_id", None) == job["job_id"] and "dropped" in record.getMessage()
        for record in caplog.records
    )


@pytest.mark.parametrize(
    "reply",
    [
        "[" * 5_000 + "]" * 5_000,  # nesting past the parser's recursion limit (1,000)
        '{"facts": [' + "9" * 5_000 + "]}",
        "Sure! Here are the facts",
        '{"facts": [1, 2, 3]}',
    ],
    ids=["deep-nesting", "huge-number", "not-json", "no-usable-fact"],
)
def test_a_reply_with_nothing_usable_fails_after_exactly_one_call(app_api, standin, reply):
    standin.control(chat_reply=reply)
    standin.reset_stats()
    user = f"u-{uuid.uuid4().hex[:8]}"

    job = wait_job(app_api, app_api.post("/memories", json=infer_write(user, "x", async_mode=True)).json()["job_id"])

    assert job["status"] == "FAILED" and job["error_code"] == "invalid_model_output", job
    assert job["attempts"] == 1
    assert standin.stats()["counts"]["chat"] == 1
    assert job["messages"] == [{"role": "user", "content": "x"}]  # kept for a retry
