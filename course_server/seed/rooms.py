"""The seed chapter's room manager, for lesson 05 to break — do not copy.

``SeedRoomManager`` is the source chapter's ``RoomManager``, kept as written (type hints
modernised; its unused ``broadcast_all`` left out). It has four bugs:

- it iterates a set while awaiting each send, so a join or leave in the middle raises
  "Set changed size during iteration";
- one dead client raises out of the loop, which the caller's ``except WebSocketDisconnect`` then
  takes for the *sender* leaving;
- one slow client stalls the room;
- ``leave_room`` leaves an empty set behind for every room ever used.

``course_server.lessons.lobby.RoomManager`` fixes all four.
"""
# The chapter's untyped signatures, kept as written (the lessons show them):
# mypy: disable-error-code="no-untyped-def, type-arg"

from __future__ import annotations

from fastapi import WebSocket


class SeedRoomManager:
    """THE NAIVE VERSION, as the source chapter wrote it: for lesson 05 to break, never to use.

    Its four bugs are listed in the module docstring; ``lessons.lobby.RoomManager`` fixes them.
    """

    def __init__(self):
        self.rooms: dict[str, set] = {}  # room_name -> set of websockets
        self.user_rooms: dict[WebSocket, str] = {}  # websocket -> current room

    async def join_room(self, room: str, websocket: WebSocket):
        """User joins a room"""
        # Leave previous room
        if websocket in self.user_rooms:
            await self.leave_room(websocket)

        # Join new room
        if room not in self.rooms:
            self.rooms[room] = set()

        self.rooms[room].add(websocket)
        self.user_rooms[websocket] = room

        await self.broadcast_to_room(
            room, {"type": "system", "message": "A user joined the room"}, exclude=websocket
        )

    async def leave_room(self, websocket: WebSocket):
        """User leaves current room"""
        if websocket in self.user_rooms:
            room = self.user_rooms[websocket]
            self.rooms[room].discard(websocket)
            del self.user_rooms[websocket]

            await self.broadcast_to_room(
                room, {"type": "system", "message": "A user left the room"}
            )

    async def broadcast_to_room(self, room: str, message: dict, exclude: WebSocket | None = None):
        """Broadcast to all users in a room"""
        if room in self.rooms:
            for ws in self.rooms[room]:
                if ws != exclude:
                    await ws.send_json(message)
