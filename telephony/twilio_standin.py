"""A stand-in for Twilio's REST API on loopback, for tests and the demo (no Twilio account exists here).

It answers the one call-control request the gateway makes (``POST /2010-04-01/Accounts/<AC>/Calls/<CA>.json``)
as Twilio does: HTTP basic auth with the account SID and auth token, a JSON call resource back. Like Twilio, after
a redirect to a URL it fetches that URL (a signed POST, as Twilio signs webhooks) and keeps the TwiML it got.
Every request is recorded; faults (an HTTP status, a delay) can be injected for the next requests.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from twilio.request_validator import RequestValidator

CALL_PATH_PREFIX = "/2010-04-01/Accounts/"


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, str]
    authorised: bool
    status: int
    fetched_twiml: str | None = None  # the TwiML Twilio would run next (fetched from Url, or the Twiml given)
    fetch_status: int | None = None
    fetch_error: str | None = None


@dataclass
class _Fault:
    status: int
    remaining: int
    delay_s: float


@dataclass
class TwilioStandIn:
    """Start with ``start()`` (or as a context manager); ``url`` is what the twilio client's base URL becomes."""

    account_sid: str
    auth_token: str
    host: str = "127.0.0.1"
    requests: list[RecordedRequest] = field(default_factory=list)
    _fault: _Fault | None = None
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _fetchers: list[threading.Thread] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> TwilioStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                standin._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the recorded requests say it all
                pass

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="twilio-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for fetcher in self._fetchers:
            fetcher.join(timeout=10)

    def __enter__(self) -> TwilioStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, status: int, count: int = 1, delay_s: float = 0.0) -> None:
        """The next ``count`` requests answer ``status`` (after ``delay_s``); status 0: only the delay."""
        with self._lock:
            self._fault = _Fault(status, count, delay_s)

    def calls_to(self, call_sid: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(f"/Calls/{call_sid}.json")]

    def wait_for_twiml(self, call_sid: str, timeout_s: float = 10.0) -> RecordedRequest:
        """The first successful redirect of ``call_sid`` once its TwiML has been fetched."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = [r for r in self.calls_to(call_sid) if r.status == 200 and r.fetched_twiml is not None]
            if done:
                return done[0]
            time.sleep(0.05)
        raise TimeoutError(f"no redirect of {call_sid} with fetched TwiML: {self.calls_to(call_sid)}")

    # --- the API ------------------------------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length).decode()
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        path = urlsplit(http.path).path
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        authorised = http.headers.get("Authorization", "") == f"Basic {expected}"
        record = RecordedRequest("POST", path, form, authorised, 200)
        with self._lock:  # recorded on arrival: a request the client gave up on still counts
            self.requests.append(record)
            fault = self._fault
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
        if fault is not None and fault.delay_s:
            time.sleep(fault.delay_s)
        if not authorised:
            record.status, answer = 401, {"code": 20003, "message": "Authenticate", "status": 401}
        elif fault is not None and fault.status:
            record.status, answer = (
                fault.status,
                {"code": 20500, "message": "Service unavailable", "status": fault.status},
            )
        elif not (path.startswith(f"{CALL_PATH_PREFIX}{self.account_sid}/Calls/") and path.endswith(".json")):
            record.status, answer = (
                404,
                {"code": 20404, "message": "The requested resource was not found", "status": 404},
            )
        else:
            call_sid = path.rsplit("/", 1)[1].removesuffix(".json")
            answer = {"sid": call_sid, "account_sid": self.account_sid, "status": "in-progress"}
            if "Twiml" in form:
                record.fetched_twiml = form["Twiml"]
            elif "Url" in form:
                fetcher = threading.Thread(target=self._fetch, args=(record, call_sid), daemon=True)
                self._fetchers.append(fetcher)
                fetcher.start()
        payload = json.dumps(answer).encode()
        try:
            http.send_response(record.status)
            http.send_header("Content-Type", "application/json")
            http.send_header("Content-Length", str(len(payload)))
            http.end_headers()
            http.wfile.write(payload)
        except OSError:  # the client gave up (a timeout test): nothing more to say
            pass

    def _fetch(self, record: RecordedRequest, call_sid: str) -> None:
        """What Twilio does after a redirect: request the new TwiML, signed like every webhook."""
        url = record.form["Url"]
        params = {"CallSid": call_sid, "AccountSid": self.account_sid, "CallStatus": "in-progress"}
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        try:
            response = httpx.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10)
        except httpx.HTTPError as e:  # Twilio would play its "application error" message; we note it
            record.fetch_error = repr(e)
            return
        record.fetch_status = response.status_code
        record.fetched_twiml = response.text
