"""The call's explicit state and its moves.

GREETING until the greeting is heard; then LISTENING for the caller (CONFIRMING while a read-back awaits yes or no),
THINKING once an input came (recognition, dialogue), SPEAKING while a reply plays; HANDED_OFF once the assistant's
part is over (a queue takes the call); ENDED when the stream is gone. Once the assistant's part is over nothing moves
the call back; every move is told to the call's events.
"""

from __future__ import annotations

import enum
from collections.abc import Callable


class CallState(enum.Enum):
    GREETING = "greeting"
    LISTENING = "listening"
    CONFIRMING = "confirming"
    THINKING = "thinking"
    SPEAKING = "speaking"
    HANDED_OFF = "handed_off"
    ENDED = "ended"


FINAL = frozenset({CallState.HANDED_OFF, CallState.ENDED})


class CallStates:
    """Where one call is; ``on_move(from, to)`` records each move."""

    def __init__(self, on_move: Callable[[CallState, CallState], None]):
        self.current = CallState.GREETING
        self._on_move = on_move

    def enter(self, state: CallState) -> None:
        if state is self.current:
            return
        if self.current in FINAL and state is not CallState.ENDED:
            return  # the bot part is over: nothing moves it back
        self._on_move(self.current, state)
        self.current = state
