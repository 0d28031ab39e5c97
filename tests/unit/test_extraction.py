"""Pure logic of the extraction call: prompt shape, context sizing, reply parsing, truncation detection."""

import pytest

from app.errors import InvalidModelOutput, UpstreamError
from app.llm.extraction import (
    ExtractedEntity,
    Extraction,
    PromptTruncated,
    build_chat_messages,
    check_truncation,
    choose_num_ctx,
    estimate_tokens,
    merge_extractions,
    parse_reply,
)


def test_system_messages_of_the_conversation_are_not_facts_material() -> None:
    chat = build_chat_messages([{"role": "system", "content": "be terse"}, {"role": "user", "content": "I like tea"}])
    assert "be terse" not in chat[1]["content"]
    assert "user: I like tea" in chat[1]["content"]


def test_num_ctx_fits_prompt_and_answer_within_the_cap() -> None:
    assert choose_num_ctx(100, 512, 8192) == 2048
    assert choose_num_ctx(3000, 512, 8192) == 4096
    assert choose_num_ctx(30000, 512, 8192) == 8192


def test_compact_prompt_is_far_smaller_than_a_small_context_window() -> None:
    chat = build_chat_messages([{"role": "user", "content": "I moved to Lyon last year."}])
    assert estimate_tokens(chat) < 600


def test_reply_parsing_keeps_facts_and_rejects_garbage() -> None:
    assert parse_reply('{"facts": ["User likes tea", " "], "entities": []}', "m").facts == ["User likes tea"]
    assert parse_reply('{"facts": []}', "m") == Extraction([], [], "m")
    with pytest.raises(UpstreamError):
        parse_reply("Sure! Here are the facts", "m")
    with pytest.raises(UpstreamError):
        parse_reply('{"memories": []}', "m")


def test_reply_entities_are_validated_and_tidied() -> None:
    reply = (
        '{"facts": ["Alice moved to Lisbon"], "entities": [{"name": " Alice ", "type": "person"}, '
        '{"name": "New\\n York", "type": "place"}, {"name": "&", "type": "product"}]}'
    )
    assert parse_reply(reply, "m").entities == [
        ExtractedEntity("Alice", "person"),
        ExtractedEntity("New York", "place"),
    ]
    for entities in (
        '[{"name": "Alice", "type": "pet"}]',
        '[{"name": 3, "type": "person"}]',
        '"Alice"',
        '[{"name": "' + "x" * 201 + '", "type": "person"}]',
    ):
        with pytest.raises(InvalidModelOutput):
            parse_reply('{"facts": [], "entities": ' + entities + "}", "m")


def test_windows_merge_into_one_extraction_with_each_entity_once() -> None:
    first = Extraction(["Alice moved to Lisbon"], [ExtractedEntity("Alice", "person")], "m")
    second = Extraction(
        ["alice likes tea"], [ExtractedEntity("alice", "person"), ExtractedEntity("Tea Co", "product")], "m"
    )
    merged = merge_extractions([first, second])
    assert merged.facts == ["Alice moved to Lisbon", "alice likes tea"]
    assert merged.entities == [ExtractedEntity("Alice", "person"), ExtractedEntity("Tea Co", "product")]
    assert Extraction.from_json(merged.to_json()) == merged


def test_a_prompt_that_fills_the_window_is_an_error_not_no_facts() -> None:
    check_truncation(1000, 2048)
    with pytest.raises(PromptTruncated):
        check_truncation(2048, 2048)


def test_job_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    from app.jobs.repository import backoff_delay_s

    rng = random.Random(1)
    first = [backoff_delay_s(1, 1.0, rng=rng) for _ in range(50)]
    fifth = [backoff_delay_s(5, 1.0, rng=rng) for _ in range(50)]
    assert max(first) <= 1.0 and max(fifth) <= 16.0 and max(fifth) > 2.0
    assert len(set(fifth)) > 1
    assert backoff_delay_s(30, 1.0, cap_s=60, rng=rng) <= 60
