"""The end-of-turn engine registry, like the ASR and TTS ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voice.registry import Registry

if TYPE_CHECKING:
    from foundation.settings import EndOfTurnSettings
    from voice.end_of_turn.base import EndOfTurn

END_OF_TURN_REGISTRY: Registry[EndOfTurn] = Registry("end-of-turn")
register_end_of_turn = END_OF_TURN_REGISTRY.register


def load_builtin_engines() -> None:
    import voice.end_of_turn.smart_turn  # noqa: F401


def create_end_of_turn(settings: EndOfTurnSettings) -> EndOfTurn | None:
    """The engine the settings name, loaded and checked; None for the fixed-silence rule."""
    if settings.engine == "silence":
        return None
    load_builtin_engines()
    return END_OF_TURN_REGISTRY.get(settings.engine)(settings)  # type: ignore[call-arg]
