"""--nestedKfold N [--kfold K]: the inner folds choose what a researcher tunes, the outer folds test it.

Per outer fold (by user, or by event per splitByUser) its training events are split into K inner folds
(default N). Every candidate of `modelConfig.hyperParameterGrid` (e.g. {"modelConfig.bufferSeconds":
[20, 30]}; none listed: the config alone) is trained on each inner training set, its checkpoint chosen
on the inner validation split as usual, and scored on the inner held-out fold (`modelSelectionMetric`).
The candidate with the best mean inner score is chosen; its epochs are the median of its inner models'
chosen epochs; its alarm threshold and movement gate are chosen as alarmSettings does, on the pooled
inner held-out predictions (every outer training event predicted by the inner model that did not
train on it). Then one model is retrained with that choice on the whole outer training set and tested
on the outer fold, which took no part in any choice.

Layout: outerfold<o>/[candidate<c>/]fold<k>/ (inner models), outerfold<o>/ (the retrained model, its
exports, tests and inner_selection.json); nested_kfold_outer_summary.txt/.json (mean and spread per
metric over the outer folds, and the choices).
"""
import copy
import itertools
from dataclasses import replace

import numpy as np

from osdkit.data import osdbSplit
from osdkit.io import fileUtils
from osdkit.training import alarmSettings, configUtils, distUtils, foldSteps, nnTester, trainer, trainingData


def grid_candidates(run):
    """[(overrides, RunConfig)] for each combination of modelConfig.hyperParameterGrid ([({}, run)] when
    it lists none); each candidate is validated like a config (ConfigError naming the grid)."""
    grid = run.model.hyperParameterGrid
    keys = sorted(grid)
    candidates = []
    for values in itertools.product(*(grid[key] for key in keys)):
        overrides, raw = dict(zip(keys, values)), copy.deepcopy(run.raw)
        for path, value in overrides.items():
            section, key = path.split(".", 1)
            raw.setdefault(section, {})[key] = value
        source = f"{run.source}: modelConfig.hyperParameterGrid {overrides}"
        configUtils.validate(raw, source)
        candidates.append((overrides, configUtils.run_config(raw, run.source)))
    return candidates


def outer_splits(run, events, n_outer):
    """The outer folds' (training events, test events), checked up front like trainingData.fold_splits."""
    trainingData.check_fold_count(run, events, n_outer)
    splits = [(train + val, test) for train, val, test in
              osdbSplit.kfold_splits(events, n_outer, run.randomSeed, run.data.splitByUser)]
    for o, (train, test) in enumerate(splits):
        for name, part in (("training", train), ("test", test)):
            if {e.label for e in part} != {0, 1}:
                raise configUtils.ConfigError(f"{run.source}: outer fold {o}: the {name} events lack a class "
                                              "(fewer outer folds or more users)")
    return splits


def inner_dir(outer_dir, candidates, c, k):
    """outerfold<o>/fold<k>/, or outerfold<o>/candidate<c>/fold<k>/ when the grid lists candidates."""
    return (outer_dir if len(candidates) == 1 else outer_dir / f"candidate{c}") / f"fold{k}"


def inner_folds(args, outer_dir, candidates, inner, source):
    """Train (or load) every candidate on each of its inner folds; on rank 0 [[(TrainedModel,
    PreparedData)]] per candidate, None on the others."""
    found = []
    for c, ((_, cand), splits) in enumerate(zip(candidates, inner)):
        models = []
        for k, split in enumerate(splits):
            data = trainingData.prepare_split(cand, split, source, inner_dir(outer_dir, candidates, c, k))
            models.append((foldSteps.train_or_load(cand, args, inner_dir(outer_dir, candidates, c, k), data), data))
        found.append(models)
    return found if distUtils.is_main_process() else None


def inner_score(run, trained, data):
    """An inner model's `modelSelectionMetric` on its inner held-out fold (None: breaks the saveBest limits)."""
    return trainer.selection_score(trainer.evaluate(trained.model, data.test, "cpu"), run.model)


