"""Write a simulated Open Seizure Database JSON file (osdkit.sim).

    python osdbSim.py OUT.json [--users N] [--seizures N] [--nda N] [--false-alarms N] [--seed N] [--plot PNG]
    python osdbSim.py --check-real REAL_OSDB.json   # simulated convulsions vs a real seizure (a check only)
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
import argparse
import json
import time

from osdkit.cli import cliUtils
from osdkit.sim.osdbSim import plot_examples, simulate_database
from osdkit.sim.simCheck import check_real


def get_args_parser():
    parser = argparse.ArgumentParser(description="Write a simulated Open Seizure Database JSON file.")
    parser.add_argument("out", nargs="?", help="output JSON file")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--seizures", type=int, default=3, help="seizure events per user")
    parser.add_argument("--nda", type=int, default=6, help="normal daily activity events per user")
    parser.add_argument("--false-alarms", type=int, default=3, help="false alarm events per user")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quirk-rate", type=float, default=0.05, help="rate of real-file quirks")
    parser.add_argument("--plot", metavar="PNG", help="also draw example signals of every kind")
    parser.add_argument("--check-real", metavar="OSDB_JSON",
                        help="only print how far simulated tonic-clonic convulsions are from the seizure datapoints "
                             "of this real OSDB file (amplitude statistics, spectra; a check, never a tuning target)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    """Command line: write a simulated OSDB file (and the example plot) and print its summary."""
    args = get_args_parser().parse_args(argv)
    if args.check_real:
        print(json.dumps(check_real(args.check_real, seed=args.seed), indent=1))
        return 0
    if not args.out:
        raise ValueError("give the output JSON file (or --check-real OSDB_JSON)")
    if args.users < 1 or min(args.seizures, args.nda, args.false_alarms) < 0:
        raise ValueError("--users must be >= 1 and the event counts >= 0")
    start = time.perf_counter()
    summary = simulate_database(args.out, args.users, args.seizures, args.nda, args.false_alarms,
                                seed=args.seed, quirk_rate=args.quirk_rate, progress=True)
    print(json.dumps(summary, indent=1))
    print(f"written in {time.perf_counter() - start:.1f} s")
    if args.plot:
        plot_examples(args.plot, seed=args.seed)
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
