"""The real-time core every endpoint stands on.

Peers and their fan-out queues, the chat's frames, rate limits, room logs, plain names and the
registry a graceful shutdown walks. Nothing here knows about routes or Redis.
"""