def pooled_predictions(run, models, inner_splits, outer_train):
    """(p, windows): every outer training window's ungated p(seizure) from the inner model whose held-out
    fold holds its event."""
    windows = trainingData.make_windows(run, outer_train)
    fold_of_event = {id(e): k for k, (_, _, test) in enumerate(inner_splits) for e in test}
    fold_of_window = np.array([fold_of_event[id(outer_train[i])] for i in windows.event_index], dtype=int)
    p = np.zeros(len(windows), dtype=np.float32)
    for k, (trained, _) in enumerate(models):
        idx = np.flatnonzero(fold_of_window == k)
        p[idx] = nnTester.predict_windows(nnTester.eager_predict_fn(trained.model), windows.select(idx))
    return p, windows


def choose(candidates, found, inner, outer_train, outer_dir):
    """The outer fold's choice on the inner folds: candidate, epochs and alarm settings (rank 0)."""
    table = []
    for (overrides, cand), models in zip(candidates, found):
        scores = [inner_score(cand, trained, data) for trained, data in models]
        valid = [s for s in scores if s is not None]
        mean = float(np.mean(valid)) if len(valid) == len(scores) else None
        table.append({"overrides": overrides, "inner_scores": scores, "mean_inner_score": mean,
                      "inner_epochs": [int(trained.info["epoch"]) for trained, _ in models]})
    best = max(range(len(table)), key=lambda c: (table[c]["mean_inner_score"] is not None,
                                                 table[c]["mean_inner_score"] or 0, -c))
    cand = candidates[best][1]
    epochs = max(1, int(round(float(np.median(table[best]["inner_epochs"])))))
    p, windows = pooled_predictions(cand, found[best], inner[best], outer_train)
    alarm = alarmSettings.choose_on_predictions(cand, p, windows, outer_train, outer_dir, "inner held-out folds")
    return {"candidate": best, "overrides": candidates[best][0], "epochs": epochs, "candidates": table,
            "alarm": {k: v for k, v in alarm.items() if k != "sweep"}}, alarm


def retrain_config(cand, epochs):
    """The chosen candidate trained for the chosen epochs (totalTrainingSteps not used)."""
    return replace(cand, model=replace(cand.model, epochs=epochs, totalTrainingSteps=0))


def run_nested(run, args, folder, events, source):
    """--nestedKfold N: see the module doc. Returns 0."""
    inner_k = args.kfold if args.kfold > 1 else args.nestedKfold
    candidates = grid_candidates(run)
    splits = outer_splits(run, events, args.nestedKfold)
    plan = []
    for o, (outer_train, outer_test) in enumerate(splits):
        inner = [trainingData.fold_splits(cand, outer_train, inner_k) for _, cand in candidates]
        plan.append((folder / f"outerfold{o}", outer_train, outer_test, inner))
    records = [(inner_dir(d, candidates, c, k), split) for d, _, _, inner in plan
               for c, splits in enumerate(inner) for k, split in enumerate(splits)]
    trainingData.record_splits(records + [(d, (tr, [], te)) for d, tr, te, _ in plan])
    outer_folds, choices = [], []
    for o, (outer_dir, outer_train, outer_test, inner) in enumerate(plan):
        found = inner_folds(args, outer_dir, candidates, inner, source)
        choice, alarm = distUtils.run_on_main(lambda: choose(candidates, found, inner, outer_train, outer_dir))
        final = retrain_config(candidates[choice["candidate"]][1], choice["epochs"])
        data = trainingData.prepare_split(final, (outer_train, [], outer_test), source, outer_dir)
        trained = foldSteps.train_or_load(final, args, outer_dir, data)
        if trained is None:
            continue
        choices.append({"outer_fold": o, **choice})
        fileUtils.write_json_atomic(outer_dir / "inner_selection.json", choices[-1])
        print(choice_line(choices[-1]))
        outer_folds.append(foldSteps.evaluate_fold(final, args, outer_dir, trained, data, f"outerfold{o}", alarm))
    if distUtils.is_main_process() and args.test:
        foldSteps.write_reports(run, folder, outer_folds, "nested_kfold_outer_summary",
                                {"inner_folds": inner_k, "selection": choices}, [choice_line(c) for c in choices])
    return 0


def choice_line(choice):
    alarm = choice["alarm"]
    return (f"outerfold{choice['outer_fold']}: chosen on the inner folds: {choice['overrides'] or 'the config'}, "
            f"{choice['epochs']} epochs, p > {alarm['threshold_pct'] / 100:.2f}, movement gate {alarm['gate_pct']} % "
            f"(inner scores {[c['mean_inner_score'] for c in choice['candidates']]})")
