"""Command-line plumbing shared by the scripts: one-line errors, exit codes, signals, quiet libraries."""
import argparse
import logging
import math
import os
import signal
import sys
import traceback
import warnings
from pathlib import Path

from osdkit.data.osdbData import OsdbFileError
from osdkit.export.exportCore import ExportError, UsageError, first_line, parse_input_shape
from osdkit.io.fileUtils import STOP_SIGNALS, OutputError
from osdkit.training.configUtils import ConfigError

NAMES_ITS_FILE = (ExportError, OSError, ConfigError, OsdbFileError, OutputError)  # shown whole: they end with what is wrong


class CliParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line, 'error: ... (see PROG --help)', exit 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def check_output_path(path, flag):
    """Check, before any work, that `path` (given with `flag`) can be written: an existing, writable
    folder holds it and it is no folder itself; ExportError naming flag and path otherwise."""
    if path is None:
        return None
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise ExportError(f"{path}: {flag} names a folder, expected a file")
    if not folder.is_dir():
        raise ExportError(f"{path}: {flag} folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"{path}: {flag} folder {folder} is not writable")
    return path


def check_output_folder(path, flag):
    """`path` as a folder to write into (created later): ExportError when it is a file or cannot be made."""
    if path is None:
        return None
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path}: {flag} names a file, expected a folder")
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir():
        raise ExportError(f"{path}: {flag}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise ExportError(f"{path}: {flag}: {existing} is not writable")
    return path


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def finite_float(text):
    """argparse type: a finite number (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def percent(text):
    """argparse type: a number in 0..100."""
    value = finite_float(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentage in 0..100, got {text!r}")
    return value


def add_input_norm_arg(parser):
    parser.add_argument("--input-norm", choices=["meanMagnitude", "none"],
                        help="input normalisation of a checkpoint that has no config saying it (a bare "
                             "state_dict, a pickled module); never guessed, and refused when it "
                             "contradicts the checkpoint's config")


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
    parser.add_argument("--phone-timeout", help="seconds the phone check may take before the files are "
                                                "recorded 'not checked' (default: $OSD_PHONE_CHECK_TIMEOUT or 1800)")
    add_batch_args(parser)


def add_batch_args(parser):
    parser.add_argument("--jobs", type=positive_int, help="parallel conversions (default: number of cores)")
    parser.add_argument("--force", action="store_true",
                        help="replace existing outputs (else an existing output is refused before any work)")
    add_common_args(parser)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _on_signal(signum, frame):
    """SIGINT/SIGTERM: raise KeyboardInterrupt, so `finally` blocks clean up; a second one quits now."""
    if STOP_SIGNALS:
        os._exit(128 + signum)
    STOP_SIGNALS.append(signum)
    _raise_interrupt(signum, frame)


def quiet_libraries():
    """Hide third-party Python warnings and log records (torch, torchao, executorch) in CLI runs."""
    warnings.simplefilter("ignore")
    logging.disable(logging.ERROR)


def _exit_for(err):
    """(exit code, one-line message) for the exception that ended a CLI run."""
    if STOP_SIGNALS or isinstance(err, KeyboardInterrupt):
        signum = STOP_SIGNALS[0] if STOP_SIGNALS else signal.SIGINT
        return 128 + signum, f"interrupted by {signal.Signals(signum).name}; unfinished outputs discarded"
    if isinstance(err, (ExportError, ValueError, OSError, OutputError)):
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
        if STOP_SIGNALS:  # a library swallowed the signal's KeyboardInterrupt: still a stop
            _raise_interrupt(STOP_SIGNALS[0], None)
    except (KeyboardInterrupt, Exception) as err:
        if debug:
            traceback.print_exc()
        code, message = _exit_for(err)
    if message:
        print(f"error: {message}", file=sys.stderr)
    sys.exit(code or 0)
