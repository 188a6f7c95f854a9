"""experiments/forward/tune_backprop.py: usage errors; one real smoke run."""

import json

import pytest

from tests.experiments.scripts import load_script


@pytest.fixture(scope="module")
def tune():
    return load_script("forward/tune_backprop.py", "tune_backprop")


def test_a_negative_weight_decay_is_a_usage_error(tune, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tune.main(["--weight-decays", "0", "-1"])
    assert exit_info.value.code == 2
    assert "'-1' is not a number >= 0" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.slow
def test_two_values_two_epochs_select_on_validation(tune, shared_data, tmp_path):
    out = tmp_path / "wd.json"
    assert tune.main(["--root", str(shared_data), "--runs", str(tmp_path / "runs"),
                      "--datasets", "cora", "--layers", "2", "--weight-decays", "0", "1e-4",
                      "--set", "train.epochs=2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())["results"]["cora-L2"]
    values = result["valid_auroc"]
    assert set(values) == {"0", "1e-4"} and all(0 <= v <= 1 for v in values.values())
    assert result["selected"] == max(values, key=values.get)
    final = json.loads((tmp_path / "runs" / "wd1e-4" / "link_cora" / "gcn-L2-backprop_s0"
                        / "final.json").read_text())
    assert "train.weight_decay=1e-4" in final["command"] and final["epochs_run"] == 2
