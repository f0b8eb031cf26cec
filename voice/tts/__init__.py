"""Speech synthesis engines behind one Protocol; ``create_tts`` builds the configured one with its fallback."""

from voice.tts.base import Speech, TtsEngine, TtsError
from voice.tts.registry import TTS_ENGINES, create_tts

__all__ = ["TTS_ENGINES", "Speech", "TtsEngine", "TtsError", "create_tts"]
