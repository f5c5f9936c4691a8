"""The fake Twilio's switchboard: what happens to calls between their webhooks.

Each call has a line of events its simulated party waits on (taken out of a queue, sent new
TwiML, hung up from outside, its conference ended), and calls meet in conference rooms, which
close when a participant with endConferenceOnExit leaves.
https://www.twilio.com/docs/voice/twiml/conference#attributes-endConferenceOnExit
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace

from app.telephony.sandbox.fake_resources import new_sid
from app.telephony.sandbox.switchboard import ConferenceEnded, Ended, LineEvent


@dataclass
class Seat:
    """A participant of a conference, with the settings Twilio's participant resource shows
    and changes (https://www.twilio.com/docs/voice/api/conference-participant-resource)."""

    end_on_exit: bool
    muted: bool = False
    hold: bool = False
    coaching: bool = False
    call_sid_to_coach: str | None = None


@dataclass
class Room:
    sid: str
    name: str
    participants: dict[str, Seat] = field(default_factory=dict)  # by call sid


class Lines:
    """Events for each call's party, and the conference rooms; shares the fake's lock."""

    def __init__(self, lock: threading.RLock) -> None:
        self._changed = threading.Condition(lock)
        self._events: dict[str, deque[LineEvent]] = {}
        self._rooms: dict[str, Room] = {}
        self._closed = False

    def reset(self) -> None:
        with self._changed:
            self._events.clear()
            self._rooms.clear()
            self._closed = False

    def push(self, call_sid: str, event: LineEvent) -> None:
        with self._changed:
            self._events.setdefault(call_sid, deque()).append(event)
            self._changed.notify_all()

    def next_event(self, call_sid: str, timeout: float) -> LineEvent | None:
        """The next thing that happens to the call, waiting up to `timeout` seconds for it."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: self._events.get(call_sid) or self._closed, timeout
            ):
                return None
            if self._closed and not self._events.get(call_sid):
                return Ended()
            return self._events[call_sid].popleft()

    def join(self, call_sid: str, name: str, end_on_exit: bool, seat: Seat | None = None) -> str:
        with self._changed:
            room = self._rooms.setdefault(name, Room(new_sid("CF"), name))
            room.participants[call_sid] = seat or Seat(end_on_exit)
            return room.sid

    def room(self, sid: str) -> Room | None:
        """The open conference with this sid (the caller holds the lock to use it)."""
        with self._changed:
            return next((room for room in self._rooms.values() if room.sid == sid), None)

    def all_rooms(self) -> list[Room]:
        """The open conferences themselves (the caller holds the lock to use them)."""
        with self._changed:
            return list(self._rooms.values())

    def seats(self, name: str) -> dict[str, Seat]:
        """Who is in the named conference and how (copies), for tests to look at."""
        with self._changed:
            room = self._rooms.get(name)
            return {sid: replace(seat) for sid, seat in room.participants.items()} if room else {}

    def rooms(self) -> dict[str, list[str]]:
        """Each open conference's name and who is in it."""
        with self._changed:
            return {name: list(room.participants) for name, room in self._rooms.items()}

    def leave(self, call_sid: str) -> None:
        """The call leaves its conference; if it was to end the conference on exit, everyone
        else's Dial ends too."""
        with self._changed:
            for name, room in list(self._rooms.items()):
                if call_sid not in room.participants:
                    continue
                ends_it = room.participants.pop(call_sid).end_on_exit
                if ends_it or not room.participants:
                    del self._rooms[name]
                    for other in room.participants:
                        self.push(other, ConferenceEnded())

    def close(self) -> None:
        """Stopping: every party still waiting hears its call end."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
