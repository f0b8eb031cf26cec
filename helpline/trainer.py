"""The NLU trainer's workflow through Rasa's own tools: validate, test on held-out data with quality gates, reload.

`helpline nlu validate` -> rasa data validate
`helpline nlu test`     -> rasa test nlu (held-out turns) + rasa test core (test stories), reports and gates
`helpline train --reload` -> train, then load the new model into the running server (calls go on)
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from foundation.routing_table import RoutingTable
from foundation.settings import REPO_ROOT, Settings
from helpline.training import (
    DOMAIN,
    NLU_CONFIG,
    TRAINING_DATA,
    TrainingError,
    model_path,
    rasa_environment,
    rasa_executable,
    rasa_model_command,
)
from nlu.caller_turns import SETS, CallerTurn, load_turns

TEST_STORIES = REPO_ROOT / "dialogues" / "tests" / "test_stories.yml"

# Quality gates: CI fails when the model falls below them on the frozen held-out turns (nlu/heldout/callers.yml).
# Floors under what the line measured on that set (when it was frozen, 2026-12-01: macro-F1 0.853, routing 0.838;
# 2026-12-04, DIET blended with the encoder probe: 0.938, 0.932), so a regression fails CI; the targets (0.97 both)
# are not reached yet. See README "Understanding callers".
GATE_MACRO_F1 = 0.90
GATE_ROUTING = 0.90


@dataclass
class QualityReport:
    examples: int
    intent_accuracy: float
    intent_macro_f1: float
    routing_examples: int
    routing_accuracy: float
    stories: int
    stories_failed: int
    worst_confusions: list[tuple[str, str, int]]
    report_dir: str
    gate_macro_f1: float = GATE_MACRO_F1
    gate_routing: float = GATE_ROUTING
    condition: str = "held-out text turns"

    @property
    def passed(self) -> bool:
        return (
            self.intent_macro_f1 >= self.gate_macro_f1
            and self.routing_accuracy >= self.gate_routing
            and self.stories_failed == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}

    def format(self) -> str:
        def mark(ok: bool) -> str:
            return "pass" if ok else "FAIL"

        lines = [
            f"{self.condition}: {self.examples}   intent accuracy {self.intent_accuracy:.3f}",
            f"  intent macro-F1     {self.intent_macro_f1:.3f}  (>= {self.gate_macro_f1})  "
            f"{mark(self.intent_macro_f1 >= self.gate_macro_f1)}",
            f"  routing decision    {self.routing_accuracy:.3f}  (>= {self.gate_routing}, "
            f"{self.routing_examples} topic/queue turns)  {mark(self.routing_accuracy >= self.gate_routing)}",
        ]
        if self.stories:
            lines.append(
                f"  test stories        {self.stories - self.stories_failed}/{self.stories} pass  "
                f"{mark(self.stories_failed == 0)}"
            )
        lines += [
            "  most confused (true -> predicted, count): "
            + (", ".join(f"{t} -> {p} ({n})" for t, p, n in self.worst_confusions) or "none"),
            f"reports, confusion matrix: {self.report_dir}",
        ]
        return "\n".join(lines)


def routing_decision(intent: str, routing: RoutingTable) -> str:
    """The decision the routing table makes for an intent (what the caller experiences), as the call store has it."""
    decision = routing.decision_for(intent)
    return str(decision) if decision is not None else "not-understood"


def _run_rasa(settings: Settings, command: list[str]) -> int:
    """A Rasa process of the Rasa venv, its output shown; its exit status."""
    return subprocess.run(
        command, cwd=REPO_ROOT, env=rasa_environment(settings), stdout=sys.stdout, stderr=sys.stderr
    ).returncode


def _rasa(settings: Settings, *args: str) -> int:
    print("$ rasa " + " ".join(args), flush=True)
    return _run_rasa(settings, [str(rasa_executable(settings)), *args])


def _rasa_with_model(settings: Settings, *commands: list[str]) -> int:
    """Rasa commands that load the trained model, in one process of the Rasa venv (nlu/rasa_cli.py, which shows
    each command line)."""
    argv = [arg for i, command in enumerate(commands) for arg in ([] if i == 0 else ["--then"]) + command]
    return _run_rasa(settings, [*rasa_model_command(settings), *argv])


def validate(settings: Settings) -> int:
    """rasa data validate over the domain, training data and stories; non-zero exit on errors."""
    return _rasa(
        settings,
        "data", "validate",
        "--domain", str(DOMAIN),
        "--data", *[str(p) for p in TRAINING_DATA],
        "--config", str(NLU_CONFIG),
    )  # fmt: skip
    # Not --fail-on-warnings: Rasa warns that call_start has no NLU examples (the gateway triggers it, no
    # caller says it) and that utter_out_of_scope is in no rule (action_out_of_scope says it).


def score_nlu(
    report_dir: Path, routing: RoutingTable, also: dict[str, tuple[str, ...]] | None = None
) -> tuple[int, float, float, int, float, list]:  # type: ignore[type-arg]
    """Read rasa test nlu's reports: accuracy, macro-F1, routing accuracy and the worst confusions. ``also`` maps a
    turn's text to the other intents that are a right reading of it (a turn with two requests)."""
    report = json.loads((report_dir / "intent_report.json").read_text())
    predictions = json.loads((report_dir / "intent_successes.json").read_text()) + json.loads(
        (report_dir / "intent_errors.json").read_text()
    )
    also = also or {}
    pairs = [(p["intent"], (p.get("intent_prediction") or {}).get("name") or "") for p in predictions]
    readings = [(p["intent"], *also.get(p["text"], ())) for p in predictions]
    routed = [
        (right, predicted)
        for right, (_, predicted) in zip(readings, pairs, strict=True)
        if right[0] in routing.answers or right[0] in routing.routes
    ]
    routing_ok = sum(
        routing_decision(predicted, routing) in {routing_decision(i, routing) for i in right}
        for right, predicted in routed
    )
    confusions: dict[tuple[str, str], int] = {}
    for t, p in pairs:
        if t != p:
            confusions[(t, p)] = confusions.get((t, p), 0) + 1
    worst = sorted(((t, p, n) for (t, p), n in confusions.items()), key=lambda x: -x[2])[:5]
    return (
        len(pairs),
        float(report["accuracy"]),
        float(report["macro avg"]["f1-score"]),
        len(routed),
        routing_ok / max(1, len(routed)),
        worst,
    )


