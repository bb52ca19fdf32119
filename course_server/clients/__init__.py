"""Clients for notebooks, tests and attacks.

Plain WebSocket and SSE clients, a reconnecting chat client, lesson 07's cross-process clients,
the raw handshake, and clients that misbehave on purpose.
"""
