"""nnConfig.json: the earlier pipeline's deep config loads; defaults; section helper."""
import json

import pytest

from osdkit.training import configUtils

from conftest import ROOT

EARLIER_DEEP_CONFIG = {
    "debug": False, "randomSeed": 42,
    "osdbConfig": {"cacheDir": "/data/osdb", "osdbFiles": ["osdb_3min_allSeizures.json"], "invalidEvents": [1, 2]},
    "dataFileNames": {"allDataFileJson": "allData.json", "trainDataFileCsv": "trainData.csv"},
    "eventFilters": {"excludeSubTypes": ["Unknown"], "excludeDataSources": ["Phone"], "require3dData": False},
    "dataProcessing": {"window": 125, "step": 125, "features": ["acc_magnitude"], "simpleMagnitudeOnly": True,
                       "addFeatureHistoryLength": 0, "highPassFreq": None, "noiseAugmentation": True,
                       "noiseAugmentationFactor": 10, "noiseAugmentationValue": 30.0, "testProp": 0.2,
                       "validationProp": 1.0, "oversample": "none", "undersample": "none", "accSdThreshold": 5.0},
    "modelConfig": {"framework": "pytorch", "modelFname": "deepEpiCnnModel_pytorch",
                    "modelClass": "user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch",
                    "sampleFreq": 25, "bufferSeconds": 30, "epochs": 100, "batchSize": 512, "nLayers": 14,
                    "convDropout": 0.025, "denseDropout": 0.25, "lrFactor": 0.1, "lrPatience": 5, "lrStart": 1e-6,
                    "lrMin": 1e-7, "earlyStoppingPatience": 6, "trainingVerbosity": 1, "dims": 1,
                    "useLrSchedule": True, "useAdamW": True, "weightDecay": 1e-4, "lrPeak": 1e-4,
                    "warmupSteps": 2500, "mainSteps": 95000, "cooldownSteps": 2500, "totalTrainingSteps": 100000,
                    "evalEverySteps": 5000, "saveBestOnBothImprovement": True, "saveBestMaxFpr": 0.045,
                    "modelSelectionMetric": "min_fpr", "fBeta": 2.0, "useBalancedBatches": True,
                    "epochs_desc": "documentation keys pass"},
}


def test_earlier_deep_config_loads_with_notes(tmp_path):
    path = tmp_path / "nnConfig_deep_pytorch.json"
    path.write_text(json.dumps(EARLIER_DEEP_CONFIG))
    config, notes = configUtils.load_config(path)
    assert any("validationProp 1.0" in n for n in notes)
    assert any("dataFileNames is not used" in n for n in notes)
    assert any("modelConfig.evalEverySteps is not used" in n for n in notes)
    assert configUtils.get(config, "dataProcessing.validationProp") == 0.2
    model = configUtils.section(config, "modelConfig")
    assert model["batchSize"] == 512 and model["pteBackend"] == "xnnpack"  # value, default


def test_osdb_cfg_file_is_merged(tmp_path):
    (tmp_path / "osdb.json").write_text(json.dumps({"osdbConfig": {"cacheDir": "/elsewhere"}}))
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"osdbCfg": "osdb.json", "osdbConfig": {"osdbFiles": ["a.json"]}}))
    config, _ = configUtils.load_config(path)
    assert configUtils.get(config, "osdbConfig.cacheDir") == "/elsewhere"
    assert configUtils.get(config, "osdbConfig.osdbFiles") == ["a.json"]


@pytest.mark.parametrize("name", ["nnConfig.json", "nnConfig_full.json"])
def test_shipped_configs_are_valid(name):
    config, notes = configUtils.load_config(ROOT / name)
    assert notes == []


def test_bad_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(configUtils.ConfigError, match="bad.json: not valid JSON"):
        configUtils.load_config(bad)
    with pytest.raises(configUtils.ConfigError, match="no such config file"):
        configUtils.load_config(tmp_path / "none.json")


def test_long_config_error_is_shown_whole(tmp_path):
    """A config or OSDB error names its file first and says what is wrong at the end: with a long path
    the CLI line used to be cut at 200 characters, losing the problem."""
    from osdkit.cli import cliUtils
    from osdkit.data import osdbData
    folder = tmp_path / ("deep" * 60)
    folder.mkdir()
    path = folder / "nnConfig.json"
    path.write_text(json.dumps({"modelConfig": {"modelSelectionMetric": "dual_improvement"}}))
    with pytest.raises(configUtils.ConfigError) as err:
        configUtils.load_config(path)
    line = cliUtils.error_line(err.value)
    assert line.startswith(str(path)) and "dual_improvement" in line and len(line) > 300
    assert cliUtils.error_line(osdbData.OsdbFileError(f"{path}: empty event list")).endswith("empty event list")
