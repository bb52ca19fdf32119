"""The worker's messages to the grader: a pipe of its own, each line signed with the run's nonce.

The worker's stdout and stderr are the learner's (``print``) and only ever shown, capped; the
verdicts travel on another file descriptor the grader passes down. Each line is
``NONCE JSON``; the nonce is a random token the grader writes on the worker's stdin, so output
printed or written by other processes cannot pass for a verdict. The grader expects exactly one
message per exercise, in order, then ``done``: anything else on the pipe is ``Forged``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

LIMIT = 1 << 20
"""More bytes than a lesson's verdicts ever take: past this, the pipe is not the worker's."""


class Forged(Exception):
    """The channel carried something the worker does not send."""


def send(fd: int, nonce: str, message: dict[str, Any]) -> None:
    """Write one message, whole, to ``fd``."""
    data = f"{nonce} {json.dumps(message, ensure_ascii=True)}\n".encode()
    while data:
        data = data[os.write(fd, data) :]


def sealed_sender(fd: int, nonce: str) -> Callable[[dict[str, Any]], None]:
    """``send`` for the worker, made of what learner code cannot patch from Python: the C JSON
    encoder and ``os.write``, captured now, before any learner code runs. (``send`` looks
    ``json`` and ``os`` up when called; learner code could have replaced them by then.)"""
    from _json import encode_basestring_ascii, make_encoder

    def refuse(value: object) -> None:
        raise TypeError(f"{type(value).__name__} is not JSON")

    encode = make_encoder(
        None, refuse, encode_basestring_ascii, None, ": ", ", ", False, False, True
    )  # the arguments of json.JSONEncoder.iterencode's C path, with ensure_ascii
    write, join, prefix = os.write, "".join, f"{nonce} ".encode()

    def send(message: dict[str, Any]) -> None:
        data = prefix + join(encode(message, 0)).encode() + b"\n"
        while data:
            data = data[write(fd, data) :]

    return send


def receive(data: bytes, nonce: str, *, cut: bool = False) -> list[dict[str, Any]]:
    """The messages in ``data``, each checked for the nonce; ``cut``: the worker was killed, so
    a last line without its newline is dropped rather than called forged."""
    if len(data) > LIMIT:
        raise Forged(f"more than {LIMIT} bytes of messages")
    lines = data.split(b"\n")
    if lines[-1] and not cut:
        raise Forged("a message without its end of line")
    messages = []
    for line in lines[:-1]:
        token, _, body = line.decode("utf-8", "replace").partition(" ")
        if token != nonce:
            raise Forged("a message without the run's nonce")
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise Forged("a message that is not JSON") from exc
        if not isinstance(message, dict):
            raise Forged("a message that is not an object")
        messages.append(message)
    return messages
