"""What a run shows people: result files (JSON, CSV), plots (PNG, written atomically) and text tables
of the figures that osdkit.app computes (metrics, appEvaluation)."""
import csv
import os

import numpy as np
from matplotlib.figure import Figure

from osdkit.app.appEvaluation import COLUMNS, STATE_NAMES, WINDOW_SUFFIX
from osdkit.app.metrics import FA_DAY_NOTE
from osdkit.app.osdAlgorithm import ALARM, DATAPOINT_S
from osdkit.io.fileUtils import atomic_output, save_figure_atomic, write_json_atomic


def _fmt(value, spec=".3f"):
    return "n/a" if value is None else format(value, spec)


def write_event_csv(path, event_rows):
    """Event rows to CSV; the dp columns run to the longest event, shorter events leave them empty."""
    fields = list(event_rows[0].keys()) if event_rows else []
    for row in event_rows:
        fields += [k for k in row if k not in fields]

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(event_rows)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp:
        write(str(tmp))


def _none_to_nan(values):
    return [np.nan if v is None else v for v in values]


def plot_threshold_sweep(sweep, path, threshold=None):
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    x = sweep["thresholds"]
    ax.plot(x, _none_to_nan(sweep["event_tpr"]), "o-", color="tab:green", label="event sensitivity")
    ax.plot(x, _none_to_nan(sweep["window_tpr"]), ".--", color="tab:olive", label="window TPR")
    ax.plot(x, _none_to_nan(sweep["window_fpr"]), ".--", color="tab:gray", label="window FPR")
    ax.set(xlabel="probability threshold", ylabel="rate", ylim=(-0.02, 1.02))
    ax2 = ax.twinx()
    ax2.plot(x, _none_to_nan(sweep["false_alarms_per_day"]), "s-", color="tab:red", label="false alarms / day")
    ax2.set_ylabel("false alarms per day of recorded events", color="tab:red")
    if threshold is not None:
        ax.axvline(threshold, color="k", lw=0.8, ls=":")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center left")
    ax.set_title(f"Threshold sweep\n({FA_DAY_NOTE})", fontsize=9)
    save_figure_atomic(fig, path)


def plot_confusion_matrix(results, path):
    counts = np.array([[results["tn"], results["fp"]], [results["fn"], results["tp"]]])
    fig = Figure(figsize=(4.5, 4))
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > counts.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["no alarm", "alarm"],
           yticklabels=["non-seizure", "seizure"], xlabel="model", ylabel="label",
           title=f"Windows, threshold {results['threshold']:g}")
    save_figure_atomic(fig, path)


def plot_latency_histogram(results, path):
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    latencies = results["latency_s"]
    if latencies:
        ax.hist(latencies, bins=max(5, min(30, len(latencies))), color="tab:blue")
    ax.set(xlabel="first window over the threshold, from seizure onset (s)", ylabel="seizure events",
           title=f"Single-window latency (no app escalation): {len(latencies)} detected, "
                 f"{results['latency_n_undetected']} undetected\n(of events with seizure times)")
    save_figure_atomic(fig, path)


