"""osdkit: what the OSD toolkit's scripts at the repo root are built from, one sub-package per concern.

Dependencies flow one way: the root scripts -> cli -> training (the main job's steps) -> reports ->
the domain packages (data, sim, app, model, export, phone) -> io. No package imports one above it.

- training/: config, data preparation per fold, the trainer, alarm settings, exports of a trained
  model, tests of a run, torchrun helpers.
- reports/: plots and result files, the summary over folds, the model card.
- data/: reading OSDB files, event filters, splits, windows, readers of real recordings.
- sim/: the simulated OSDB database (sensor model, daily life, seizures).
- app/: what the OSD app does: the OSD algorithm, the escalation, the one app timeline and its
  metrics, the app's index entry.
- model/: DeepEpiCnn and reading checkpoints into it.
- export/: eager model -> verified .ptl / .pte, legacy .ptl reading.
- phone/: running .pte files on emulated phone CPUs with the app's runtime.
- io/: atomic file writes, JSON, figures.
- cli/: what the command lines share: one-line errors and exit codes, batch conversion, the .pte
  converters' steps.
"""
