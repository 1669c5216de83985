"""Run .pte files on emulated phone CPUs with the app's ExecuTorch runtime (osdkit.phone.phoneCheck).

    python phoneCheck.py model.pte [more.pte ...] [--report phone_check.json] [--windows 32] [--build]
                         [--timeout S] [--allow-no-dotprod]

Per file and CPU (cortex-a53 ARMv8.0, cortex-a76 ARMv8.2): ok / wrong outputs / illegal instruction /
cannot load. Exit 0 only when every file is ok on every CPU. A file that gives no two finite logits
on x86 already gets one line naming it and "refused" in the report, and the other files are still
checked; a broken environment or one past --timeout (default $OSD_PHONE_CHECK_TIMEOUT or 1800 s) is
exit 1 with one line naming it.
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
import json
import sys

from osdkit.cli import cliUtils
from osdkit.export import exportCore
from osdkit.export.exportCore import ExportError
from osdkit.io import fileUtils
from osdkit.phone import phoneEnv
from osdkit.phone.phoneCheck import (CPUS, GUEST_TIMEOUT_S, TIMEOUT_VARIABLE, PhoneEnvironmentError, check_ptes,
                                     rebuild_hint, summary, timeout_s, update_entry)
from osdkit.sim import osdbSim


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help=".pte file(s)")
    parser.add_argument("--report", default="phone_check.json", help="JSON report (default: %(default)s)")
    parser.add_argument("--windows", type=int, default=osdbSim.REFERENCE_WINDOWS,
                        help="realistic windows per file (default: %(default)s)")
    parser.add_argument("--cache", help=f"environment cache (default: ${phoneEnv.CACHE_VARIABLE} or "
                                        f"{phoneEnv.DEFAULT_CACHE})")
    parser.add_argument("--build", action="store_true", help="build the environment first when missing")
    parser.add_argument("--timeout", help=f"seconds the emulated runs may take (default: ${TIMEOUT_VARIABLE} "
                                          f"or {GUEST_TIMEOUT_S})")
    parser.add_argument("--allow-no-dotprod", action="store_true",
                        help="drop asimddp from the entries' min_cpu_features (refused unless the "
                             "emulated ARMv8.0 cortex-a53 ran the file correctly)")
    parser.add_argument("--no-cpuinfo-fix", action="store_true",
                        help="diagnosis: run the 1.0.1 wheel as it is (wrong CPU features on ARMv8.0)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.windows < 1:
        raise exportCore.UsageError(f"--windows {args.windows}: needs at least 1 window")
    timeout = timeout_s(args.timeout)
    cliUtils.check_output_path(args.report, "--report")
    for pte in args.inputs:
        exportCore.check_file(pte)
    if args.build:
        phoneEnv.build(args.cache)
    reason = phoneEnv.missing_reason(args.cache)
    if reason:
        raise ExportError(f"phone check: {reason}")
    print(f"phone check: {len(args.inputs)} file(s) on emulated {', '.join(CPUS)} "
          "(about half a minute to start each emulated runtime)", flush=True)
    try:
        results = check_ptes(args.inputs, None, args.cache, cpuinfo_fix=not args.no_cpuinfo_fix, n_windows=args.windows,
                             timeout=timeout, obey_skip=False, keep_going=True)  # asked for: run it
    except PhoneEnvironmentError as err:
        raise ExportError(f"phone check: {err}; {rebuild_hint(args.cache)}") from None
    refused = [r["error"] for r in results.values() if "error" in r]
    if len(refused) == len(results):
        raise ExportError("; ".join(refused))
    for line in refused:
        print(f"error: {line}", file=sys.stderr)
    fileUtils.write_json_atomic(args.report, {"files": results, "environment": phoneEnv.manifest(args.cache)})
    for pte, result in results.items():
        print(f"{pte}: {summary(result)}")
        entry = None if args.no_cpuinfo_fix or "error" in result else update_entry(pte, result, args.allow_no_dotprod)
        if entry:
            print(f"  entry {entry}: min_cpu_features {json.loads(entry.read_text())['min_cpu_features']}")
    print(f"report: {args.report}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    cliUtils.run_cli(main)
