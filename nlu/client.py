"""The dialogue (nlu/dialogue.py) served by Rasa over HTTP: the REST channel for the turn, then the tracker for what
NLU understood."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from foundation.redaction import PERSONAL_ID_ENTITY, without_identity_numbers
from nlu.dialogue import DialogueTurn, NluUnavailable, decision_from

log = logging.getLogger(__name__)


class RasaClient:
    """Async client for a Rasa server. Reuse one instance (it pools connections).

    With ``backup_urls`` (servers sharing one tracker and lock store), a request whose server refuses the
    connection goes to the next server, which then serves until it fails in turn. Only a refused connection moves
    on: a request that reached a server and timed out may have changed the conversation, and is a fault.
    """

    def __init__(self, base_url: str, timeout_s: float, backup_urls: list[str] | tuple[str, ...] = ()):
        self._servers = [httpx.AsyncClient(base_url=url, timeout=timeout_s) for url in (base_url, *backup_urls)]
        self._current = 0
        self.failovers = 0  # times a refused connection moved this client to another server (the gateway's metrics)

    async def aclose(self) -> None:
        for server in self._servers:
            await server.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(len(self._servers)):
            index = (self._current + attempt) % len(self._servers)
            server = self._servers[index]
            try:
                response = await server.request(method, path, **kwargs)
                response.raise_for_status()
                if index != self._current:
                    log.warning("Rasa at %s refused connections; now using %s", self._servers[self._current].base_url,
                                server.base_url)  # fmt: skip
                    self._current = index
                    self.failovers += 1
                return response.json()
            except httpx.ConnectError as e:
                if attempt == len(self._servers) - 1:
                    raise NluUnavailable(f"Rasa {path} failed: {e!r}") from e
            except (httpx.HTTPError, ValueError) as e:
                raise NluUnavailable(f"Rasa {path} failed: {e!r}") from e
        raise AssertionError("unreachable")

    async def _post(self, path: str, body: dict[str, Any], params: dict[str, str] | None = None) -> Any:
        return await self._request("POST", path, json=body, params=params)

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return await self._request("GET", path, params=params)

    async def is_ready(self) -> bool:
        """True once the server answers and has a model loaded."""
        try:
            status = await self._get("/status")
        except NluUnavailable:
            return False
        return bool(status.get("model_file"))

    async def start_call(self, sender_id: str, language: str = "en") -> list[str]:
        """Open the conversation with the intent that starts a call, in the call's ``language`` (the dialogue speaks
        it from then on: the `language` slot); returns what the assistant says first."""
        result = await self._post(
            f"/conversations/{sender_id}/trigger_intent",
            {"name": "call_start", "entities": {"language": language}},
            params={"include_events": "NONE", "output_channel": "collector"},
        )
        return [m["text"] for m in result.get("messages", []) if m.get("text")]

    async def parse(self, text: str) -> tuple[str, float]:
        """NLU only (no conversation changes): the intent of ``text`` and its confidence."""
        result = await self._post("/model/parse", {"text": without_identity_numbers(text)[0]})
        intent = result.get("intent") or {}
        return str(intent.get("name") or ""), float(intent.get("confidence") or 0.0)

    async def respond(self, text: str, sender_id: str, metadata: dict[str, Any]) -> DialogueTurn:
        """One caller turn through NLU and dialogue. Identity numbers, and the words that introduce them, are taken
        out of what the NLU reads (foundation.redaction.without_identity_numbers); that one was given is an entity."""
        started = time.perf_counter()
        heard, identities = without_identity_numbers(text)
        messages = await self._post(
            "/webhooks/rest/webhook", {"sender": sender_id, "message": heard, "metadata": metadata}
        )
        tracker = await self._get(f"/conversations/{sender_id}/tracker", params={"include_events": "NONE"})
        latest = tracker.get("latest_message") or {}
        intent = (latest.get("intent") or {}).get("name") or ""
        confidence = float((latest.get("intent") or {}).get("confidence") or 0.0)
        ranking = tuple((r["name"], float(r["confidence"])) for r in latest.get("intent_ranking") or [])
        entities = tuple(
            {k: e.get(k) for k in ("entity", "value", "start", "end", "confidence_entity") if k in e}
            for e in latest.get("entities") or []
        )
        if heard != text:  # the NLU did not see the number: its extractor could not name it
            entities += tuple({"entity": PERSONAL_ID_ENTITY, "value": kind} for kind in dict.fromkeys(identities))
        decision, details = decision_from(messages, intent)
        return DialogueTurn(
            text=text,
            intent=intent,
            confidence=confidence,
            intent_ranking=ranking,
            entities=entities,
            replies=tuple(m["text"] for m in messages if m.get("text")),
            decision=decision,
            details=details,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def take_back(self, sender_id: str) -> None:
        """Rasa's rewind: the tracker reverts the last user message and every event after it (the actions it ran,
        the slots they set), as if it had not been said."""
        await self._post(f"/conversations/{sender_id}/tracker/events", {"event": "rewind"},
                         params={"include_events": "NONE"})  # fmt: skip
