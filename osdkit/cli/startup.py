"""Imported first by the scripts at the repo root: Ctrl-C while the libraries load (torch takes seconds)
ends the command with one line and exit 130 instead of a traceback through the import machinery.
cliUtils.run_cli takes the signals over once the command starts; nothing was written before that.
Importing a script (tests, library users) installs nothing: only a script run as the program does."""
import os
import signal
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _interrupted_while_loading(signum, frame):
    sys.stderr.write(f"error: interrupted by {signal.Signals(signum).name} while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def _running_a_root_script():
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is not None and Path(main_file).resolve().parent == REPO_ROOT


if _running_a_root_script():
    signal.signal(signal.SIGINT, _interrupted_while_loading)
