"""The real-time core every endpoint stands on.

Peers and their fan-out queues, the chat's frames, rate limits, room logs, plain names, the
registry a graceful shutdown walks, the close codes and the retry backoff. Nothing here knows
about routes or Redis.
"""
