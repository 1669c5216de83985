"""The main job's last step: the summary over folds (mean and spread per metric), printed and written."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osdkit.app.metrics import FA_DAY_NOTE
from osdkit.io import fileUtils
from osdkit.reports import realDataReport

APP_COLUMNS = {"ml": "ML", "osd": "OSD", "combined": "ML+OSD"}
APP_KEYS = ("event_tpr", "tonic_clonic_tpr", "false_alarms_per_day", "latency_median_s")
SUMMARY_KEYS = ("event_tpr", "false_alarms_per_day", "latency_median_s", "tpr", "fpr", "auc", "event_fpr",
                *(f"{c}_{k}" for c in APP_COLUMNS for k in APP_KEYS))


@dataclass
class FoldResult:
    """What one fold's steps returned, for the summary and the model card."""
    name: str  # "" for a single split, else e.g. "fold1" or "outerfold0"
    folder: Path  # where its test results were written
    trained: object  # trainer.TrainedModel
    data_summary: dict
    alarm: dict
    results: dict  # by variant (pt, pte, pte_int8) plus "parity"
    real: dict  # nnTester.evaluate_real's result, {} when there was none
    real_lines: list
    response: dict = None  # responseMap's result: what the model answers to synthetic shaking


def _values(folds, variant, key):
    return [v for v in (f.results[variant].get(key) for f in folds if variant in f.results) if v is not None]


def write_summary(folder, folds, stem="kfold_summary", extra=None, notes=()):
    """`<stem>.json/.txt` over `folds`: mean and (population) std per metric and variant, parity, real
    data per fold and, over several folds, pooled (`real_data_pooled`, realDataReport.format_pooled);
    `extra` is added to the JSON, `notes` (lines, e.g. nested k-fold's choices) to the text. Printed for
    the user; returns the summary."""
    variants = [v for v in (folds[0].results if folds else {}) if v != "parity"]
    summary = {"folds": [f.results for f in folds], "fold_names": [f.name for f in folds],
               "mean": {v: {k: _stat(np.mean, _values(folds, v, k)) for k in SUMMARY_KEYS} for v in variants},
               "std": {v: {k: _stat(np.std, _values(folds, v, k)) for k in SUMMARY_KEYS} for v in variants},
               "real_data": [f.real for f in folds], **(extra or {})}
    lines = ["", f"== {stem.replace('_', ' ')} ({len(folds)} fold{'s' if len(folds) != 1 else ''}) =="]
    spread = len(folds) > 1
    for variant in variants:
        m, s = summary["mean"][variant], summary["std"][variant]
        lines.append(f"{variant:>8}: event sensitivity {_fmt(m['event_tpr'], s['event_tpr'], spread)}, "
                     f"false alarms/day {_fmt(m['false_alarms_per_day'], s['false_alarms_per_day'], spread, '.2f')}, "
                     f"median latency {_fmt(m['latency_median_s'], s['latency_median_s'], spread, '.1f')} s, "
                     f"window TPR {_fmt(m['tpr'], s['tpr'], spread)}, FPR {_fmt(m['fpr'], s['fpr'], spread, '.4f')}, "
                     f"AUC {_fmt(m['auc'], s['auc'], spread)} (single windows, p > threshold)")
        lines.append(f"{'':>8}  as the app alerts (ALARM on the 3rd in-alarm datapoint in a row): " + "; ".join(
            f"{label} sensitivity {_fmt(m[f'{c}_event_tpr'], s[f'{c}_event_tpr'], spread)} "
            f"(tonic-clonic {_fmt(m[f'{c}_tonic_clonic_tpr'], s[f'{c}_tonic_clonic_tpr'], spread)}), "
            f"{_fmt(m[f'{c}_false_alarms_per_day'], s[f'{c}_false_alarms_per_day'], spread, '.2f')} false alarms/day, "
            f"latency {_fmt(m[f'{c}_latency_median_s'], s[f'{c}_latency_median_s'], spread, '.1f')} s"
            for c, label in APP_COLUMNS.items()))
    for fold in folds:
        prefix = f"{fold.name}: " if fold.name else ""
        if fold.results.get("parity"):
            lines.append(f"{prefix}parity: " + ", ".join(f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}"
                                                         for k, v in fold.results["parity"].items()))
        lines += [prefix + line for line in fold.real_lines]
    if len(folds) > 1 and all(f.real for f in folds):
        pooled_lines, summary["real_data_pooled"] = realDataReport.format_pooled([f.real for f in folds])
        lines += pooled_lines
    lines += list(notes) + [f"false alarms/day: {FA_DAY_NOTE}"]
    summary["text"] = lines
    fileUtils.write_json_atomic(Path(folder) / f"{stem}.json", summary)
    with fileUtils.atomic_output(Path(folder) / f"{stem}.txt") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


def fold_result(name, folder, trained, data, alarm, results, real, response=None):
    return FoldResult(name, Path(folder), trained, data.summary, alarm, results, real, realDataReport.format_real(real),
                      response)


def _stat(fn, values):
    return float(fn(values)) if values else None


def _fmt(mean, std, spread, spec=".3f"):
    if mean is None:
        return "n/a"
    return format(mean, spec) + (f" ± {format(std, spec)}" if spread else "")
