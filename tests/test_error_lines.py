"""Every error line names the file and the key (issue 19): config values that trained NaN weights or
failed deep inside numpy now stop the run before any work, naming the config file and the key."""
import json

import pytest

from osdkit.io import fileUtils
from osdkit.training import configUtils


@pytest.mark.parametrize("config, message", [
    ('{"modelConfig": {"lrPeak": Infinity}}', "modelConfig.lrPeak must be a finite number, got inf"),
    ('{"modelConfig": {"weightDecay": NaN}}', "modelConfig.weightDecay must be a finite number"),
    ('{"randomSeed": -1}', "randomSeed must be in 0..4294967295"),
    ('{"osdbCfg": null}', "osdbCfg must be the name of a second config file, got null"),
    ('{"modelConfig": []}', "modelConfig must be an object {...}, got []"),
    ('{"osdbConfig": {"simulation": 3}}', "osdbConfig.simulation must be an object")])
def test_bad_config_values_name_the_file_and_key(tmp_path, config, message):
    path = tmp_path / "c.json"
    path.write_text(config)
    with pytest.raises(configUtils.ConfigError) as err:
        configUtils.load_config(path)
    assert str(err.value) == f"{path}: {message}" or str(err.value).startswith(f"{path}: {message}")
    assert json.loads(json.dumps(str(err.value)))  # one plain line
    assert "\n" not in str(err.value)


def test_trainer_alone_trains_in_a_new_run_folder_per_call(tmp_path, capsys):
    """`nnTrainer.py` alone always wrote to output/trainer: a second call resumed the finished run and
    trained nothing, even after the config changed."""
    root = tmp_path / "trainer"
    assert fileUtils.numbered_folder(root) == root / "1"
    (root / "1" / "deepEpiCnnModel_pytorch_resume.pt").write_bytes(b"finished run")
    assert fileUtils.numbered_folder(root) == root / "2"
    assert fileUtils.numbered_folder(root, 1) == root / "1"
    with pytest.raises(fileUtils.OutputError, match="no such run to rerun"):
        fileUtils.numbered_folder(root, 7)
    assert sorted(p.name for p in root.iterdir()) == ["1", "2"]
