"""Who may connect and what they may send.

Tokens and name ownership (lesson 06), login throttling and sign-out, and the checks at the
edge: Host, Origin, body size, and tokens kept out of the logs.
"""