def score_stories(report_dir: Path) -> tuple[int, int]:
    """(test stories, failed ones) from rasa test core's failed_test_stories.yml and the stories file."""
    stories = len(yaml.safe_load(TEST_STORIES.read_text())["stories"])
    failed_file = report_dir / "failed_test_stories.yml"
    failed = yaml.safe_load(failed_file.read_text()) if failed_file.exists() else None
    return stories, len((failed or {}).get("stories") or [])


def rasa_test_file(settings: Settings, turns: list[CallerTurn], name: str) -> Path:
    """Caller turns as a Rasa NLU test file (the labelled intent of each), for `rasa test nlu`."""
    from helpline.spoken_test import write_nlu_file

    return write_nlu_file(settings.data_dir / "reports" / f"{name}.yml", [(t.intent, t.text) for t in turns])


def test(settings: Settings, turns_set: str = "heldout") -> QualityReport:
    """Run Rasa's tests of the current model on a set of caller turns (``SETS``: the frozen held-out set unless
    another is named) and on the test stories; write reports; return the scores."""
    model = model_path(settings)
    if not model.exists():
        raise TrainingError("no model for the current training data: run `helpline train` first")
    turns_file = SETS[turns_set]
    turns = load_turns(turns_file)
    nlu_data = rasa_test_file(settings, turns, f"{turns_set}-turns")
    out = settings.data_dir / "reports" / model.name.removesuffix(".tar.gz")
    nlu_out, core_out = out / turns_set, out / "core"
    # One Rasa process for both (Rasa and TensorFlow start once).
    code = _rasa_with_model(
        settings,
        ["test", "nlu", "--nlu", str(nlu_data), "--model", str(model), "--out", str(nlu_out), "--successes"],
        ["test", "core", "--stories", str(TEST_STORIES), "--model", str(model), "--out", str(core_out)],
    )
    if code != 0:
        raise TrainingError(f"rasa test failed (exit {code})")
    stories, stories_failed = score_stories(core_out)
    also = {t.text: t.also for t in turns if t.also}
    examples, accuracy, macro_f1, routed, routing_accuracy, worst = score_nlu(nlu_out, RoutingTable.load(), also)
    report = QualityReport(
        examples, accuracy, macro_f1, routed, routing_accuracy, stories, stories_failed, worst, str(out)
    )
    report.condition = f"{turns_file.relative_to(REPO_ROOT)} typed turns"
    (out / f"summary-{turns_set}.json").write_text(json.dumps(report.as_dict(), indent=2))
    return report


def reload_model(settings: Settings, model: Path) -> None:
    """Load ``model`` into the running Rasa server. Conversations continue: trackers live in the SQL store."""
    try:
        response = httpx.put(f"{settings.rasa.url}/model", json={"model_file": str(model)}, timeout=300)
    except httpx.HTTPError as e:
        raise TrainingError(f"the Rasa server at {settings.rasa.url} did not answer: {e!r}") from e
    if response.status_code != 204:
        raise TrainingError(f"the Rasa server refused the model ({response.status_code}): {response.text[:300]}")
    status = httpx.get(f"{settings.rasa.url}/status", timeout=10).json()
    if Path(status.get("model_file", "")).name != model.name:
        raise TrainingError(f"the Rasa server reports model {status.get('model_file')}, not {model.name}")
