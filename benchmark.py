"""Measured figures (not a test): model speed and size per format, batch conversion, data preparation.

    python benchmark.py [--out output/benchmark] [--quick]

Prints a table and writes benchmark.json + benchmark.png. Every ratio is measured side by side in this
one run on this machine:
- ms/window (batch 1) and file size: eager PyTorch, portable .pte, XNNPACK .pte, int8 XNNPACK .pte;
  int8 class agreement with fp32 on held-out simulated windows (never the calibration ones);
- seconds to convert N distinct checkpoints: N separate convertPt2Pte.py calls vs one batch call;
- data preparation (read + window) seconds and peak memory for simulated databases of 3 sizes;
- training windows per second of the default run's model, batch and input size (nnConfig.json) with
  torch's default threads, on an idle machine and beside one busy process, with passive OpenMP waiting
  (what cpuSettings.py sets for training) and with active waiting; what the default run's
  totalTrainingSteps come to in minutes at the idle passive speed, against its 15-minute budget; and the
  training step with the kernels capped at AVX2 (cpuSettings.AVX2_KERNELS) against this CPU's own.
"""
from osdkit.training import cpuSettings  # isort: skip  (first: sets OpenMP's waiting before torch loads)
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from osdkit.cli import cliUtils
from osdkit.export import exportCore
from osdkit.io import fileUtils
from osdkit.model import checkpoints, deepEpiCnn
from osdkit.sim import osdbSim
from osdkit.training import trainer

ROOT = Path(__file__).resolve().parent
TRAINED = ROOT / "tests" / "fixtures" / "legacy_deepepicnn.pt"
DEFAULT_CONFIG = ROOT / "nnConfig.json"  # the default run's config: the model, batch and input size trained


def time_per_window(run, x, repeats):
    run(x[:1])
    start = time.perf_counter()
    for i in range(repeats):
        run(x[i % len(x):i % len(x) + 1])
    return (time.perf_counter() - start) * 1000 / repeats


def model_formats(work, quick):
    """ms/window, size and int8 agreement for each format of the same trained weights."""
    model, shape, _ = checkpoints.model_from_checkpoint(TRAINED)
    held_out = torch.from_numpy(osdbSim.reference_windows(shape, n=200, seed=11))
    db = work / "calibration.json"
    osdbSim.simulate_database(db, n_users=6, seed=5)
    calibration = exportCore.calibration_windows(db, shape)
    rows = {}
    with torch.no_grad():
        rows["eager"] = {"ms": time_per_window(model, held_out, 200), "bytes": TRAINED.stat().st_size}
    for name, backend, quant in (("portable .pte", "portable", None), ("xnnpack .pte", "xnnpack", None),
                                 ("int8 .pte", "xnnpack", "int8")):
        path = work / f"{backend}_{quant}.pte"
        exportCore.export_pte(model, shape, path, backend, quant, calibration, inputs=held_out[:32])
        method = exportCore.load_pte_method(str(path))
        run = lambda x: method.execute([x])  # noqa: E731
        rows[name] = {"ms": time_per_window(run, held_out, 10 if backend == "portable" or quick else 300),
                      "bytes": path.stat().st_size}
    fp32 = exportCore.softmax(exportCore.run_pte(str(work / "xnnpack_None.pte"), held_out))
    int8 = exportCore.softmax(exportCore.run_pte(str(work / "xnnpack_int8.pte"), held_out))
    rows["int8 .pte"]["class_agreement_vs_fp32"] = float(np.mean(fp32.argmax(1) == int8.argmax(1)))
    rows["int8 .pte"]["max_prob_diff_vs_fp32"] = float(np.abs(fp32[:, 1] - int8[:, 1]).max())
    return rows


def batch_conversion(work, n):
    """Seconds for n distinct checkpoints: n separate processes vs one call."""
    src = work / "ckpts"
    src.mkdir()
    for i in range(n):
        torch.manual_seed(i)
        torch.save({"model_state_dict": deepEpiCnn.DeepEpiCnn().state_dict(),
                    "config": {"modelConfig": {"inputNormalisation": "none"}}}, src / f"m{i}.pt")
    script = str(ROOT / "convertPt2Pte.py")
    start = time.perf_counter()
    for i in range(n):
        subprocess.run([sys.executable, script, str(src / f"m{i}.pt"), "-o", str(work / f"loop{i}.pte"), "-q"],
                       check=True, capture_output=True)
    loop = time.perf_counter() - start
    (work / "batch").mkdir()
    start = time.perf_counter()
    subprocess.run([sys.executable, script, str(src), "-o", str(work / "batch"), "-q"], check=True,
                   capture_output=True)
    batch = time.perf_counter() - start
    return {"n": n, "loop_s": loop, "batch_s": batch, "ratio": batch / loop}


