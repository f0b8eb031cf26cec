"""End-of-turn engines: the Protocol (base.py), the registry, and Smart Turn (smart_turn.py)."""

from voice.end_of_turn.base import EndOfTurn, EndOfTurnError
from voice.end_of_turn.registry import END_OF_TURN_REGISTRY, create_end_of_turn

__all__ = ["END_OF_TURN_REGISTRY", "EndOfTurn", "EndOfTurnError", "create_end_of_turn"]
