"""Logins for the web pages: users with roles, scrypt password hashes, server-side sessions that expire, and a
lockout after repeated failed logins (per account, and per client address)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from analytics.models import User, WebSession
from analytics.store import CallStore, parse_time, utcnow

ROLES = ("supervisor", "trainer", "agent", "admin")
MIN_PASSWORD_LENGTH = 12
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LoginFailed(Exception):
    """Wrong user name or password, or the account is locked; the message is safe to show."""


@dataclass(frozen=True)
class SignedIn:
    username: str
    role: str
    csrf_token: str
    expires_at: datetime


class Accounts:
    def __init__(
        self,
        store: CallStore,
        session_ttl: timedelta = timedelta(hours=8),
        max_failures: int = 5,
        lockout: timedelta = timedelta(minutes=15),
    ):
        self._store = store
        self._ttl = session_ttl
        self._max_failures = max_failures
        self._lockout = lockout
        # Verified against when the user name is unknown, so a wrong name costs as long as a wrong password.
        self._dummy_hash = hash_password(secrets.token_hex(8))

    def add_user(self, username: str, role: str, password: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if (
            not username
            or len(username) > 64
            or not username.replace(".", "").replace("-", "").replace("_", "").isalnum()
        ):
            raise ValueError("a user name is 1-64 letters, digits, '.', '-' or '_'")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        with self._store.sessions.begin() as db:
            if db.scalar(select(User).where(User.username == username)) is not None:
                raise ValueError(f"user {username!r} exists")
            db.add(User(username=username, role=role, password_hash=hash_password(password), created_at=utcnow()))

    def users(self) -> list[tuple[str, str]]:
        with self._store.sessions() as db:
            return [(u.username, u.role) for u in db.scalars(select(User).order_by(User.username))]

    def login(self, username: str, password: str) -> tuple[str, SignedIn]:
        """A new session token (for the cookie) and what it stands for; ``LoginFailed`` otherwise."""
        now = utcnow()
        failure = None
        with self._store.sessions.begin() as db:  # a failure is counted (committed) before it is raised
            user = db.scalar(select(User).where(User.username == username))
            if user is None:
                verify_password(password, self._dummy_hash)
                failure = "wrong user name or password"
            elif user.locked_until is not None and parse_time(user.locked_until) > now:
                failure = "too many failed logins: this account is locked for a while"
            elif not verify_password(password, user.password_hash):
                failure = "wrong user name or password"
                user.failed_logins += 1
                if user.failed_logins >= self._max_failures:
                    user.locked_until, user.failed_logins = now + self._lockout, 0
            else:
                user.failed_logins, user.locked_until = 0, None
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
                db.execute(delete(WebSession).where(WebSession.expires_at < now))
                db.add(
                    WebSession(
                        token_hash=_token_hash(token),
                        user_id=user.id,
                        csrf_token=csrf,
                        created_at=now,
                        expires_at=now + self._ttl,
                    )
                )
                signed_in = SignedIn(user.username, user.role, csrf, now + self._ttl)
        if failure is not None:
            raise LoginFailed(failure)
        return token, signed_in

    def session(self, token: str | None) -> SignedIn | None:
        if not token:
            return None
        with self._store.sessions() as db:
            row = db.execute(
                select(WebSession, User)
                .join(User, User.id == WebSession.user_id)
                .where(WebSession.token_hash == _token_hash(token))
            ).first()
        if row is None:
            return None
        web_session, user = row
        expires = parse_time(web_session.expires_at)
        if expires <= utcnow():
            self.logout(token)
            return None
        return SignedIn(user.username, user.role, web_session.csrf_token, expires)

    def logout(self, token: str) -> None:
        with self._store.sessions.begin() as db:
            db.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


class LoginThrottle:
    """Failed logins per client address in a sliding window: past the limit, that address is refused (HTTP 429)
    before any password is checked. Complements the per-account lockout: a brute force spread over many user
    names is stopped too. In memory, per gateway process."""

    def __init__(self, max_failures: int = 20, window: timedelta = timedelta(minutes=10)):
        self._max = max_failures
        self._window = window.total_seconds()
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures

    def retry_after_s(self, address: str) -> int:
        """0 when the address may try; else seconds until its oldest counted failure leaves the window."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) < self._max:
                return 0
            return max(1, int(failures[0] + self._window - now) + 1)

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, now).append(now)
            if len(self._failures) > 10_000:  # addresses with no failure in the window are forgotten
                for key in [k for k, v in self._failures.items() if not v or v[-1] <= now - self._window]:
                    del self._failures[key]
