"""Benchmarks for the course server (lesson 10): fan-out, polling vs push, cross-process.

Run from the repository's root, with the ``bench`` extra installed (``pip install -e '.[bench]'``):

    python -m benchmarks.fanout --receivers 1000 --messages 200   # (a) room fan-out
    python -m benchmarks.transports --events 1000                 # (b) polling vs WebSocket vs SSE
    python -m benchmarks.crossprocess                             # (c) through Redis vs not

Every server under test runs in a process of its own (``course_server.tools.processes``); the
load generator runs in others (``loadgen``, picows clients); ``harness.measure`` ties them
together. Everything listens and connects on 127.0.0.1 only, and every wait is bounded.
"""