PREP_CHILD = """
import json, re, sys, time
sys.path.insert(0, sys.argv[2])
from osdkit.data import osdbData, windowing
t0 = time.perf_counter()
events, stats = osdbData.read_osdb_file(sys.argv[1])
t1 = time.perf_counter()
w = windowing.make_windows(events)
t2 = time.perf_counter()
print(json.dumps({"datapoints": stats.datapoints_kept, "windows": len(w), "read_s": t1 - t0,
                  "window_s": t2 - t1,  # VmHWM: this process's own peak (ru_maxrss inherits the parent's)
                  "peak_mb": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024}))
"""


def data_preparation(work, sizes):
    """Read + window seconds and peak RSS, each size in a fresh process."""
    rows = []
    for users in sizes:
        db = work / f"db_{users}.json"
        osdbSim.simulate_database(db, n_users=users, seizures_per_user=3, nda_per_user=4, false_alarms_per_user=3)
        out = subprocess.run([sys.executable, "-c", PREP_CHILD, str(db), str(ROOT)], check=True,
                             capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        db.unlink()
    return rows


TRAIN_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from osdkit.training import cpuSettings  # first: OpenMP's waiting before torch loads
import torch
from osdkit.sim import osdbSim
from osdkit.training import configUtils, trainer
cfg = configUtils.load_run_config(sys.argv[2])[0].model
model = trainer.build_model(cfg).train()
opt = trainer.build_optimizer(cfg, model)
x = torch.from_numpy(osdbSim.example_windows(cfg.batchSize, cfg.sampleFreq * cfg.bufferSeconds))
y = torch.randint(0, 2, (cfg.batchSize,))
with trainer.denormals_flushed():
    for step in range(12):
        if step == 2:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
s_per_step = (time.perf_counter() - start) / 10
print(json.dumps({"s_per_step": s_per_step, "windows_per_s": cfg.batchSize / s_per_step,
                  "threads": torch.get_num_threads(), "steps": cfg.totalTrainingSteps, "batch": cfg.batchSize,
                  "input_size": cfg.sampleFreq * cfg.bufferSeconds}))
"""


def default_run_line(t):
    """The default run's training minutes, from `training_speed`'s idle figures for its config."""
    minutes = t["s_per_step"] * t["steps"] / 60
    return (f"default run training: {t['steps']} steps of {t['batch']} windows of {t['input_size']} samples, "
            f"{t['s_per_step']:.3f} s/step = {minutes:.1f} min of training (the whole default run, "
            "simulation, export, phone check and tests included, must stay under 15 min on 2 cores)")


def avx2_kernels_line(avx2, native):
    """The training step with the README's reproducible kernels against this CPU's own (both idle, passive)."""
    caps = ", ".join(f"{name}={value}" for name, value in cpuSettings.AVX2_KERNELS.items())
    return (f"training with the kernels capped at AVX2 ({caps}, README \"Reproducing a run elsewhere\"): "
            f"{avx2['s_per_step']:.3f} s/step = "
            f"{avx2['s_per_step'] / native['s_per_step']:.2f}x this CPU's own kernels")


def training_speed(wait_policy, beside_busy, config=DEFAULT_CONFIG, kernels=None):
    """The training step of `config`'s model, batch and input size (torch's default threads) timed in a
    fresh process with OMP_WAIT_POLICY `wait_policy` (and the `kernels` variables, e.g. AVX2_KERNELS), alone
    or beside one process that keeps a core busy: {"s_per_step", "windows_per_s", "threads", "steps"
    (totalTrainingSteps), "batch", "input_size"}."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if beside_busy else None
    try:
        out = subprocess.run([sys.executable, "-c", TRAIN_CHILD, str(ROOT), str(config)], check=True,
                             capture_output=True, text=True,
                             env=dict(os.environ, OMP_WAIT_POLICY=wait_policy, **(kernels or {}))).stdout
    finally:
        if busy:
            busy.kill()
            busy.wait()
    return json.loads(out.strip().splitlines()[-1])


def training_speeds():
    """{policy: the idle `training_speed` figures with "idle" and "beside_busy" windows/s} for passive and
    active OpenMP waiting."""
    speeds = {}
    for policy in ("PASSIVE", "ACTIVE"):
        idle, busy = training_speed(policy, False), training_speed(policy, True)
        speeds[policy.lower()] = {**idle, "idle": idle["windows_per_s"], "beside_busy": busy["windows_per_s"]}
    return speeds


