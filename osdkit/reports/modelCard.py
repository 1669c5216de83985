"""The model card: one Markdown page beside a run's .pte that a user reads before shipping the model."""
import json
import time
from pathlib import Path

import torch

from osdkit.data.osdbData import SAMPLE_RATE_HZ
from osdkit.export import exportCore
from osdkit.io import fileUtils
from osdkit.reports import plots, realDataReport, responseMap
from osdkit.sim import osdbSim


def measure_latency(pte_path, model, length, n=50):
    """ms per window, batch 1: the .pte through the ExecuTorch runtime and the eager model."""
    x = torch.from_numpy(osdbSim.reference_windows((1, 1, length), n=n, seed=3))
    method = exportCore.load_pte_method(str(pte_path))
    method.execute([x[:1]])
    start = time.perf_counter()
    for i in range(n):
        method.execute([x[i:i + 1]])
    pte_ms = (time.perf_counter() - start) * 1000 / n
    with torch.no_grad():
        model(x[:1])
        start = time.perf_counter()
        for i in range(n):
            model(x[i:i + 1])
    return pte_ms, (time.perf_counter() - start) * 1000 / n


def _row(name, res):
    def f(key, spec=".3f"):
        return "n/a" if res.get(key) is None else format(res[key], spec)
    return (f"| {name} | {f('event_tpr')} | {f('false_alarms_per_day', '.2f')} | {f('latency_median_s', '.1f')} | "
            f"{f('tpr')} | {f('fpr', '.4f')} | {f('auc')} |")


def architecture_text(model):
    """The model's layers as counted in it, e.g. "14 Conv1d blocks + 5-layer dense head"."""
    n_conv = sum(isinstance(m, torch.nn.Conv1d) for m in model.modules())
    n_dense = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    return f"{n_conv} Conv1d blocks + {n_dense}-layer dense head"


def _export_reports(best_path):
    report = Path(best_path).parent / "export_report.json"
    return list(json.loads(report.read_text()).values()) if report.exists() else []


