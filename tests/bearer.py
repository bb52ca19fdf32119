"""An ``Authorization`` header the tests publish with: ``POST /notifications`` needs a token."""

from __future__ import annotations

from fastapi import FastAPI

from course_server.tokens import create_access_token


def bearer(app: FastAPI, user: str = "alice", lifetime: int = 600) -> dict[str, str]:
    """``Authorization: Bearer T`` with a token ``app`` signed for ``user`` (as ``POST /token``)."""
    token = create_access_token(user, app.state.settings.jwt_secret, lifetime)
    return {"Authorization": f"Bearer {token}"}
