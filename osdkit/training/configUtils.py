"""nnConfig.json: load, merge `osdbCfg`, fill defaults, and validate every key before any work starts.

Field names are those of the earlier OSDB pipeline, so existing configs keep working. Keys this toolkit
does not use are reported by path (`*_desc` / `_comment*` keys are documentation and pass silently).
SCHEMA is the one source of defaults: `load_run_config` builds typed, frozen sections from it once
(`run.model.batchSize`, `run.data.step`, ...), and the modules read those, never the dict.
"""
import json
import math
import typing
from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path

from osdkit.data.osdbData import SAMPLE_RATE_HZ, SAMPLES_PER_DP

NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))

# path -> (types, default, check or None, message for a failed check)
SCHEMA = {
    "debug": (bool, False, None, ""),
    "randomSeed": (int, 42, lambda v: 0 <= v < 2 ** 32, "must be in 0..4294967295 (numpy's seed range)"),
    "osdbCfg": (str, None, None, ""),
    "osdbConfig.cacheDir": (str, "output/osdb", None, ""),
    "osdbConfig.osdbFiles": (list, ["osdb_simulated.json"], lambda v: v and all(isinstance(f, str) for f in v),
                             "must be a non-empty list of file names"),
    "osdbConfig.invalidEvents": (list, [], None, ""),
    "osdbConfig.dailyLifeFiles": (list, [], lambda v: all(isinstance(f, str) and f for f in v),
                                  "must be a list of file paths (relative to the working folder)"),
    "osdbConfig.simulate": (bool, False, None, ""),
    "osdbConfig.simulation.users": (int, 40, lambda v: v >= 4, "must be >= 4"),
    "osdbConfig.simulation.seizuresPerUser": (int, 3, lambda v: v >= 1, "must be >= 1"),
    "osdbConfig.simulation.ndaPerUser": (int, 12, lambda v: v >= 0, "must be >= 0"),
    "osdbConfig.simulation.falseAlarmsPerUser": (int, 3, lambda v: v >= 0, "must be >= 0"),
    "osdbConfig.simulation.quirkRate": (NUMBER, 0.05, lambda v: 0 <= v <= 1, "must be in 0..1"),
    "osdbConfig.simulation.seed": (int, 42, None, ""),
    "dataProcessing.window": (int, SAMPLES_PER_DP, lambda v: v == SAMPLES_PER_DP,
                              f"must be {SAMPLES_PER_DP} (samples per OSDB datapoint)"),
    "dataProcessing.step": (int, SAMPLES_PER_DP, lambda v: v > 0 and v % SAMPLES_PER_DP == 0,
                            f"must be a positive multiple of {SAMPLES_PER_DP}"),
    "dataProcessing.labelMode": (str, "seizureTimes", lambda v: v in ("seizureTimes", "event"),
                                 "must be 'seizureTimes' or 'event'"),
    "dataProcessing.minOverlapS": (NUMBER, 5.0, lambda v: v >= 0, "must be >= 0"),
    "dataProcessing.testProp": (NUMBER, 0.2, lambda v: 0 < v < 1, "must be between 0 and 1"),
    "dataProcessing.validationProp": (NUMBER, 0.2, lambda v: 0 < v < 1,
                                      "must be between 0 and 1 (share of non-test events)"),
    "dataProcessing.splitByUser": (bool, True, None, ""),
    "dataProcessing.testPropBySource": (dict, {}, lambda v: all(isinstance(x, NUMBER) and not isinstance(x, bool)
                                                                and 0 < x < 1 for x in v.values()),
                                        "must map data sources to test shares between 0 and 1"),
    "dataProcessing.noiseAugmentation": (bool, True, None, ""),
    "dataProcessing.noiseAugmentationFactor": (int, 3, lambda v: v >= 0, "must be >= 0"),
    "dataProcessing.noiseAugmentationValue": (NUMBER, 30.0, lambda v: v >= 0, "must be >= 0 (mg)"),
    "dataProcessing.noiseAugmentationNegatives": (bool, True, None, ""),
    "dataProcessing.phaseAugmentation": (bool, False, None, ""),
    "dataProcessing.phaseAugmentationSources": (list, [], lambda v: all(isinstance(x, str) for x in v),
                                                "must be a list of data source names"),
    "dataProcessing.phaseAugmentationStep": (int, 25, lambda v: 0 < v < 125, "must be in 1..124 samples"),
    "dataProcessing.oversample": (str, "none", lambda v: v in ("none", "random"), "must be 'none' or 'random'"),
    "dataProcessing.undersample": (str, "none", lambda v: v in ("none", "random"), "must be 'none' or 'random'"),
    "dataProcessing.accelStdThresholdPct": (NUMBER, 5.0, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.framework": (str, "pytorch", lambda v: v == "pytorch", "must be 'pytorch'"),
    "modelConfig.modelType": (str, "pytorch", lambda v: v == "pytorch", "must be 'pytorch'"),
    "modelConfig.modelFname": (str, "deepEpiCnnModel_pytorch", lambda v: v and "/" not in v,
                               "must be a plain file name"),
    "modelConfig.modelClass": (str, "deepEpiCnn.DeepEpiCnn", None, ""),
    "modelConfig.inputNormalisation": (str, "none", lambda v: v in ("none", "meanMagnitude"),
                                       "must be 'none' or 'meanMagnitude' (see deepEpiCnn.py)"),
    "modelConfig.sampleFreq": (int, int(SAMPLE_RATE_HZ), lambda v: v == SAMPLE_RATE_HZ,
                               f"must be {SAMPLE_RATE_HZ:g} (Hz, the watch's rate)"),
    "modelConfig.bufferSeconds": (int, 30, lambda v: v > 0 and v % 5 == 0, "must be a positive multiple of 5"),
    "modelConfig.epochs": (int, 8, lambda v: v >= 1, "must be >= 1"),
    "modelConfig.batchSize": (int, 256, lambda v: v >= 2, "must be >= 2"),
    "modelConfig.nLayers": (int, 14, lambda v: v == 14, "must be 14 (DeepEpiCnn)"),
    "modelConfig.dims": (int, 1, lambda v: v == 1, "must be 1"),
    "modelConfig.convDropout": (NUMBER, 0.0, lambda v: 0 <= v < 1, "must be in 0..1"),
    "modelConfig.denseDropout": (NUMBER, 0.25, lambda v: 0 <= v < 1, "must be in 0..1"),
    "modelConfig.useAdamW": (bool, True, None, ""),
    "modelConfig.adamwBeta1": (NUMBER, 0.9, lambda v: 0 <= v < 1, "must be in 0..1"),
    "modelConfig.adamwBeta2": (NUMBER, 0.999, lambda v: 0 <= v < 1, "must be in 0..1"),
    "modelConfig.weightDecay": (NUMBER, 1e-4, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.useLrSchedule": (bool, True, None, ""),
    "modelConfig.lrStart": (NUMBER, 1e-5, lambda v: v > 0, "must be > 0"),
    "modelConfig.lrPeak": (NUMBER, 2e-3, lambda v: v > 0, "must be > 0"),
    "modelConfig.lrMainEnd": (NUMBER, 5e-5, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.lrFactor": (NUMBER, 0.1, lambda v: 0 < v < 1, "must be in 0..1"),
    "modelConfig.lrPatience": (int, 5, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.lrMin": (NUMBER, 1e-7, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.warmupSteps": (int, 100, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.mainSteps": (int, 0, lambda v: v >= 0, "must be >= 0 (0: to the end of `epochs`)"),
    "modelConfig.cooldownSteps": (int, 100, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.totalTrainingSteps": (int, 0, lambda v: v >= 0, "must be >= 0 (0: `epochs` decide)"),
    "modelConfig.useBalancedBatches": (bool, True, None, ""),
    "modelConfig.earlyStoppingPatience": (int, 6, lambda v: v >= 1, "must be >= 1"),
    "modelConfig.modelSelectionMetric": (str, "youden", lambda v: v in (
        "val_loss", "min_fpr", "youden", "f1", "f_beta"),
        "must be one of val_loss, min_fpr, youden, f1, f_beta"),  # not the earlier dual_improvement
    "modelConfig.fBeta": (NUMBER, 2.0, lambda v: v > 0, "must be > 0"),
    "modelConfig.saveBestMinSensitivity": (NUMBER, 0.0, lambda v: 0 <= v <= 1, "must be in 0..1"),
    "modelConfig.saveBestMaxFpr": (OPTIONAL_NUMBER, None, lambda v: v is None or 0 <= v <= 1,
                                   "must be null or in 0..1"),
    "modelConfig.exportFormats": (list, ["pt", "ptl", "pte"], lambda v: set(v) <= {"pt", "ptl", "pte"} and "pt" in v,
                                  "must list 'pt' plus any of 'ptl', 'pte'"),
    "modelConfig.pteBackend": (str, "xnnpack", lambda v: v in ("xnnpack", "portable"), "must be xnnpack or portable"),
    "modelConfig.quantize": (str, "none", lambda v: v in ("none", "int8"), "must be 'none' or 'int8'"),
    "modelConfig.seizureProbabilityThresholdPct": (NUMBER, 50, lambda v: 0 < v < 100, "must be in 0..100"),
    "modelConfig.thresholdFromValidation": (bool, True, None, ""),
    "modelConfig.targetFalseAlarmsPerDay": (NUMBER, 1.0, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.minEventSensitivity": (NUMBER, 0.75, lambda v: 0 <= v <= 1, "must be in 0..1"),
    "modelConfig.falseAlarmsVsOsd": (NUMBER, 0.25, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.numWorkers": (int, 1, lambda v: v >= 0, "must be >= 0"),
    "modelConfig.hyperParameterGrid": (dict, {}, lambda v: all(
        k.split(".")[0] in ("modelConfig", "dataProcessing") and isinstance(x, list) and x for k, x in v.items()),
        "must map 'modelConfig.<key>' or 'dataProcessing.<key>' to a non-empty list (--nestedKfold tries each)"),
    "evaluation.realDataDir": ((str, type(None)), None, None, ""),
    "evaluation.convulsionCheckUsers": (int, 0, lambda v: v >= 0, "must be >= 0"),
}
SECTIONS = {"osdbConfig", "osdbConfig.simulation", "dataProcessing", "modelConfig", "eventFilters", "evaluation"}
FILTER_KEYS = {"includeUserIds", "excludeUserIds", "includeTypes", "excludeTypes", "includeSubTypes",
               "excludeSubTypes", "includeDataSources", "excludeDataSources", "includeText", "excludeText",
               "require3dData", "requireHrData", "requireO2SatData"}
# Sections and keys of the earlier pipeline that this toolkit accepts but does not use.
IGNORED = {"dataFileNames", "dataProcessing.features", "dataProcessing.simpleMagnitudeOnly",
           "dataProcessing.addFeatureHistoryLength", "dataProcessing.highPassFreq",
           "dataProcessing.highPassOrder", "dataProcessing.validateDatapoints", "dataProcessing.userAugmentation",
           "dataProcessing.worker_count", "dataProcessing.batch_size", "dataProcessing.stream_chunksize",
           "dataProcessing.stream_low_memory", "dataProcessing.stream_dtype_map", "dataProcessing.accSdThreshold",
           "dataProcessing.seizureTimeRange", "dataProcessing.splitTestTrainByEvent",
           "modelConfig.trainingVerbosity", "modelConfig.evalEverySteps", "modelConfig.saveBestOnBothImprovement",
           "modelConfig.saveBestOnFarReduction", "modelConfig.saveBestOnSensitivityTolerance",
           "modelConfig.classWeights"}


class ConfigError(ValueError):
    """A config problem; the message names the file and the key's path."""


def _is_doc_key(key):
    return key.endswith("_desc") or key.startswith("_comment") or key.startswith("_")


def _walk(obj, prefix="", source="config"):
    for key, value in obj.items():
        if _is_doc_key(key):
            continue
        path = f"{prefix}{key}"
        if path in SECTIONS and path != "eventFilters":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {path} must be an object {{...}}, got {value!r}")
            yield from _walk(value, path + ".", source)
        else:
            yield path, value


def validate(config, source="config"):
    """Check types, values and unknown keys; return a list of warnings (ignored keys); raise ConfigError."""
    warnings = []
    for path, value in _walk(config, "", source):
        if path in IGNORED or path.split(".")[0] in IGNORED:
            warnings.append(f"{source}: {path} is not used by this toolkit (ignored)")
            continue
        if path == "eventFilters":
            _check_filters(value, source)
            continue
        if path not in SCHEMA:
            raise ConfigError(f"{source}: unknown key {path}")
        types, _, check, message = SCHEMA[path]
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise ConfigError(f"{source}: {path} must be {_type_name(types)}, got {value!r}")
        if not isinstance(value, types):
            raise ConfigError(f"{source}: {path} must be {_type_name(types)}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{source}: {path} must be a finite number, got {value!r}")
        if check is not None and not check(value):
            raise ConfigError(f"{source}: {path} {message}, got {value!r}")
    return warnings


def _check_filters(filters, source):
    if not isinstance(filters, dict):
        raise ConfigError(f"{source}: eventFilters must be an object")
    for key, value in filters.items():
        if _is_doc_key(key):
            continue
        if key not in FILTER_KEYS:
            raise ConfigError(f"{source}: unknown key eventFilters.{key}")
        ok = isinstance(value, bool) if key.startswith("require") else isinstance(value, (list, type(None)))
        if not ok:
            kind = "true/false" if key.startswith("require") else "a list"
            raise ConfigError(f"{source}: eventFilters.{key} must be {kind}, got {value!r}")


def _type_name(types):
    names = {int: "an integer", float: "a number", bool: "true/false", str: "a string", list: "a list",
             dict: "an object",
             type(None): "null"}
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(dict.fromkeys(names[t] for t in types))


def get(config, path):
    """The value at dotted `path`, or the schema default."""
    node = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return SCHEMA[path][1]
        node = node[part]
    return node


def section(config, name):
    """Every key of section `name` (e.g. "modelConfig") with the config's value or the default."""
    return {key[len(name) + 1:]: get(config, key) for key in SCHEMA if key.startswith(name + ".")}


def _annotation(types):
    return typing.Union[types] if isinstance(types, tuple) else types


def _section_class(class_name, prefix, extra=()):
    """A frozen dataclass with one field per SCHEMA key directly under `prefix`, named as in the config."""
    keys = [key[len(prefix) + 1:] for key in SCHEMA if key.startswith(prefix + ".")]
    return make_dataclass(class_name, [(key, _annotation(SCHEMA[f"{prefix}.{key}"][0]))
                                       for key in keys if "." not in key] + list(extra), frozen=True)


SimulationConfig = _section_class("SimulationConfig", "osdbConfig.simulation")
OsdbConfig = _section_class("OsdbConfig", "osdbConfig", [("simulation", SimulationConfig)])
DataConfig = _section_class("DataConfig", "dataProcessing")
ModelConfig = _section_class("ModelConfig", "modelConfig")
EvaluationConfig = _section_class("EvaluationConfig", "evaluation")


@dataclass(frozen=True)
class RunConfig:
    """A validated config as typed sections; `raw` is the dict as read (saved into checkpoints)."""
    source: str
    randomSeed: int
    osdb: OsdbConfig
    data: DataConfig
    model: ModelConfig
    evaluation: EvaluationConfig
    eventFilters: dict
    raw: dict


def build_section(cls, config, prefix):
    """An instance of section class `cls` with the config's values, or SCHEMA's defaults."""
    values = {f.name: get(config, f"{prefix}.{f.name}") for f in fields(cls) if f"{prefix}.{f.name}" in SCHEMA}
    if cls is OsdbConfig:
        values["simulation"] = build_section(SimulationConfig, config, "osdbConfig.simulation")
    return cls(**values)


def run_config(config, source="config"):
    """The typed RunConfig of a validated config dict."""
    return RunConfig(source=source, randomSeed=get(config, "randomSeed"),
                     osdb=build_section(OsdbConfig, config, "osdbConfig"),
                     data=build_section(DataConfig, config, "dataProcessing"),
                     model=build_section(ModelConfig, config, "modelConfig"),
                     evaluation=build_section(EvaluationConfig, config, "evaluation"),
                     eventFilters=dict(config.get("eventFilters") or {}), raw=config)


def load_run_config(path):
    """load_config, then the typed sections: (RunConfig, warnings)."""
    config, warnings = load_config(path)
    return run_config(config, str(path)), warnings


def load_config(path):
    """Read, merge `osdbCfg` (a second file, as the earlier pipeline did), validate; return (config, warnings)."""
    path = Path(path)
    config = _read_json(path)
    if "osdbCfg" in config:
        if not isinstance(config["osdbCfg"], str) or not config["osdbCfg"]:
            raise ConfigError(f"{path}: osdbCfg must be the name of a second config file, got "
                              f"{json.dumps(config['osdbCfg'])}")
        extra_path = path.parent / str(config["osdbCfg"])
        extra = _read_json(extra_path)
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**value, **config[key]}
            else:
                config.setdefault(key, value)
    return config, _upgrade_earlier_values(config, str(path)) + validate(config, str(path))


def _upgrade_earlier_values(config, source):
    """Values that meant something else in the earlier pipeline, replaced with a note."""
    notes = []
    dp = config.get("dataProcessing")
    if isinstance(dp, dict) and dp.get("validationProp") in (0, 0.0, 1, 1.0):
        notes.append(f"{source}: dataProcessing.validationProp {dp['validationProp']} is the earlier pipeline's "
                     "on/off value (it validated on the test split); using 0.2 of the non-test events instead")
        dp["validationProp"] = 0.2
    return notes


def _read_json(path):
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: top level must be a JSON object")
    return config
