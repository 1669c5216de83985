"""Many files in one call: output names, a process pool over the cores, one line per file, a count.

Start-up (importing torch and ExecuTorch) is paid once per worker instead of once per file, and the
lowering of different files runs side by side. One bad file does not stop the others; it makes the
exit code 1.
"""
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from exportUtils import ExportError, first_line


def expand_sources(sources, suffixes):
    """Files as given, plus every file with one of `suffixes` inside a given folder (sorted)."""
    files = []
    for src in map(Path, sources):
        if not src.is_dir():
            files.append(src)
            continue
        found = sorted(p for p in src.iterdir() if p.suffix in suffixes and p.is_file())
        if not found:
            raise ExportError(f"{src}: is a directory holding no {'/'.join(suffixes)} files")
        files += found
    return files


def output_paths(sources, out, suffix):
    """Where each source's output goes: beside it, to the file `out` (one source) or into folder `out`."""
    if out is None:
        return [src.with_suffix(suffix) for src in sources]
    out = Path(out)
    if len(sources) == 1 and not out.is_dir() and not str(out).endswith(os.sep):
        return [out]
    if not out.is_dir():
        raise ExportError(f"{out}: output folder does not exist")
    names = [src.with_suffix(suffix).name for src in sources]
    if len(set(names)) != len(names):
        raise ExportError(f"{out}: two inputs would write the same output name")
    return [out / name for name in names]


def _run_task(task):
    """Run one conversion in a worker; never raise, return (ok, line, report)."""
    convert_one, src, dst, options = task
    start = time.perf_counter()
    try:
        report = convert_one(src, dst, options)
    except KeyboardInterrupt:
        return False, f"{src}: interrupted; no output written", None
    except (ExportError, ValueError, OSError) as err:
        message = first_line(err)
        return False, "error: " + (message if str(src) in message else f"{src}: {message}"), None
    report["seconds"] = round(time.perf_counter() - start, 2)
    return True, f"{src} -> {dst}: {report['summary']} ({report['seconds']} s)", report


def _worker_init():
    import torch
    torch.set_num_threads(1)


def convert_all(convert_one, sources, outputs, options, jobs=None, quiet=False):
    """Convert every source; print a line per file and a final count; return (exit code, reports)."""
    tasks = [(convert_one, src, dst, options) for src, dst in zip(sources, outputs)]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    if jobs == 1:
        results = map(_run_task, tasks)
    else:
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("forkserver"),
                                   initializer=_worker_init)
        results = pool.map(_run_task, tasks)
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
    finally:
        if jobs > 1:
            pool.shutdown(cancel_futures=True)
    failed = len(tasks) - len(reports)
    if len(tasks) > 1 and (failed or not quiet):
        print(f"{len(reports)} of {len(tasks)} converted, {failed} failed",
              file=sys.stderr if failed else sys.stdout)
    return (1 if failed else 0), reports