def write_model_card(run, fold):
    """Write `<modelFname>_model_card.md` for one fold (runSummary.FoldResult) in its folder; return the path."""
    folder, trained = Path(fold.folder), fold.trained
    best_path, model, shape, info = trained.best_path, trained.model, trained.input_shape, trained.info
    data_summary, results = fold.data_summary, fold.results
    name = best_path.stem
    pte = best_path.with_suffix(".pte")
    n_params = sum(p.numel() for p in model.parameters())
    entry_path = pte.with_suffix(".json")
    entry = json.loads(entry_path.read_text()) if entry_path.exists() else {}
    pte_ms, eager_ms = measure_latency(pte, model, shape[-1]) if pte.exists() else (None, None)
    events = data_summary["events"]
    by_user = data_summary["split_by"] == "user"
    units = "users" if by_user else "events"
    lines = [
        f"# Model card: {name}", "",
        f"DeepEpiCnn (Spahr et al., Epilepsia 2025): {architecture_text(model)}, {n_params:,} parameters, "
        f"input float32 {tuple(shape)} = {shape[-1] / SAMPLE_RATE_HZ:g} s of acceleration magnitude in g at "
        f"{SAMPLE_RATE_HZ:g} Hz, output {model.fc_out.out_features} logits; the app alarms when softmax(logits)[1] > "
        f"{fold.alarm['threshold_pct'] / 100:.2f} and the newest 5 s move by at least "
        f"{fold.alarm['gate_pct']} % (std/mean) ({_alarm_origin(fold.alarm)}).",
        _input_norm_text(model),
        _checkpoint_text(run, info), "",
        "## Data", "",
        f"Provenance: **{data_summary['provenance']}** ({', '.join(Path(f).name for f in data_summary['files'])}). "
        f"Read {data_summary['read']['events_kept']} of {data_summary['read']['events_in']} events, "
        f"{data_summary['read']['datapoints_kept']} datapoints; skipped {data_summary['read']['skipped'] or 'none'}.",
        ("Splits are by user: no test user was seen in training or checkpoint selection." if by_user else
         "Splits are by event (splitByUser false): a test user's other events may have been seen in training."),
        *_real_people_text(data_summary),
        "", "| split | events by type/subtype | windows (seizure) |", "|---|---|---|"]
    for split in ("train", "val", "test"):
        counts = ", ".join(f"{k} {v}" for k, v in events[split].items())
        win = data_summary["windows"][split]
        lines.append(f"| {split} | {counts} | {win['n']} ({win['seizure']}) |")
    lines += ["", f"## Test results ({data_summary['provenance']} test {units})", "",
              "| model | event sensitivity | false alarms/day | median latency s | window TPR | window FPR | AUC |",
              "|---|---|---|---|---|---|---|"]
    lines += [_row(variant, res) for variant, res in results.items() if variant != "parity"]
    app_rows = _app_rows(results)
    if app_rows:
        lines += ["", "Single windows above: any window with p > threshold counts. What a user sees is below: the",
                  "app raises ALARM on the 3rd in-alarm 5 s datapoint in a row, and ORs the model with the OSD",
                  "spectral algorithm (app defaults, or the settings each event recorded).", "",
                  "| as the app alerts | event sensitivity | tonic-clonic | false alarms/day | median latency s "
                  "| 15-30 s convulsions: ALARM before their end (median s from convulsion onset) |",
                  "|---|---|---|---|---|---|"]
        lines += [_app_row(label, res, column) for label, res, column in app_rows]
        lines += _check_lines(app_rows)
    parity = results.get("parity", {})
    lines += ["", "## Parity, size, speed", "",
              f"- .pte vs eager .pt: max |logit difference| {parity.get('pte_vs_pt_max_abs_logit_diff', float('nan')):.2e}"
              f" on {parity.get('n_windows')} test windows; .ptl vs .pte "
              f"{parity.get('ptl_vs_pte_max_abs_logit_diff', float('nan')):.2e}."]
    for path in sorted(best_path.parent.glob(f"{name}*.pt*")):
        lines.append(f"- `{path.name}`: {path.stat().st_size / 1024:.0f} KiB, sha256 `{fileUtils.sha256_of(path)}`")
    lines += [f"- `{Path(r['path']).name}`: not written: {r['refused']}." for r in _export_reports(best_path)
              if "refused" in r]
    if pte_ms is not None:
        lines.append(f"- Latency on this PC (batch 1): .pte {pte_ms:.2f} ms/window, eager PyTorch {eager_ms:.2f} ms.")
    if entry:
        lines += [f"- App entry `{entry_path.name}`: min runtime {entry.get('min_runtime')}, exported with "
                  f"torch {entry['exporter']['torch']} / executorch {entry['exporter']['executorch']}, "
                  f"min_cpu_features {entry.get('min_cpu_features')}."]
        lines.append(f"- Phone check (the app's ExecuTorch runtime on emulated phone CPUs): "
                     f"{_phone_text(entry.get('phone_check'))}.")
    if fold.real_lines:
        lines += ["", "## Real recordings (held-out people only; the real seizure never trained or tuned on)", ""]
        lines += [f"  - {line.strip()}" if line.startswith(" ") else f"- {line}" for line in fold.real_lines]
    lines += _response_lines(fold.response)
    lines += ["", "## Known limits (measured on this run)", ""] + [f"- {line}" for line in _limits(fold)]
    plots = sorted(p.name for p in folder.glob("*.png"))
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    path = folder / f"{name}_model_card.md"
    with fileUtils.atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _limits(fold):
    """What the figures above cannot show, or show as weak: measured, per run."""
    simulated = "simulated" in str(fold.data_summary.get("provenance", ""))
    out = ["False alarms per day on the test split are counted over its recorded non-seizure events, not over "
           "days of a wearer's life."]
    for variant, res in fold.results.items():
        conv = ((res.get("convulsion_15_30s") or {}).get("ml") or {}) if variant != "parity" else {}
        if conv.get("n") and conv["before_end_share"] < 0.8:
            out.append(f"{variant}: only {conv['n_before_end']} of {conv['n']} test convulsions of 15-30 s reach ALARM "
                       "before they end (the target is 80 %).")
        check = ((res.get("convulsion_check") or {}).get("ml") or {}) if variant != "parity" else {}
        if check.get("n") and check["before_end_share"] < 0.8:
            out.append(f"{variant}: only {check['n_before_end']} of {check['n']} convulsions of 15-30 s in the "
                       "convulsion check reach ALARM before they end (the target is 80 %).")
    for waveform in responseMap.WAVEFORMS if fold.response else ():
        cells, ml, osd = responseMap.convulsion_band_counts(fold.response, waveform)
        if ml < osd:
            out.append(f"{responseMap.LABELS[waveform].capitalize()} at a real convulsion's rate and strength (the "
                       f"response map): the model alone reaches ALARM on {ml} of {cells} cells, the OSD algorithm on "
                       f"{osd}; the app ORs them, so where the model does not, the algorithm raises the ALARM.")
    for key, res in fold.real.items():
        if key in realDataReport.RECORDING_SOURCES:
            worse = [a for a, row in res["app_episodes_by_activity"].items()
                     if (row["ml"]["alarm_episodes_per_hour"] or 0) > (row["osd"]["alarm_episodes_per_hour"] or 0)]
            out.append(f"{key}: {res['app_hours']:.2f} h of held-out recordings, so one ALARM episode is "
                       f"{1 / res['app_hours']:.1f} per hour" if res["app_hours"] else f"{key}: no held-out recordings")
            if worse:
                out.append(f"{key}: the model raises more ALARM episodes per hour than the OSD algorithm on "
                           f"{', '.join(worse)}.")
            alarmed = realDataReport.people_the_model_alarms_on(res)
            if alarmed:
                counts = ", ".join(f"{person}: {row['ml']}" for person, row in alarmed.items())
                out.append(f"{key}: the model's ALARM episodes come from {len(alarmed)} of "
                           f"{len(res['app_episodes_by_person'])} held-out people ({counts}); other "
                           "people's recordings may bring more.")
            continue
        ml, osd = res["app"].get("ml", {}), res["app"].get("osd", {})
        if ml.get("latency_s") is None or (osd.get("latency_s") is not None and ml["latency_s"] > osd["latency_s"]):
            when = "never" if ml.get("latency_s") is None else f"{ml['latency_s']:.0f} s after onset"
            osd_when = "never" if osd.get("latency_s") is None else f"{osd['latency_s']:.0f} s"
            out.append(f"The real {res['sub_type']} event {res['event_id']}: the model reaches ALARM {when}, "
                       f"the OSD algorithm {osd_when}: the model alone is later here"
                       + (" (`python osdbSim.py --check-real` measures how far the simulated convulsions are from "
                          "its shaking)." if simulated else "."))
    return out


