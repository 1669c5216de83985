"""Rebuild the shipped real daily-life file from the real recordings (osdkit.data.realDailyLife).

    python buildRealDailyLife.py ../shared/data [--out data/real_daily_life.json.gz]
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
import argparse
from collections import Counter

from osdkit.cli import cliUtils
from osdkit.data import realDailyLife


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="folder holding wisdm_watch/ and adl_wrist/")
    parser.add_argument("--out", default="data/real_daily_life.json.gz", help="gzip'd OSDB JSON file to write")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    """Command line: build the events, write them, print what they hold."""
    args = get_args_parser().parse_args(argv)
    events = realDailyLife.build_events(args.data_dir)
    realDailyLife.write_events(args.out, events)
    people = {s: len({e["userId"] for e in events if e["dataSourceName"] == s}) for s in realDailyLife.SOURCES}
    hours = sum(len(e["datapoints"]) for e in events) * 5 / 3600
    print(f"{args.out}: {len(events)} events, {hours:.2f} h, people {people}, "
          f"activities {dict(Counter(e['subType'] for e in events))}")
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
