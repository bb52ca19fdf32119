"""``course_server.realtime.closecodes``: the close codes are the wire contract, one by one."""

from __future__ import annotations

import json

from course_server.realtime.closecodes import CloseCode


def test_the_rfc_codes_keep_their_numbers() -> None:
    assert {code.name: int(code) for code in CloseCode if code < 3000} == {
        "NORMAL_CLOSURE": 1000,
        "GOING_AWAY": 1001,
        "PROTOCOL_ERROR": 1002,
        "UNSUPPORTED_DATA": 1003,
        "ABNORMAL_CLOSURE": 1006,
        "INVALID_DATA": 1007,
        "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,
    }


def test_the_course_codes_keep_their_numbers() -> None:
    assert {code.name: int(code) for code in CloseCode if code >= 4000} == {
        "USERNAME_TAKEN": 4000,
        "AUTH_REQUIRED": 4001,
        "AUTH_TIMEOUT": 4002,
        "INVALID_TOKEN": 4003,
        "SLOW_CONSUMER": 4008,
    }


def test_an_invalid_name_and_a_flood_are_policy_violations() -> None:
    assert CloseCode.INVALID_NAME is CloseCode.POLICY_VIOLATION
    assert CloseCode.RATE_LIMIT_EXCEEDED is CloseCode.POLICY_VIOLATION


def test_a_code_goes_on_the_wire_as_a_plain_number() -> None:
    assert f"{CloseCode.SLOW_CONSUMER}" == "4008"
    assert json.dumps({"code": CloseCode.GOING_AWAY}) == '{"code": 1001}'
