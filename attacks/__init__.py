"""``python -m attacks``: the Security contract's attacks against real ``course_server`` processes.

Each probe performs one attack from the outside, with real clients on loopback, and reports a row:
attack → what the contract expects → what came back. ``--short`` is the form CI runs (smaller
floods and fewer slow clients); ``--redis`` also runs the attacks whose state is shared across
processes (name ownership, login throttle, sign-out) against two processes and one real Redis.
"""