def _response_lines(response):
    """The response map's section (responseMap): what the model answers to synthetic shaking."""
    if not response:
        return []
    return ["", "## What the model answers to (synthetic shaking, `*_response_map.json/png`)", "",
            f"A watch at rest (1 g), then {response['bout_s']} s shaken along gravity by a regular oscillation, a "
            "train of clonic-like jerks or irregular shaking at 1-8 Hz and 0.05-0.7 g SD, run as the app runs "
            "(a datapoint every 5 s, ALARM on the 3rd in-alarm datapoint in a row), the model and the OSD algorithm "
            "each alone; a cell counts when at least half its bouts reach ALARM before the shaking ends. In the band "
            "and strength of real convulsions at the wrist:", ""] + [f"- {line}." for line in response["lines"]]


def _real_people_text(data_summary):
    """A line counting the real daily-life people ("wisdm-...", "adl-...") per split, when there are any."""
    users = data_summary.get("users") or {}
    counts = {split: {kind: sum(str(u).startswith(f"{kind}-") for u in users.get(split, ()))
                      for kind in ("wisdm", "adl")} for split in ("train", "val", "test")}
    if not any(n for c in counts.values() for n in c.values()):
        return []
    text = "; ".join(f"{split} {c['wisdm']} WISDM / {c['adl']} ADL" for split, c in counts.items())
    return [f"Real daily life (data/real_daily_life.json.gz, CC BY 4.0) is split by person: {text}. "
            "The real-data figures below are on the people in neither train nor validation."]


def _input_norm_text(model):
    """Which input normalisation the exported model carries, and why."""
    if model.input_norm == "meanMagnitude":
        return ("Input normalisation: each window is divided by its own mean magnitude inside the model, so "
                "the exported file does it too. Chosen over gain augmentation because real watches read "
                "0.6-1.8 g at rest and a model that sees raw g depends on that gain; divided by its mean, "
                "any gain gives the same p(seizure) whatever the weights (up to the sensor's quantisation and "
                "clipping), while the app still passes raw g.")
    return ("Input normalisation: none; the model sees g as the watch reports it, so its figures hold for "
            "watches that read about 1 g at rest (modelConfig.inputNormalisation meanMagnitude removes "
            "that dependence).")


def _app_rows(results):
    """(label, results, column) rows: each model alone, the OSD algorithm, each model with it."""
    variants = {k: v for k, v in results.items() if k != "parity" and "ml_event_tpr" in v}
    return plots.app_view_rows(variants, "(ML alone)", "+ OSD (the app)") if variants else []


