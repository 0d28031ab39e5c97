"""Pure logic of the extraction call: prompt shape, context sizing, reply parsing, truncation detection."""

import json

import pytest

from app.errors import InvalidModelOutput
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


def test_reply_parsing_keeps_facts_and_rejects_garbage_as_invalid_output_at_once() -> None:
    assert parse_reply('{"facts": ["User likes tea", " "], "entities": []}', "m").facts == ["User likes tea"]
    assert parse_reply('{"facts": []}', "m") == Extraction([], [], "m")
    for garbage in (
        "Sure! Here are the facts",
        '{"memories": []}',
        '["User likes tea"]',
        '{"facts": "User likes tea"}',
        "[" * 100_000 + "]" * 100_000,  # nesting past the parser's stack
        '{"facts": [' + "9" * 5_000 + "]}",  # a number past int's digit limit
    ):
        with pytest.raises(InvalidModelOutput):
            parse_reply(garbage, "m")


def test_a_bad_item_is_dropped_and_counted_and_the_good_ones_kept() -> None:
    reply = {
        "facts": ["Alice moved to Lisbon", 3, "x" * 2001, "half an emoji \ud83d", "", {"fact": "nested"}],
        "entities": [
            {"name": "Alice", "type": "Person"},  # obviously meant: person
            {"name": "Lisbon", "type": " PLACE "},
            {"name": "Lisbon Marathon", "type": "event"},
            {"name": 3, "type": "person"},
            {"name": "x" * 201, "type": "person"},
            {"name": "&", "type": "product"},
            "Acme",
        ],
    }
    extraction = parse_reply(json.dumps(reply), "m")

    assert extraction.facts == ["Alice moved to Lisbon"]
    assert extraction.entities == [ExtractedEntity("Alice", "person"), ExtractedEntity("Lisbon", "place")]
    assert [(item.item, item.reason, item.index) for item in extraction.dropped] == [
        ("fact", "not_text", 1),
        ("fact", "too_long", 2),
        ("fact", "invalid_unicode", 3),
        ("fact", "empty", 4),
        ("fact", "not_text", 5),
        ("entity", "bad_type", 2),
        ("entity", "not_text", 3),
        ("entity", "too_long", 4),
        ("entity", "no_letters", 5),
        ("entity", "not_text", 6),
    ]


def test_entities_that_are_not_a_list_cost_no_fact() -> None:
    extraction = parse_reply('{"facts": ["Alice likes tea"], "entities": "Alice"}', "m")
    assert extraction.facts == ["Alice likes tea"] and extraction.entities == []
    assert [(item.item, item.reason) for item in extraction.dropped] == [("entity", "not_text")]


def test_a_reply_whose_every_fact_is_unusable_is_invalid_output() -> None:
    with pytest.raises(InvalidModelOutput, match="none of the model's facts can be stored"):
        parse_reply('{"facts": [1, "' + "x" * 2001 + '"], "entities": []}', "m")


def test_more_facts_than_the_cap_keep_the_first_and_count_the_rest() -> None:
    extraction = parse_reply(json.dumps({"facts": [f"fact {i}" for i in range(105)]}), "m")
    assert extraction.facts == [f"fact {i}" for i in range(100)]
    assert [(item.reason, item.index) for item in extraction.dropped] == [("too_many", i) for i in range(100, 105)]


def test_reply_entities_are_tidied() -> None:
    reply = (
        '{"facts": ["Alice moved to Lisbon"], "entities": [{"name": " Alice ", "type": "person"}, '
        '{"name": "New\\n York", "type": "place"}, {"name": "&", "type": "product"}]}'
    )
    assert parse_reply(reply, "m").entities == [
        ExtractedEntity("Alice", "person"),
        ExtractedEntity("New York", "place"),
    ]


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
