"""The seed chapter's message validation, for lesson 09 to break — do not copy.

``SeedChatMessage`` accepts a typo as a frame type, and ``seed_reply`` sends pydantic's full
report back to the client. ``course_server.realtime.messages`` (a discriminated union and the
documented ``ErrorCode`` list) is what the server uses.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError


class SeedChatMessage(BaseModel):
    """THE NAIVE VERSION, as the source chapter wrote it: for lesson 09 to break, never to use.

    ``type`` is any string, so a typo is a valid frame; ``content`` may be missing or empty and
    has no length limit; ``target_user: str = None`` claims a string and holds None.
    """

    type: str
    content: str = ""
    target_user: str = None  # type: ignore[assignment]  # the chapter's annotation, kept


def seed_reply(raw_data: dict[str, Any]) -> dict[str, Any] | None:
    """What the chapter's ``validated_websocket`` sends back for ``raw_data``: None if valid.

    Its error frame carries ``str(e)``: pydantic's full report, with the model's name, the
    client's input echoed back and a link to the docs of the exact pydantic version.
    """
    try:
        SeedChatMessage(**raw_data)
    except ValidationError as e:
        return {"type": "error", "message": str(e)}
    return None
