"""Our entry point into Rasa's command line, for the commands that load a trained model (`run`, `test`): the model
loads in seconds (nlu/rasa_fast_load.py), and several commands can share one process, so Rasa and TensorFlow start
once for all of them: ``python -m nlu.rasa_cli test nlu ... --then test core ...``. Stops at the first command that
fails, with its exit status. Runs with the Rasa venv's Python (helpline/training.py: ``rasa_model_command``)."""

from __future__ import annotations

import sys

SEPARATOR = "--then"


def commands(argv: list[str]) -> list[list[str]]:
    """The command lines between separators; an empty one is an error."""
    out: list[list[str]] = [[]]
    for arg in argv:
        if arg == SEPARATOR:
            out.append([])
        else:
            out[-1].append(arg)
    if any(not command for command in out):
        raise SystemExit(f"usage: python -m nlu.rasa_cli COMMAND... [{SEPARATOR} COMMAND...]")
    return out


def main(argv: list[str]) -> int:
    from rasa.__main__ import main as rasa_main

    from nlu import rasa_fast_load

    rasa_fast_load.install()
    for command in commands(argv):
        print("$ rasa " + " ".join(command), flush=True)
        sys.argv = ["rasa", *command]
        try:
            rasa_main()
        except SystemExit as e:  # Rasa exits on errors (and some commands on success, with 0)
            if e.code not in (None, 0):
                return e.code if isinstance(e.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
