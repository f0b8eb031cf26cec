"""CI's quality gates on the held-out data, measured with Rasa's own `rasa test` through `helpline nlu test`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpline.trainer import GATE_MACRO_F1, GATE_ROUTING

pytestmark = pytest.mark.rasa


def test_quality_gates_hold_on_heldout_turns_and_test_stories():
    done = subprocess.run(
        [sys.executable, "-m", "helpline.cli", "nlu", "test", "--json"], capture_output=True, text=True, timeout=900
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(summary, indent=2))  # shown by pytest on failure: the numbers and the worst confusions
    assert summary["intent_macro_f1"] >= GATE_MACRO_F1
    assert summary["routing_accuracy"] >= GATE_ROUTING
    assert summary["stories"] >= 10 and summary["stories_failed"] == 0
    assert done.returncode == 0
    reports = Path(summary["report_dir"])
    assert (reports / "heldout" / "intent_confusion_matrix.png").stat().st_size > 10_000
    assert (reports / "heldout" / "intent_report.json").exists()