def _check_lines(app_rows):
    """The convulsion check (convulsionCheck) as a table, when the run made one."""
    rows = [(label, res["convulsion_check"], column) for label, res, column in app_rows
            if res.get("convulsion_check")]
    if not rows:
        return []
    check = rows[0][1]
    lines = ["", f"Convulsion check: {check['users']} more simulated people, never trained on, with {check['events']} "
             f"tonic-clonic seizures ({check['ml']['n']} with 15-30 s convulsions), replayed the same way:", "",
             "| as the app alerts | 15-30 s convulsions: ALARM before their end | median s from convulsion onset |",
             "|---|---|---|"]
    for label, check, column in rows:
        s = check[column]
        share = "n/a" if s["before_end_share"] is None else f"{s['before_end_share']:.3f}"
        median = "n/a" if s["latency_median_s"] is None else f"{s['latency_median_s']:.1f}"
        lines.append(f"| {label} | {share} ({s['n_before_end']}/{s['n']}) | {median} |")
    slower = next((res["convulsion_check_slower_watch"] for _, res, _ in app_rows
                   if res.get("convulsion_check_slower_watch")), None)
    if slower:
        ways = [how for how in slower if how != "rate_hz"]
        counts = {c: " / ".join(str(slower[how][c]["n_before_end"]) for how in ways) for c in ("ml", "osd", "combined")}
        lines += ["", f"The same seizures as a {slower['rate_hz']:g} Hz watch gives them (its samples filled to 25 Hz: "
                  f"{' / '.join(ways)}), the .pte with the same alarm settings: the model alone "
                  f"{counts['ml']} of {slower[ways[0]]['ml']['n']} in ALARM before the convulsion ends, the OSD "
                  f"algorithm {counts['osd']}, the app (both) {counts['combined']}. The simulated watches all "
                  "sample at 25 Hz."]
    return lines


def _app_row(label, res, column):
    def f(key, spec=".3f"):
        value = res.get(f"{column}_{key}")
        return "n/a" if value is None else format(value, spec)
    conv = (res.get("convulsion_15_30s") or {}).get(column) or {}
    before = "n/a" if not conv.get("n") else (
        f"{conv['before_end_share']:.3f} ({conv['n_before_end']}/{conv['n']}; "
        f"{'n/a' if conv['latency_median_s'] is None else format(conv['latency_median_s'], '.1f')} s)")
    return (f"| {label} | {f('event_tpr')} | {f('tonic_clonic_tpr')} | {f('false_alarms_per_day', '.2f')} | "
            f"{f('latency_median_s', '.1f')} | {before} |")


def _phone_text(record):
    """The app entry's phone_check record as text."""
    if not record or record.get("status") != "checked":
        return f"not checked ({(record or {}).get('reason', 'no record')})"
    cpus = ", ".join(f"{cpu} {outcome}" for cpu, outcome in record["cpus"].items())
    diff = record.get("max_abs_diff")
    return (f"{cpus}; max |d logit| vs x86 {'-' if diff is None else f'{diff:.1e}'} on {record['n_windows']} "
            f"windows ({record['runtime']}, {record['emulator']})")


def _checkpoint_text(run, info):
    if info.get("sensitivity") is None:  # nested k-fold's retrain: no validation split
        text = (f"Checkpoint: the last of {info.get('epoch')} epochs on the whole outer training set (epochs "
                "chosen on the inner folds; no validation split).")
    else:
        text = (f"Checkpoint chosen at epoch {info.get('epoch')} on the validation split "
                f"(metric `{run.model.modelSelectionMetric}`; validation TPR "
                f"{info['sensitivity']:.3f}, FPR {info.get('far', float('nan')):.4f}).")
    return text + _machine_text(info.get("training_machine"), info.get("training_machines") or ())


def _machine_text(machine, machines=()):
    """Where the checkpoint was trained (and, for a run resumed elsewhere, where its earlier epochs were:
    `machines` in order, ending with `machine`); "" for checkpoints that do not say (the earlier pipeline's)."""
    if not machine:
        return ""
    earlier = machines[:-1]
    text = f" Trained on {_machine_words(machine)}"
    if earlier:
        text += f" (resumed there; earlier epochs on {'; '.join(_machine_words(m) for m in earlier)})"
    return (text + "; another CPU, kernel cap or thread count can give other weights from the same config and "
            "seed (README, \"Reproducing a run elsewhere\").")


def _machine_words(machine):
    caps = ", ".join(f"{name} {value}" for name, value in machine["kernel_caps"].items())
    return (f"{machine['cpu']} ({machine['device']}, {machine['processes']} process(es), {machine['threads']} "
            f"threads, ATen {machine['aten_kernels']} kernels; {caps}) with torch {machine['torch']}")


def _alarm_origin(alarm):
    if "val_event_tpr" not in alarm:
        return alarm["chosen_on"]
    osd = alarm.get("val_osd_false_alarms_per_day")
    in_time = (f", {alarm['val_convulsions_before_end']} of {alarm['val_n_convulsions']} convulsions alarmed "
               "before they end" if alarm.get("val_n_convulsions") else "")
    origin = alarm["chosen_on"]
    if origin == "validation split":
        origin = f"chosen on the validation split for <= {alarm['target_false_alarms_per_day']} false alarms/day"
    return (f"{origin}; validation event sensitivity {alarm['val_event_tpr']:.3f}{in_time}, "
            f"{alarm['val_false_alarms_per_day']:.2f} false alarms/day"
            + ("" if osd is None else f" (the OSD algorithm {osd:.2f}/day on the same events)"))
