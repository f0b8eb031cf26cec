"""The call store's tables. Everything written here is already redacted (transcripts, numbers, entity values)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Call(Base):
    """One phone call: written when it starts, completed when it ends."""

    __tablename__ = "calls"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller: Mapped[str] = mapped_column(String(32))  # masked
    # A keyed hash of the caller's full number: finds repeat callers without keeping the number.
    caller_key: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(32), index=True)
    handed_off_at: Mapped[datetime | None]
    # in_progress while a gateway holds the call; ended; interrupted when that gateway died before the call ended.
    status: Mapped[str] = mapped_column(String(16), default="in_progress", index=True)
    worker: Mapped[str] = mapped_column(String(128), default="")  # the gateway that holds (held) the call
    record: Mapped[dict[str, Any] | None]  # the session's call record (turns, events, latencies)
    packet: Mapped[dict[str, Any] | None]  # the handoff packet, schema-validated
    # When retention removed what the caller said (transcripts, record, packet, masked number); the call's figures stay.
    purged_at: Mapped[datetime | None] = mapped_column(index=True)
    frustrated: Mapped[bool | None]  # the caller's mood at the end (nlu/sentiment.py); a figure, kept by the purge


class Turn(Base):
    """One caller turn, written as soon as the assistant has decided what to do with it."""

    __tablename__ = "turns"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]  # when it was written
    input: Mapped[str] = mapped_column(String(16))  # speech | keypad
    transcript: Mapped[str] = mapped_column(Text, default="")  # redacted
    asr_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    intent: Mapped[str] = mapped_column(String(64), default="", index=True)
    nlu_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    decision: Mapped[str] = mapped_column(String(96), default="")
    response_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any] | None]  # the whole turn record (ranking, entities, latencies, interruptions)
    sentiment: Mapped[str | None] = mapped_column(String(8))  # negative | neutral | positive: a figure the purge keeps


class Recording(Base):
    """A call's recording (telephony/recording.py, RECORDING__ENABLED): a stereo mu-law WAV, the caller on the left,
    the assistant on the right, personal data silenced. The retention purge deletes it with the call's transcripts."""

    __tablename__ = "recordings"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime]
    seconds: Mapped[float] = mapped_column(Float)
    silenced: Mapped[int] = mapped_column(Integer, default=0)  # passages of the caller's speech silenced
    wav: Mapped[bytes] = mapped_column(LargeBinary)


class TaskEvent(Base):
    """What happened to a routed call after the assistant: queued, accepted by an expert, completed ..."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # created | accepted | completed | canceled | failed
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))  # taskrouter | dial | enqueue | gateway
    task_sid: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(128))
    # On a "completed" event: seconds the expert spent on the call (accepted -> completed, or the dialled leg's length).
    handled_s: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any] | None]


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # supervisor | trainer | agent | admin
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]


class WebSession(Base):
    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # the cookie's token is never stored
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ReviewLabel(Base):
    """A trainer's verdict on a turn from the review queue: the intent it should have been (added to the data)."""

    __tablename__ = "review_labels"

    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    turn_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)  # the example as added to the training data
    labelled_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class AccessEvent(Base):
    """A logged-in user opened callers' data: who, what, when and from which address (the access audit)."""

    __tablename__ = "access_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))  # what was opened: call_detail, packet, call_list, csv_export ...
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)  # the call, when one call was opened
    subject: Mapped[str] = mapped_column(Text, default="")  # a list's period and filters (redacted)
    address: Mapped[str] = mapped_column(String(64))  # the client's address as the gateway saw it
