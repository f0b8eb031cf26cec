"""Speech recognition engines behind one Protocol; ``create_asr`` builds the configured one."""

from voice.asr.base import AsrCapabilities, AsrEngine, AsrError, RecognitionContext, Transcript
from voice.asr.registry import ASR_ENGINES, create_asr

__all__ = ["ASR_ENGINES", "AsrCapabilities", "AsrEngine", "AsrError", "RecognitionContext", "Transcript", "create_asr"]
