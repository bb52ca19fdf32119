"""Load test (lesson 09): many idle chat connections held open, with protocol pings on.

``python -m loadtest`` starts the course server in a process of its own (``python -m
course_server --port 0``), opens ``--connections`` chat connections to it from this process,
holds them for ``--seconds`` while the server pings every one of them, and reports the server's
memory per connection (its RSS growth divided by the connections) and the CPU time it spent.
Everything runs on 127.0.0.1 and every wait is bounded. See ``loadtest/hold.py``.
"""
