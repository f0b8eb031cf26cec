"""End of turn: has the caller finished what they wanted to say, or only paused?

An end-of-turn engine is asked when the VAD hears a short pause in the caller's speech; it answers with the
probability that the turn is complete. Engines register like ASR and TTS engines (voice/end_of_turn/registry.py):

- ``silence``: no model; the turn ends after the VAD's fixed end silence (the rule before any model);
- ``smart_turn``: the Smart Turn v3.2 model (voice/end_of_turn/smart_turn.py).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class EndOfTurnError(RuntimeError):
    """The end-of-turn model is missing, corrupt, or failed on a turn."""


class EndOfTurn(Protocol):
    name: str

    def complete(self, pcm: np.ndarray) -> float:
        """Probability that the turn in ``pcm`` (int16 at 8 kHz, the caller's speech so far) is complete. Raises
        ``EndOfTurnError``. Safe to call from several threads at once."""
        ...
