"""The docs are a contract (issue 19): every command line README.md, EXECUTORCH_EXPORT.md and
MODEL_HISTORY.md show for the converters, appReplay, the phone check and the trainer parses with that
script's own parser (each flag exists and takes the value shown), and each script's --help runs."""
import importlib
import re
import shlex

import pytest

from conftest import ROOT, run_main

SCRIPTS = ("convertPt2Pte", "convertPt2Ptl", "convertPtl2Pte", "appReplay", "phoneCheck", "phoneEnv", "nnTrainer")
DOCS = ("README.md", "EXECUTORCH_EXPORT.md", "MODEL_HISTORY.md")
PLACEHOLDERS = {"N": "2", "K": "2", "S": "60", "P": "50", "G": "5", "L": "750"}


def documented_commands():
    """(doc, script, argv) for every `script.py ...` in backticks or a code block of the docs."""
    found = []
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        spans = re.findall(r"`([^`\n]+)`", text) + re.findall(r"^(?:\.venv/bin/)?python3? (\S+\.py.*)$", text, re.M)
        for span in spans:
            match = re.match(rf"^(?:\.venv/bin/)?(?:python3? )?({'|'.join(SCRIPTS)})\.py(\s.*)?$", span.strip())
            if not match or not (match.group(2) or "").strip():  # a name in prose, not a command line
                continue
            line = (match.group(2) or "").split("#")[0].replace("\\|", "|")
            line = re.sub(r"\|[\w.-]+", "", line).replace("[", " ").replace("]", " ")  # first alternative
            argv = [PLACEHOLDERS.get(t, t) for t in shlex.split(line) if t not in ("...", "or")]
            found.append((doc, match.group(1), argv))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_every_script_and_flag_of_this_issue():
    shown = {script for _, script, _ in COMMANDS}
    assert shown == set(SCRIPTS)
    flags = {a for _, _, argv in COMMANDS for a in argv if a.startswith("--")}
    assert {"--force", "--input-norm", "--phone-timeout", "--timeout", "--threshold-pct", "--gate-pct",
            "--json", "--plots", "--max-plots", "--rerun", "--no-phone-check", "--index"} <= flags


@pytest.mark.parametrize("doc, script, argv", COMMANDS, ids=[f"{d}:{s} {' '.join(a)}" for d, s, a in COMMANDS])
def test_a_documented_command_line_parses(doc, script, argv):
    parser = importlib.import_module(script).get_args_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as stop:
        pytest.fail(f"{doc}: `{script}.py {' '.join(argv)}` does not parse (exit {stop.code})")


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_runs(script, capsys):
    code, out, err = run_main(importlib.import_module(script), "--help", capsys=capsys)
    assert code == 0 and out.startswith("usage:") and err == ""
