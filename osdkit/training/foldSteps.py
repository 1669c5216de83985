"""The main job's steps of one fold, shared by runSequence's folds and nestedKfold's outer folds:
train (or load) -> alarm settings -> exports (or, with --test alone, the app entries rewritten) ->
tests; then the summary over the folds and a model card per fold.
"""
from osdkit.reports import modelCard, responseMap, runSummary
from osdkit.training import alarmSettings, convulsionCheck, distUtils, nnTester, trainer, trainExport


def train_or_load(run, args, folder, data):
    """trainer.train on every rank, or with --test alone the fold's checkpoint; the TrainedModel on
    rank 0, None on the others."""
    trained = trainer.train(run, data.train, data.val, folder) if args.train else None
    if not distUtils.is_main_process():
        return None
    return trained or trainer.load_trained(run, folder)


def evaluate_fold(run, args, folder, trained, data, name, alarm=None):
    """The steps after training, on rank 0: alarm settings (chosen on the validation split unless given)
    -> exports when training, else the app entries rewritten with these settings -> tests and real data;
    the fold's runSummary.FoldResult when testing, else None."""
    alarm = alarm or alarmSettings.choose_alarm_settings(run, trained.model, data, folder)
    if args.train:
        trainExport.export_trained(run, trained, data.train, alarm)
    else:
        for path in alarmSettings.rewrite_app_entries(trained.best_path, alarm):
            print(f"app index entry {path} (rewritten with these alarm settings)")
    if not args.test:
        return None
    results = nnTester.evaluate_trained(folder, trained, data, alarm, convulsionCheck.check_windows(run))
    seen = {str(e.user_id) for e in data.train_events + data.val_events}  # trained or tuned on
    real = nnTester.evaluate_real(args.evalReal or run.evaluation.realDataDir,
                                  trained.best_path.with_suffix(".pte"), alarm, folder, seen)
    response = write_response_map(trained, alarm)
    return runSummary.fold_result(name, folder, trained, data, alarm, results, real, response)


def write_response_map(trained, alarm):
    """responseMap beside the checkpoint (`<model>_response_map.json/png`): the .pte when there is one
    (what the app runs), else the eager model."""
    pte = trained.best_path.with_suffix(".pte")
    predict = nnTester.pte_predict_fn(pte) if pte.exists() else nnTester.eager_predict_fn(trained.model)
    stem = trained.best_path.with_name(trained.best_path.stem + "_response_map")
    return responseMap.write_response_map(stem, predict, trained.input_shape[-1], alarm["threshold_pct"] / 100,
                                          alarm["gate_pct"])


def write_reports(run, folder, folds, stem="kfold_summary", extra=None, notes=()):
    """The summary over the folds and a model card per fold."""
    runSummary.write_summary(folder, folds, stem, extra, notes)
    for fold in folds:
        print(f"model card {modelCard.write_model_card(run, fold)}")
