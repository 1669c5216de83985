"""Many files in one call: output names, a process pool over the cores, one line per file, a count.

Start-up (importing torch and ExecuTorch) is paid once per worker instead of once per file, and the
lowering of different files runs side by side. One bad file does not stop the others: it prints one
'error: FILE: ...' line on stderr and makes the exit code 1; a run of several files ends with the
line 'N of M converted, K failed' (on stderr when K > 0). Ctrl-C or SIGTERM stops the whole run: the
workers get SIGTERM, remove their temp files and exit, and the KeyboardInterrupt reaches `run_cli`.
"""
import contextlib
import multiprocessing
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from osdkit.cli.cliUtils import error_line, quiet_libraries
from osdkit.export.exportCore import ExportError, native_stderr_to
from osdkit.io.fileUtils import STOP_SIGNALS, OutputError
from osdkit.model.checkpoints import RESUME_SUFFIX


def expand_sources(sources, suffixes, log=print):
    """Files as given, plus every file with one of `suffixes` inside a given folder (sorted); the
    trainer's `<name>_resume.pt` files in a folder are skipped with a note (they are training state)."""
    files = []
    for src in map(Path, sources):
        if not src.is_dir():
            files.append(src)
            continue
        found = sorted(p for p in src.iterdir() if p.suffix in suffixes and p.is_file())
        resume = [p for p in found if p.name.endswith(RESUME_SUFFIX)]
        if resume:
            log(f"note: {src}: skipped {len(resume)} training-state file(s) *{RESUME_SUFFIX} "
                f"({resume[0].name}{', ...' if len(resume) > 1 else ''}); convert the run's <name>.pt")
        found = [p for p in found if p not in resume]
        if not found:
            raise ExportError(f"{src}: is a directory holding no {'/'.join(sorted(suffixes))} files")
        files += found
    return files


def check_output_folder(path):
    """ExportError unless the folder that will hold output `path` exists and is writable."""
    folder = Path(path).parent
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{path}: output folder {folder} is not a folder")
    if not folder.is_dir():
        raise ExportError(f"{path}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"{path}: output folder {folder} is not writable")


def output_paths(sources, out, suffix, force=False, sidecar=None):
    """Where each source's output goes: beside it, to the file `out` (one source) or into folder `out`.

    Decided and checked before any model is loaded: output folders, two inputs that would write one
    output (also the same file named twice), an output that is an input, and an existing output (or
    its `sidecar` file, e.g. the app entry ".json") that only --force may replace."""
    if out is None:
        outputs = [src.with_suffix(suffix) for src in sources]
    elif len(sources) == 1 and not Path(out).is_dir() and not str(out).endswith(os.sep):
        outputs = [Path(out)]
    else:
        out = Path(out)
        if not out.is_dir():
            raise ExportError(f"{out}: output folder does not exist")
        outputs = [out / src.with_suffix(suffix).name for src in sources]
    seen = {}
    for src, path in zip(sources, outputs):
        key = os.path.realpath(path)
        if key in seen:
            raise ExportError(f"{path}: {seen[key]} and {src} would both write it (convert them into "
                              "different folders with -o)")
        seen[key] = src
    inputs = {os.path.realpath(src) for src in sources}
    for src, path in zip(sources, outputs):
        if out is not None or src.exists():  # a missing input is reported by its own conversion
            check_output_folder(path)
        if os.path.realpath(path) in inputs:
            raise ExportError(f"{path}: the output would overwrite an input")
        for target in [path] + ([path.with_suffix(sidecar)] if sidecar else []):
            if (target.exists() or target.is_symlink()) and not force:
                raise ExportError(f"{target}: exists; --force replaces it")
    return outputs


@contextlib.contextmanager
def library_output_hidden(debug=False):
    """Hide what torch / ExecuTorch print while a file converts (C++ writes to fd 2, pybind11 writes
    to sys.stderr): both go to a temp file that is dropped; --debug shows them."""
    if debug:
        yield
        return
    with tempfile.TemporaryFile("w+") as log, native_stderr_to(log), contextlib.redirect_stderr(log):
        yield


def _run_task(task):
    """Run one conversion; return (ok, line, report). Only KeyboardInterrupt/SystemExit escape."""
    convert_one, src, dst, options = task
    debug = getattr(options, "debug", False)
    start = time.perf_counter()
    try:
        with library_output_hidden(debug):
            report = convert_one(src, dst, options)
    except Exception as err:  # one bad file must not stop the others
        if debug:
            traceback.print_exc()
        message = error_line(err)
        if not isinstance(err, (ExportError, ValueError, OSError, OutputError)):
            message = f"unexpected {type(err).__name__}: {message}"
        return False, "error: " + (message if str(src) in message else f"{src}: {message}"), None
    report["seconds"], report["output"] = round(time.perf_counter() - start, 2), str(dst)
    return True, f"{src} -> {dst}: {report['summary']} ({report['seconds']} s)", report


def _worker_task(task):
    """_run_task in a pool worker. After a SIGTERM it runs no more tasks, but the worker lives on
    until the pool's normal shutdown, so multiprocessing's exit handlers run (no leaked semaphores)."""
    try:
        if not STOP_SIGNALS:
            return _run_task(task)
    except (SystemExit, KeyboardInterrupt):  # atomic_output refuses to commit after the SIGTERM
        pass
    return False, f"error: {task[1]}: stopped by SIGTERM; no output written", None


def _worker_exit(signum, frame):
    STOP_SIGNALS.append(signum)
    raise SystemExit(128 + signum)  # unwinds through atomic_output, which removes the temp file


def _worker_init(debug=False):
    """Pool worker: Ctrl-C is the parent's business; SIGTERM from the parent exits cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_exit)
    if not debug:
        quiet_libraries()
    import torch
    torch.set_num_threads(1)


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT while the pool starts its processes, so that they inherit 'ignore'."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminate_workers(pool):
    for process in list((pool._processes or {}).values()):  # no public API before Python 3.14
        process.terminate()


def convert_all(convert_one, sources, outputs, options, jobs=None, quiet=False):
    """Convert every source; print a line per file and a final count; return (exit code, reports)."""
    tasks = [(convert_one, src, dst, options) for src, dst in zip(sources, outputs)]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    pool = None
    if jobs == 1:
        results = map(_run_task, tasks)
    else:
        with _sigint_ignored():
            pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("forkserver"),
                                       initializer=_worker_init,
                                       initargs=(getattr(options, "debug", False),))
            results = pool.map(_worker_task, tasks)  # starts the workers
    reports = []
    try:
        for ok, line, report in results:
            if not ok:
                print(line, file=sys.stderr)
                continue
            reports.append(report)
            if not quiet:
                print(line)
                for note in report.get("notes", []):
                    print(f"  note: {note}")
    except BaseException:
        if pool:  # Ctrl-C, SIGTERM or a crashed worker: stop the others, they remove their temp files
            _terminate_workers(pool)
        raise
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    failed = len(tasks) - len(reports)
    if len(tasks) > 1 and (failed or not quiet):
        print(f"{len(reports)} of {len(tasks)} converted, {failed} failed",
              file=sys.stderr if failed else sys.stdout)
    return (1 if failed else 0), reports
