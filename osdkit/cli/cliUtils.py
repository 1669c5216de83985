"""Command-line plumbing shared by the scripts: one-line errors, exit codes, signals, quiet libraries."""
import argparse
import logging
import os
import signal
import sys
import traceback
import warnings

from osdkit.data.osdbData import OsdbFileError
from osdkit.export.exportCore import ExportError, UsageError, first_line, parse_input_shape
from osdkit.training.configUtils import ConfigError

NAMES_ITS_FILE = (ExportError, OSError, ConfigError, OsdbFileError)  # shown whole: they end with what is wrong


class CliParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line, 'error: ... (see PROG --help)', exit 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_common_args(parser):
    parser.add_argument("--input-shape", type=parse_input_shape, default=None,
                        help="model input shape, e.g. 1,1,750 (default: from the file, else 1,1,750)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks, library warnings and runtime logs")


def add_pte_args(parser):
    """The options every .pte converter shares."""
    parser.add_argument("-o", "--output", help="output .pte (one input) or existing folder")
    parser.add_argument("--backend", choices=["xnnpack", "portable"], default="xnnpack",
                        help="xnnpack (default, fast) or portable kernels (no delegate, for debugging)")
    parser.add_argument("--quantize", choices=["none", "int8"], default="none",
                        help="int8: PT2E static quantisation for XNNPACK (needs --calibration)")
    parser.add_argument("--calibration", help="OSDB JSON file whose windows calibrate int8")
    parser.add_argument("--index", help="also add/replace the entry in this app index.json")
    parser.add_argument("--no-phone-check", action="store_true",
                        help="skip running the written files on the app's runtime on emulated phone "
                             "CPUs (phoneCheck.py; the entry then says 'not checked')")
    parser.add_argument("--allow-no-dotprod", action="store_true",
                        help="let ARMv8.0 phones load the model (min_cpu_features without asimddp); "
                             "refused unless the emulated ARMv8.0 cortex-a53 ran the file correctly")
    parser.add_argument("--phone-cache", help="phone environment cache (default: $OSD_PHONE_CHECK_CACHE "
                                              "or ~/.cache/osd-phone-check)")
    add_batch_args(parser)


def add_batch_args(parser):
    parser.add_argument("--jobs", type=int, help="parallel conversions (default: number of cores)")
    add_common_args(parser)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


_INTERRUPTS = []  # signals received while run_cli runs


def _on_signal(signum, frame):
    """SIGINT/SIGTERM: raise KeyboardInterrupt, so `finally` blocks clean up; a second one quits now."""
    if _INTERRUPTS:
        os._exit(128 + signum)
    _INTERRUPTS.append(signum)
    _raise_interrupt(signum, frame)


def quiet_libraries():
    """Hide third-party Python warnings and log records (torch, torchao, executorch) in CLI runs."""
    warnings.simplefilter("ignore")
    logging.disable(logging.ERROR)


def _exit_for(err):
    """(exit code, one-line message) for the exception that ended a CLI run."""
    if _INTERRUPTS or isinstance(err, KeyboardInterrupt):
        signum = _INTERRUPTS[0] if _INTERRUPTS else signal.SIGINT
        return 128 + signum, f"interrupted by {signal.Signals(signum).name}; unfinished outputs discarded"
    if isinstance(err, (ExportError, ValueError, OSError)):
        return (2 if isinstance(err, UsageError) else 1), error_line(err)
    return 1, f"unexpected {type(err).__name__}: {first_line(err)} (--debug shows the traceback)"


def error_line(err):
    """The line to show for `err`: its whole first line for our errors that name a file (a path can be
    long), else first_line (capped: a library's one-line message can be huge)."""
    lines = str(err).strip().splitlines() if isinstance(err, NAMES_ITS_FILE) else None
    return lines[0].strip() if lines else first_line(err)


def run_cli(main, argv=None):
    """Run `main(argv)`; turn any failure into one stderr line 'error: ...' and an exit code.

    Exit codes: 0 done; 1 an input, output or conversion failed; 2 usage error (argparse's, or a
    malformed value such as --input-shape); 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM).
    Without --debug, library warnings and log records are hidden; --debug shows tracebacks too.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    if not debug:
        quiet_libraries()
    code, message = 0, None
    try:
        code = main(argv)
    except (KeyboardInterrupt, Exception) as err:
        if debug:
            traceback.print_exc()
        code, message = _exit_for(err)
    if message:
        print(f"error: {message}", file=sys.stderr)
    sys.exit(code or 0)
