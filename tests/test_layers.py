"""The house's import rules (pyproject.toml [tool.importlinter], README "Architecture") hold for the code as it is."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_layers_import_one_way():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "Contracts: 4 kept, 0 broken." in report, report


def test_every_module_of_the_call_and_telephony_layers_is_placed_in_a_layer():
    """A new module outside the contract would be checked by nothing: each one of telephony/ is named in a layer."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["id"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.split(":")}
    modules = {f"telephony.{p.stem}" for p in (ROOT / "telephony").glob("*.py") if p.stem != "__init__"}
    assert modules - placed == set()