def training_lines(speeds):
    return [f"training ({speeds[p]['threads']} threads, batch {speeds[p]['batch']} of {speeds[p]['input_size']} "
            f"samples, OpenMP waiting {p}"
            f"{', the training default' if p == 'passive' else ''}): idle {speeds[p]['idle']:.0f} windows/s, "
            f"beside one busy process {speeds[p]['beside_busy']:.0f} = "
            f"{speeds[p]['beside_busy'] / speeds[p]['idle']:.2f}x (target >= 0.5x)" for p in speeds]


def plot(results, path):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(17, 4))
    ax1, ax2, ax3, ax4 = fig.subplots(1, 4)
    names = list(results["formats"])
    ax1.bar(names, [results["formats"][n]["ms"] for n in names])
    ax1.set_yscale("log")
    ax1.set_ylabel("ms per window (batch 1, log)")
    ax1.tick_params(axis="x", rotation=20)
    conv = results["conversion"]
    ax2.bar([f"{conv['n']} separate calls", "one batch call"], [conv["loop_s"], conv["batch_s"]])
    ax2.set_ylabel("seconds")
    prep = results["data_preparation"]
    dps = [r["datapoints"] / 1000 for r in prep]
    ax3.plot(dps, [r["read_s"] + r["window_s"] for r in prep], "o-", label="read + window s")
    ax3.plot(dps, [r["peak_mb"] / 100 for r in prep], "s--", label="peak memory (100 MB)")
    ax3.set_xlabel("thousand datapoints")
    ax3.legend()
    speeds = results["training_windows_per_s"]
    x = np.arange(len(speeds))
    ax4.bar(x - 0.2, [speeds[p]["idle"] for p in speeds], 0.4, label="idle")
    ax4.bar(x + 0.2, [speeds[p]["beside_busy"] for p in speeds], 0.4, label="beside one busy process")
    ax4.set_xticks(x, [f"OpenMP {p} waiting" for p in speeds])
    ax4.set_ylabel("training windows / s")
    ax4.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="output/benchmark")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"cpus": os.cpu_count(), **trainer.training_machine(torch.device("cpu"), 1)}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["formats"] = model_formats(work, args.quick)
        results["conversion"] = batch_conversion(work, 2 if args.quick else 6)
        results["data_preparation"] = data_preparation(work, [10, 20, 40] if args.quick else [100, 200, 400])
    results["training_windows_per_s"] = training_speeds()
    results["training_avx2_kernels"] = training_speed("PASSIVE", False, kernels=cpuSettings.AVX2_KERNELS)
    f = results["formats"]
    lines = ["format          ms/window    size KiB", *(
        f"{name:<14} {row['ms']:>10.2f} {row['bytes'] / 1024:>11.0f}" for name, row in f.items()),
        f"XNNPACK .pte latency / eager: {f['xnnpack .pte']['ms'] / f['eager']['ms']:.2f}x (target <= 0.5x)",
        f"int8 size / fp32 size: {f['int8 .pte']['bytes'] / f['xnnpack .pte']['bytes']:.2f}x (target <= 0.4x); "
        f"int8 latency / fp32: {f['int8 .pte']['ms'] / f['xnnpack .pte']['ms']:.2f}x; class agreement "
        f"{f['int8 .pte']['class_agreement_vs_fp32']:.3f} (target >= 0.99)",
        f"convert {results['conversion']['n']} checkpoints: {results['conversion']['loop_s']:.1f} s as separate "
        f"calls, {results['conversion']['batch_s']:.1f} s in one call = {results['conversion']['ratio']:.2f}x "
        "(target <= 0.5x)",
        *(f"data prep {r['datapoints']:>7} datapoints -> {r['windows']:>7} windows: read {r['read_s']:.1f} s, "
          f"window {r['window_s']:.2f} s, peak {r['peak_mb']:.0f} MB" for r in results["data_preparation"]),
        *training_lines(results["training_windows_per_s"]),
        default_run_line(results["training_windows_per_s"]["passive"]),
        avx2_kernels_line(results["training_avx2_kernels"], results["training_windows_per_s"]["passive"])]
    print("\n".join(lines))
    results["text"] = lines
    fileUtils.write_json_atomic(out / "benchmark.json", results)
    plot(results, out / "benchmark.png")
    print(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.png'}")
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
