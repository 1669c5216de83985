"""Build (once) the emulated-phone environment that phoneCheck.py uses (osdkit.phone.phoneEnv).

    python phoneEnv.py [--cache DIR]        # default ~/.cache/osd-phone-check, or $OSD_PHONE_CHECK_CACHE
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
from osdkit.cli import cliUtils
from osdkit.phone.phoneEnv import CACHE_VARIABLE, DEFAULT_CACHE, build


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help=f"cache folder (default: ${CACHE_VARIABLE} or {DEFAULT_CACHE})")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    build(args.cache)
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
