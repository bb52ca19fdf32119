"""The chat protocol's frames (``realtime.messages``): edge validation, serialisation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from course_server.realtime.messages import (
    MAX_CLIENT_MSG_ID_CHARS,
    MAX_CONTENT_CHARS,
    AckFrame,
    ErrorCode,
    ErrorFrame,
    JoinEvent,
    MessageEvent,
    ResumeFrame,
    SendMessage,
    ServerFrame,
    explain,
    parse,
)

NOON = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_a_valid_message_parses() -> None:
    assert parse('{"type": "message", "content": "hi"}') == SendMessage(
        type="message", content="hi"
    )


def test_client_msg_id_is_kept() -> None:
    frame = parse('{"type": "message", "content": "hi", "client_msg_id": "k-1"}')
    assert isinstance(frame, SendMessage)
    assert frame.client_msg_id == "k-1"


def test_extra_fields_are_ignored_so_a_client_cannot_choose_its_username() -> None:
    frame = parse('{"type": "message", "content": "hi", "username": "mallory"}')
    assert isinstance(frame, SendMessage)
    assert "username" not in frame.model_dump()


def test_content_of_exactly_the_maximum_length_is_accepted() -> None:
    frame = parse(json.dumps({"type": "message", "content": "x" * MAX_CONTENT_CHARS}))
    assert isinstance(frame, SendMessage)


def test_content_length_counts_characters_not_bytes() -> None:
    frame = parse(json.dumps({"type": "message", "content": "é" * MAX_CONTENT_CHARS}))
    assert isinstance(frame, SendMessage)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", ErrorCode.INVALID_JSON),
        ("", ErrorCode.INVALID_JSON),
        ('{"type": "message", "content": "hi"', ErrorCode.INVALID_JSON),
        ("[1, 2]", ErrorCode.INVALID_MESSAGE),
        ('"just a string"', ErrorCode.INVALID_MESSAGE),
        ("42", ErrorCode.INVALID_MESSAGE),
        ("null", ErrorCode.INVALID_MESSAGE),
        ("{}", ErrorCode.INVALID_MESSAGE),
        ('{"content": "no type"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": 5, "content": "hi"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": null}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "message"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "message", "content": 5}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "message", "content": ["hi"]}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "message", "content": ""}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "message", "content": "hi", "client_msg_id": 7}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "message", "content": "hi", "client_msg_id": ""}', ErrorCode.INVALID_MESSAGE),
        (
            json.dumps({"type": "message", "content": "hi", "client_msg_id": "k" * 65}),
            ErrorCode.INVALID_MESSAGE,
        ),
        ('{"type": "shout", "content": "hi"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "join", "room": "x"}', ErrorCode.UNKNOWN_TYPE),
        (
            json.dumps({"type": "message", "content": "x" * (MAX_CONTENT_CHARS + 1)}),
            ErrorCode.CONTENT_TOO_LONG,
        ),
        (b'{"type": "message", "content": "hi"}', ErrorCode.BINARY_NOT_SUPPORTED),
    ],
)
def test_bad_input_gets_the_documented_error_code(frame: str | bytes, code: ErrorCode) -> None:
    result = parse(frame)
    assert isinstance(result, ErrorFrame)
    assert result.code is code
    assert result.message  # a human reason, never empty


def test_client_msg_id_limit_matches_the_protocol() -> None:
    assert MAX_CLIENT_MSG_ID_CHARS == 64
    frame = parse(json.dumps({"type": "message", "content": "hi", "client_msg_id": "k" * 64}))
    assert isinstance(frame, SendMessage)


def test_error_codes_are_exactly_the_documented_ones() -> None:
    assert {code.value for code in ErrorCode} == {
        "invalid_json",
        "invalid_message",
        "unknown_type",
        "content_too_long",
        "binary_not_supported",
        "rate_limited",
        "not_in_room",
        "unavailable",
    }


def test_error_message_names_the_field_at_fault() -> None:
    result = parse('{"type": "message", "content": 5}')
    assert isinstance(result, ErrorFrame)
    assert result.message.startswith("content:")


# explain: the one rule for every JSON endpoint ------------------------------------------------


class Pair(BaseModel):
    """A plain model (no union): lesson 02's ``Say`` and lesson 03's private messages are."""

    a: int
    b: int
    c: int
    d: int


def failure(model: type[BaseModel], text: str) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        model.model_validate_json(text)
    return raised.value


def test_explain_names_the_field_of_a_plain_model() -> None:
    assert explain(failure(Pair, '{"a": 1, "b": 2, "c": 3}')) == (
        ErrorCode.INVALID_MESSAGE,
        "d: Field required",
    )


def test_explain_names_up_to_three_problems_and_counts_the_rest() -> None:
    _, message = explain(failure(Pair, '{"a": "x", "b": "x", "c": "x", "d": "x", "e": 1}'))
    assert message.count("Input should be a valid integer") == 3
    assert message.endswith("; and 1 more")


def test_explain_says_where_json_breaks() -> None:
    assert explain(failure(Pair, "{oops")) == (
        ErrorCode.INVALID_JSON,
        "Invalid JSON: key must be a string at line 1 column 2",
    )


def test_explain_asks_for_an_object_when_given_something_else() -> None:
    assert explain(failure(Pair, "[1, 2]")) == (
        ErrorCode.INVALID_MESSAGE,
        'send a JSON object with a "type" field',
    )


def test_an_unknown_type_is_quoted_back_shortened() -> None:
    result = parse(json.dumps({"type": "x" * 1000}))
    assert isinstance(result, ErrorFrame)
    assert result.code is ErrorCode.UNKNOWN_TYPE
    assert result.message == f"unknown type '{'x' * 31}…': use 'message', 'ping'"


def test_a_union_tag_is_not_named_as_part_of_the_location() -> None:
    result = parse('{"type": "message", "content": "hi", "client_msg_id": 7}')
    assert isinstance(result, ErrorFrame)
    assert result.message == "client_msg_id: Input should be a valid string"


def test_no_message_carries_pydantic_s_own_report() -> None:
    frames = ["{", "[]", '{"type": "dance"}', '{"type": 5}', '{"type": "message"}']
    messages = [result.message for result in map(parse, frames) if isinstance(result, ErrorFrame)]
    assert len(messages) == len(frames)
    for message in messages:
        assert "pydantic" not in message and "Input tag" not in message and "[type=" not in message


def test_message_event_json_has_client_msg_id_only_when_given() -> None:
    plain = MessageEvent(username="a", content="hi", timestamp=NOON, id=1)
    tagged = MessageEvent(username="a", content="hi", timestamp=NOON, id=1, client_msg_id="k")
    assert "client_msg_id" not in json.loads(plain.model_dump_json())
    assert json.loads(tagged.model_dump_json())["client_msg_id"] == "k"


def test_event_json_matches_the_protocol() -> None:
    event = JoinEvent(username="alice", content="alice joined the room", timestamp=NOON, id=3)
    assert json.loads(event.model_dump_json()) == {
        "type": "join",
        "username": "alice",
        "content": "alice joined the room",
        "timestamp": "2025-01-01T12:00:00Z",
        "id": 3,
    }


def test_resume_with_empty_history_sends_null_oldest_id() -> None:
    frame = ResumeFrame(complete=False, after=9, oldest_id=None)
    assert json.loads(frame.model_dump_json()) == {
        "type": "resume",
        "complete": False,
        "after": 9,
        "oldest_id": None,
    }


def test_server_frames_parse_back_by_type() -> None:
    adapter: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
    ack = adapter.validate_json('{"type": "ack", "client_msg_id": "k", "id": 4}')
    assert ack == AckFrame(client_msg_id="k", id=4)
    error = adapter.validate_json('{"type": "error", "code": "rate_limited", "message": "slow"}')
    assert isinstance(error, ErrorFrame)
    assert error.code is ErrorCode.RATE_LIMITED