def plot_training_history(history, path):
    """Per-epoch curves in panels: losses, accuracies, learning rate, other metrics (e.g. val sensitivity)."""
    def panel(key):
        k = key.lower()
        if "loss" in k:
            return "loss"
        if "acc" in k:
            return "accuracy"
        if k in ("lr", "learning_rate"):
            return "learning rate"
        return "validation metrics"
    groups = {}
    for key, values in history.items():
        if isinstance(values, (list, tuple, np.ndarray)) and len(values):
            groups.setdefault(panel(key), []).append(key)
    n_cols = min(2, max(1, len(groups)))
    n_rows = max(1, -(-len(groups) // n_cols))
    fig = Figure(figsize=(6 * n_cols, 4 * n_rows), layout="tight")
    for i, (name, keys) in enumerate(groups.items(), start=1):
        ax = fig.add_subplot(n_rows, n_cols, i)
        for key in keys:
            values = _none_to_nan(history[key])
            ax.plot(range(1, len(values) + 1), values, ".-", label=key)
        if name == "learning rate" and all(v is not None and v > 0 for v in history[keys[0]]):
            ax.set_yscale("log")
        ax.set(xlabel="epoch", title=name)
        ax.legend()
    save_figure_atomic(fig, path)


def write_results(out_dir, prefix, results, event_rows, sweep, history=None):
    """Write <prefix>testResults.json, event_results.csv, event_threshold_data.json and the PNG plots.
    Returns the list of paths written."""
    names = ["testResults.json", "event_results.csv", "event_threshold_data.json",
             "threshold_sweep.png", "confusion_matrix.png", "latency_histogram.png"]
    paths = [os.path.join(out_dir, prefix + name) for name in names]
    os.makedirs(out_dir, exist_ok=True)
    write_json_atomic(paths[0], results)
    write_event_csv(paths[1], event_rows)
    write_json_atomic(paths[2], sweep)
    plot_threshold_sweep(sweep, paths[3], results.get("threshold"))
    plot_confusion_matrix(results, paths[4])
    plot_latency_histogram(results, paths[5])
    if history:
        paths.append(os.path.join(out_dir, prefix + "training_history.png"))
        plot_training_history(history, paths[-1])
    return paths


def compare_variants(results_by_variant):
    """Text table of the headline metrics of several model variants (e.g. pt, pte, int8)."""
    columns = [("event_tpr", ".3f"), ("false_alarms_per_day", ".2f"), ("latency_median_s", ".1f"),
               ("tpr", ".3f"), ("fpr", ".3f"), ("auc", ".3f")]
    header = ["variant", "event_tpr", "FA/day", "1-window latency_med_s", "window_tpr", "window_fpr", "auc"]
    lines = [[str(name)] + [_fmt(res.get(key), spec) for key, spec in columns]
             for name, res in results_by_variant.items()]
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    table = [header, ["-" * w for w in widths]] + lines
    return "\n".join(["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                for i, (cell, w) in enumerate(zip(row, widths))) for row in table]
                     + ["single windows (p > threshold, no app escalation); FA/day: " + FA_DAY_NOTE])


def format_app_table(results):
    """ML / OSD / combined (/ OSD recorded) side by side, with the app's escalation, as text lines."""
    columns = [c for c in COLUMNS if f"{c}_event_tpr" in results]
    subtypes = sorted({s for c in columns for s in results[f"{c}_sensitivity_by_subtype"]})

    table = [["", *[COLUMNS[c] for c in columns]],
             ["event sensitivity", *[f"{_fmt(results[f'{c}_event_tpr'])} ({results[f'{c}_event_tp']}/"
                                     f"{results[f'{c}_event_tp'] + results[f'{c}_event_fn']})" for c in columns]],
             ["  tonic-clonic", *[_fmt(results[f"{c}_tonic_clonic_tpr"]) for c in columns]]]
    for s in subtypes:
        cells = [results[f"{c}_sensitivity_by_subtype"].get(s) for c in columns]
        table.append([f"  {s}", *[f"{e['detected']}/{e['n']}" if e else "-" for e in cells]])
    table += [["event FPR", *[_fmt(results[f"{c}_event_fpr"]) for c in columns]],
              ["false alarms/day*", *[f"{_fmt(results[f'{c}_false_alarms_per_day'], '.2f')} "
                                     f"({results[f'{c}_false_alarm_episodes']})" for c in columns]],
              ["median latency s", *[_fmt(results[f"{c}_latency_median_s"], ".1f") for c in columns]],
              ["window TPR", *[_fmt(results.get("tpr" + WINDOW_SUFFIX.get(c, ""))) if c != "osd_recorded"
                               else "-" for c in columns]],
              ["window FPR", *[_fmt(results.get("fpr" + WINDOW_SUFFIX.get(c, "")), ".4f") if c != "osd_recorded"
                               else "-" for c in columns]]]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    in_a_row = int(results["alarm_time_s"] // DATAPOINT_S) + 1
    lines = [f"App view (ALARM after {in_a_row} in-alarm datapoints in a row; "
             f"ML p > {results['threshold']:g}; combined = {results['combine_strategy']}; window TPR/FPR of "
             f"the ML model are single windows; * {FA_DAY_NOTE}):"]
    lines += ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
              for row in table]
    if "osd_recorded_dp_agreement" in results:
        lines.append(f"recomputed OSD state = recorded on {_fmt(results['osd_recorded_dp_agreement'])} of "
                     f"{results['osd_recorded_n_datapoints']} datapoints; same event outcome on "
                     f"{_fmt(results['osd_recorded_event_agreement'])} of {results['osd_recorded_n_events']} events")
    return "\n".join(lines)


def _convulsion_cells(conv):
    """Share of the 15-30 s convulsions of a convulsionMetrics summary in ALARM before their end, and the
    median latency from convulsion onset; "-" where there are none."""
    if not (conv or {}).get("n"):
        return ["-", "-"]
    return [f"{_fmt(conv['before_end_share'])} ({conv['n_before_end']}/{conv['n']})",
            _fmt(conv["latency_median_s"], ".1f")]


def app_view_rows(variants, alone="(ML)", combined="+ OSD"):
    """(label, results, column) as the app would run them: each model alone, the OSD algorithm (the same
    for all), each model combined with it; `alone` and `combined` end the models' labels."""
    first = next(iter(variants.values()))
    return ([(f"{name} {alone}", res, "ml") for name, res in variants.items()] + [("OSD algorithm", first, "osd")]
            + [(f"{name} {combined}", res, "combined") for name, res in variants.items()])


def compare_variants_app(results_by_variant):
    """Text table of several model variants (e.g. pt, pte) as the app would run them: each model alone,
    the OSD algorithm (the same for all), each model combined with it, and the recorded OSD state."""
    variants = {k: v for k, v in results_by_variant.items() if isinstance(v, dict) and "ml_event_tpr" in v}
    if not variants:
        return ""
    first = next(iter(variants.values()))
    rows = app_view_rows(variants)
    rows += [("OSD recorded", first, "osd_recorded")] if "osd_recorded_event_tpr" in first else []
    header = ["app view", "event_tpr", "tonic_clonic", "FA/day", "latency_med_s", "conv15-30s_before_end",
              "conv_latency_med_s"]
    keys = [("event_tpr", ".3f"), ("tonic_clonic_tpr", ".3f"), ("false_alarms_per_day", ".2f"),
            ("latency_median_s", ".1f")]
    table = [header] + [[name] + [_fmt(res.get(f"{c}_{k}"), spec) for k, spec in keys]
                        + _convulsion_cells((res.get("convulsion_15_30s") or {}).get(c)) for name, res, c in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in table[:1] + [["-" * w for w in widths]] + table[1:]]
    return "\n".join(lines + [f"FA/day: {FA_DAY_NOTE}"])


def compare_convulsion_check(results_by_variant):
    """The convulsion check (training.convulsionCheck) of each variant as the app would run it, one line
    per row of compare_variants_app: the share of 15-30 s convulsions in ALARM before they end."""
    checks = {k: v["convulsion_check"] for k, v in results_by_variant.items()
              if isinstance(v, dict) and v.get("convulsion_check")}
    if not checks:
        return ""
    first = next(iter(checks.values()))
    lines = [f"convulsion check ({first['users']} simulated people never trained on, {first['events']} "
             f"tonic-clonic seizures, {first['ml']['n']} with 15-30 s convulsions), ALARM before the convulsion ends:"]
    for label, check, column in app_view_rows(checks):
        share, median = _convulsion_cells(check[column])
        unit = "" if median in ("-", "n/a") else " s"
        lines.append(f"  {label:>14}: {share}, median latency from onset {median}{unit}")
    return "\n".join(lines + slower_watch_lines(results_by_variant))


def slower_watch_lines(results_by_variant):
    """The convulsion check as a slower watch gives it (nnTester.check_slower_watch): per way of filling its
    samples to 25 Hz, the 15-30 s convulsions in ALARM before they end, ML / OSD / combined."""
    found = [(k, v["convulsion_check_slower_watch"]) for k, v in results_by_variant.items()
             if isinstance(v, dict) and v.get("convulsion_check_slower_watch")]
    if not found:
        return []
    variant, slower = found[0]
    lines = [f"  the same seizures as a {slower['rate_hz']:g} Hz watch gives them ({variant}; ML / OSD algorithm / "
             "combined in ALARM before the convulsion ends):"]
    for how, s in slower.items():
        if how != "rate_hz":
            lines.append(f"  {'filled to 25 Hz ' + how:>30}: " + " / ".join(
                f"{s[c]['n_before_end']}" for c in ("ml", "osd", "combined")) + f" of {s['ml']['n']}")
    return lines


def plot_app_columns(results, path):
    """Bars per column: event sensitivity (all, tonic-clonic), false alarms per day, median latency."""
    columns = [c for c in COLUMNS if f"{c}_event_tpr" in results]
    x = np.arange(len(columns))
    fig = Figure(figsize=(12, 4), layout="tight")
    panels = [("event sensitivity", [("event_tpr", "all"), ("tonic_clonic_tpr", "tonic-clonic")]),
              ("false alarms per day of recorded events\n(not of daily life)", [("false_alarms_per_day", None)]),
              ("median latency from onset (s)", [("latency_median_s", None)])]
    for i, (title, keys) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, 3, i)
        width = 0.8 / len(keys)
        for j, (key, label) in enumerate(keys):
            values = [results.get(f"{c}_{key}") for c in columns]
            ax.bar(x + (j - (len(keys) - 1) / 2) * width, [np.nan if v is None else v for v in values], width,
                   label=label)
        ax.set(xticks=x, xticklabels=[COLUMNS[c] for c in columns], title=title)
        if label:
            ax.legend()
    fig.suptitle(f"With the app's escalation (ML p > {results['threshold']:g})")
    save_figure_atomic(fig, path)


def plot_app_timeline(path, title, times, seizure_times, models, osd, states):
    """One event through the app: p(seizure) per model {name: (p, threshold)} (top); OSD roiPower and
    roiRatio against their thresholds (osd: dict of per-datapoint arrays roi_power, roi_ratio,
    alarm_thresh, alarm_ratio_thresh; middle); app states {name: OK/WARNING/ALARM per datapoint} (bottom)."""
    times = np.asarray(times, dtype=float)
    fig = Figure(figsize=(10, 8), layout="tight")
    axes = [fig.add_subplot(3, 1, i) for i in (1, 2, 3)]
    for ax in axes:
        if seizure_times:
            ax.axvspan(seizure_times[0], seizure_times[1], color="tab:orange", alpha=0.2)
        ax.axvline(0.0, color="gray", lw=0.8, ls=":")
    for name, (p, threshold) in models.items():
        line, = axes[0].plot(times, p, ".-", label=f"{name} (threshold {threshold:g})")
        axes[0].axhline(threshold, color=line.get_color(), lw=0.8, ls="--")
    axes[0].set(ylabel="p(seizure)", ylim=(-0.02, 1.02), title=title)
    if models:
        axes[0].legend(loc="upper left", fontsize=8)
    axes[1].plot(times, osd["roi_power"], ".-", color="tab:purple", label="roiPower")
    axes[1].step(times, osd["alarm_thresh"], where="mid", color="tab:purple", ls="--", lw=0.8, label="alarmThresh")
    axes[1].set(ylabel="roiPower", yscale="symlog")
    ratio_ax = axes[1].twinx()
    ratio_ax.plot(times, osd["roi_ratio"], ".-", color="tab:green", label="roiRatio")
    ratio_ax.step(times, osd["alarm_ratio_thresh"], where="mid", color="tab:green", ls="--", lw=0.8,
                  label="alarmRatioThresh")
    ratio_ax.set_ylabel("roiRatio (10 x roi / spec)")
    axes[1].legend(handles=axes[1].get_legend_handles_labels()[0] + ratio_ax.get_legend_handles_labels()[0],
                   loc="upper left", fontsize=8)
    for k, (name, state) in enumerate(states.items()):
        state = np.asarray(state, dtype=float)
        state[(state < 0) | (state > ALARM)] = np.nan  # not recorded, or a manual alarm (5)
        axes[2].step(times, state + 0.06 * k, where="mid", label=name)
    axes[2].set(yticks=[0, 1, 2], yticklabels=STATE_NAMES, ylim=(-0.3, 2.6), xlabel="time from event (s)",
                ylabel="app state")
    axes[2].legend(loc="upper left", fontsize=8)
    save_figure_atomic(fig, path)


def write_app_results(out_dir, prefix, results, event_rows, sweep, history=None):
    """write_results plus <prefix>app_columns.png; returns the paths written."""
    paths = write_results(out_dir, prefix, results, event_rows, sweep, history)
    paths.append(os.path.join(out_dir, prefix + "app_columns.png"))
    plot_app_columns(results, paths[-1])
    return paths
