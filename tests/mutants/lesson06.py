"""Plausible wrong answers to lesson 06's exercises, one bug each (see ``mutants``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import jwt
from fastapi import HTTPException, Query, WebSocket, WebSocketException, status
from pydantic import BaseModel, ValidationError

from mutants.registry import mutant

# --- 06.1 first_message_auth -----------------------------------------------------------------

SECRET = "exercise-secret-not-for-production"


class Auth(BaseModel):
    type: Literal["auth"]
    token: str


REASONS = {4001: "Authentication required", 4002: "Authentication timeout", 4003: "Invalid token"}


def make_auth(
    *,
    timeout: float | None = 1.0,
    verify_exp: bool = True,
    verify_signature: bool = True,
    bad_code: int = 4003,
    reasons: dict[int, str] = REASONS,
    text_only: bool = False,
    user: str | None = None,
):
    """The solution's rules; ``text_only`` reads the first frame with ``receive_text()``."""

    async def first_message_auth(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async with asyncio.timeout(timeout):
                if text_only:
                    first = await websocket.receive_text()  # KeyError on a binary frame
                else:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    first = message.get("text") or ""
        except TimeoutError:
            await websocket.close(4002, reasons[4002])
            return
        try:
            auth = Auth.model_validate_json(first)
        except ValidationError:
            await websocket.close(4001, reasons[4001])
            return
        try:
            options = {"verify_exp": verify_exp, "verify_signature": verify_signature}
            name = jwt.decode(auth.token, SECRET, algorithms=["HS256"], options=options)["sub"]
        except jwt.InvalidTokenError:
            await websocket.close(bad_code, reasons[bad_code])
            return
        name = user or name
        await websocket.send_json({"type": "auth_success", "user_id": name})
        while True:
            await websocket.send_text(f"{name}: {await websocket.receive_text()}")

    return first_message_auth


mutant("06.1", "no deadline: a silent client waits forever")(make_auth(timeout=None))
mutant("06.1", "expired tokens are let in")(make_auth(verify_exp=False))
mutant("06.1", "a bad token closes with 4001, like a missing one")(make_auth(bad_code=4001))


@mutant("06.1", "the seed's way: the token in the query string, closed before accept")
async def query_token_auth(websocket: WebSocket, token: str | None = None) -> None:
    if token is None:
        await websocket.close(4001, "Token required")
        return
    await websocket.accept()


@mutant("06.1", "receive_json(): a first message that is not JSON crashes the endpoint")
async def crashing_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            first = await websocket.receive_json()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if first.get("type") != "auth":
        await websocket.close(4001, "Authentication required")
        return
    try:
        user = jwt.decode(first["token"], SECRET, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


mutant("06.1", "receive_text(): a binary first frame crashes the endpoint (1011)")(
    make_auth(text_only=True)
)
mutant("06.1", "the token's signature is not checked")(make_auth(verify_signature=False))
mutant("06.1", "close reasons swapped between 4001 and 4003")(
    make_auth(reasons={**REASONS, 4001: "Invalid token", 4003: "Authentication required"})
)
mutant("06.1", "the timeout's reason is left out")(make_auth(reasons={**REASONS, 4002: ""}))
mutant("06.1", "shaped like the prompt's example: welcomes everyone as alice")(
    make_auth(user="alice")
)


@mutant("06.1", "the deadline wraps the whole session: users are cut off after AUTH_TIMEOUT")
async def session_deadline_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            first = await websocket.receive_text()
            try:
                auth = Auth.model_validate_json(first)
            except ValidationError:
                await websocket.close(4001, "Authentication required")
                return
            try:
                user = jwt.decode(auth.token, SECRET, algorithms=["HS256"])["sub"]
            except jwt.InvalidTokenError:
                await websocket.close(4003, "Invalid token")
                return
            await websocket.send_json({"type": "auth_success", "user_id": user})
            while True:
                await websocket.send_text(f"{user}: {await websocket.receive_text()}")
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")


@mutant("06.1", "every message has AUTH_TIMEOUT to come, not only the first")
async def every_message_deadline_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    user = None
    while True:
        try:
            async with asyncio.timeout(1.0):
                text = await websocket.receive_text()
        except TimeoutError:
            await websocket.close(4002, "Authentication timeout")
            return
        if user is not None:
            await websocket.send_text(f"{user}: {text}")
            continue
        try:
            auth = Auth.model_validate_json(text)
        except ValidationError:
            await websocket.close(4001, "Authentication required")
            return
        try:
            user = jwt.decode(auth.token, SECRET, algorithms=["HS256"])["sub"]
        except jwt.InvalidTokenError:
            await websocket.close(4003, "Invalid token")
            return
        await websocket.send_json({"type": "auth_success", "user_id": user})


@mutant("06.1", "json.loads and dict lookups: a list or null first frame crashes (1011)")
async def dict_lookup_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            frame = json.loads(await websocket.receive_text())
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    except ValueError:
        await websocket.close(4001, "Authentication required")
        return
    if frame.get("type") != "auth" or "token" not in frame:
        await websocket.close(4001, "Authentication required")
        return
    try:
        user = jwt.decode(frame["token"], SECRET, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


@mutant("06.1", "a deadline in milliseconds read as seconds: 0.1 s, not AUTH_TIMEOUT")
async def hasty_auth(websocket: WebSocket) -> None:
    await make_auth(timeout=0.1)(websocket)


@mutant("06.1", "no return after closing for a bad token: the code goes on and raises")
async def unstopped_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            first = await websocket.receive_text()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    try:
        auth = Auth.model_validate_json(first)
    except ValidationError:
        await websocket.close(4001, "Authentication required")
        return
    user = None
    try:
        user = jwt.decode(auth.token, SECRET, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


# Equivalent mutants that scripts/mutate.py reports as survivors (no check can kill them):
# - deleting `if first["type"] == "websocket.disconnect": return` (or only its `return`): the
#   code then closes 4001 a connection the client has already closed, which sends nothing and
#   raises nothing a client or the server could see ("a client that leaves before a word ends
#   the call quietly" passes either way).


# --- 06.2 token_user, a dependency that checks the handshake's token ---------------------------

AUDIENCE = "course-chat"
DENY = status.WS_1008_POLICY_VIOLATION


def decoded(token: str | None, **options: Any) -> dict[str, Any]:
    if token is None:
        raise WebSocketException(code=DENY)
    try:
        claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"], **options)
    except jwt.InvalidTokenError:
        raise WebSocketException(code=DENY) from None
    return claims


@mutant("06.2", "trusts a ?user= the client adds over the token's sub")
def trusts_user(token: str | None = Query(None), user: str | None = Query(None)) -> str:
    claims = decoded(token, audience=AUDIENCE, options={"require": ["exp", "sub"]})
    return user or str(claims["sub"])


@mutant("06.2", "no expiry check: an expired token still gets in")
def no_expiry(token: str | None = Query(None)) -> str:
    options = {"verify_exp": False, "require": ["sub"]}
    return str(decoded(token, audience=AUDIENCE, options=options)["sub"])


@mutant("06.2", "no audience: a token for another service gets in")
def no_audience(token: str | None = Query(None)) -> str:
    options = {"verify_aud": False, "require": ["exp", "sub"]}
    return str(decoded(token, options=options)["sub"])


@mutant("06.2", "reads the claims unverified: an unsigned (alg none) or forged token gets in")
def unverified(token: str | None = Query(None)) -> str:
    if token is None:
        raise WebSocketException(code=DENY)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise WebSocketException(code=DENY) from None
    return str(claims["sub"])


@mutant("06.2", "accepts, then checks: the handshake succeeds and a close follows")
async def accepts_first(websocket: WebSocket, token: str | None = Query(None)) -> str:
    await websocket.accept()
    return str(decoded(token, audience=AUDIENCE, options={"require": ["exp", "sub"]})["sub"])


@mutant("06.2", "a missing token is let in as 'anonymous'")
def anonymous(token: str | None = Query(None)) -> str:
    if token is None:
        return "anonymous"
    return str(decoded(token, audience=AUDIENCE, options={"require": ["exp", "sub"]})["sub"])


# --- 06.1, more mistakes -----------------------------------------------------------------------


@mutant("06.1", "tells a failed client why in a message, then closes")
async def explaining_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if message["type"] == "websocket.disconnect":
        return
    try:
        auth = Auth.model_validate_json(message.get("text") or "")
    except ValidationError:
        await websocket.send_json({"type": "error", "reason": "Authentication required"})
        await websocket.close(4001, "Authentication required")
        return
    try:
        user = jwt.decode(auth.token, SECRET, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        await websocket.send_json({"type": "error", "reason": "Invalid token"})
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


@mutant("06.1", "decodes a binary first frame as text: an auth frame in bytes gets in")
async def bytes_as_text_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if message["type"] == "websocket.disconnect":
        return
    raw = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
    try:
        auth = Auth.model_validate_json(raw)
    except ValidationError:
        await websocket.close(4001, "Authentication required")
        return
    try:
        user = jwt.decode(auth.token, SECRET, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


@mutant("06.1", "no return after the timeout's close: the code goes on and raises")
async def unstopped_timeout_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    message: Any = None
    try:
        async with asyncio.timeout(1.0):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
    if message["type"] == "websocket.disconnect":  # None after a timeout: TypeError
        return
    try:
        auth = Auth.model_validate_json(message.get("text") or "")
        user = jwt.decode(auth.token, SECRET, algorithms=["HS256"])["sub"]
    except ValidationError:
        await websocket.close(4001, "Authentication required")
        return
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


@mutant("06.1", "trusts the token's own alg header: an unsigned token (alg none) crashes it")
async def header_alg_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if message["type"] == "websocket.disconnect":
        return
    try:
        auth = Auth.model_validate_json(message.get("text") or "")
    except ValidationError:
        await websocket.close(4001, "Authentication required")
        return
    try:
        algorithm = jwt.get_unverified_header(auth.token)["alg"]
        user = jwt.decode(auth.token, SECRET, algorithms=[algorithm])["sub"]
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


@mutant("06.1", "the welcome names the user under 'user', not 'user_id'")
async def user_key_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if message["type"] == "websocket.disconnect":
        return
    try:
        auth = Auth.model_validate_json(message.get("text") or "")
        user = jwt.decode(auth.token, SECRET, algorithms=["HS256"])["sub"]
    except ValidationError:
        await websocket.close(4001, "Authentication required")
        return
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


@mutant("06.1", "decodes the token itself, no claim required: no exp, no sub gets in")
async def unrequired_claims_auth(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async with asyncio.timeout(1.0):
            message = await websocket.receive()
    except TimeoutError:
        await websocket.close(4002, "Authentication timeout")
        return
    if message["type"] == "websocket.disconnect":
        return
    try:
        auth = Auth.model_validate_json(message.get("text") or "")
    except ValidationError:
        await websocket.close(4001, "Authentication required")
        return
    try:
        user = jwt.decode(auth.token, SECRET, algorithms=["HS256"]).get("sub")
    except jwt.InvalidTokenError:
        await websocket.close(4003, "Invalid token")
        return
    await websocket.send_json({"type": "auth_success", "user_id": user})
    while True:
        await websocket.send_text(f"{user}: {await websocket.receive_text()}")


# --- 06.2, more mistakes -----------------------------------------------------------------------


@mutant("06.2", "no 'require': a token without an expiry never expires")
def no_required_exp(token: str | None = Query(None)) -> str:
    return str(decoded(token, audience=AUDIENCE)["sub"])


@mutant("06.2", "no 'sub' required: a token that names nobody is let in as 'None'")
def no_required_sub(token: str | None = Query(None)) -> str:
    claims = decoded(token, audience=AUDIENCE, options={"require": ["exp"]})
    return str(claims.get("sub"))


@mutant("06.2", "catches only expiry, signature and audience errors: an unsigned token is a 500")
def narrow_except(token: str | None = Query(None)) -> str:
    if token is None:
        raise WebSocketException(code=DENY)
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], audience=AUDIENCE, options={"require": ["exp"]}
        )
    except (jwt.ExpiredSignatureError, jwt.InvalidSignatureError, jwt.InvalidAudienceError):
        raise WebSocketException(code=DENY) from None
    return str(claims["sub"])


@mutant("06.2", "trusts the token's own alg header: an unsigned token (alg none) is a 500")
def header_alg(token: str | None = Query(None)) -> str:
    if token is None:
        raise WebSocketException(code=DENY)
    try:
        algorithm = jwt.get_unverified_header(token)["alg"]
        claims = jwt.decode(
            token, SECRET, algorithms=[algorithm], audience=AUDIENCE, options={"require": ["exp"]}
        )
    except jwt.InvalidTokenError:
        raise WebSocketException(code=DENY) from None
    return str(claims["sub"])


@mutant("06.2", "refuses with HTTPException(401): the client sees 401, not 403")
def http_401(token: str | None = Query(None)) -> str:
    try:
        return str(decoded(token, audience=AUDIENCE, options={"require": ["exp", "sub"]})["sub"])
    except WebSocketException:
        raise HTTPException(status_code=401, detail="Invalid token") from None


@mutant("06.2", "a leeway of an hour for clock skew: a token expired minutes ago gets in")
def hour_leeway(token: str | None = Query(None)) -> str:
    options = {"require": ["exp", "sub"]}
    return str(decoded(token, audience=AUDIENCE, options=options, leeway=3600)["sub"])
