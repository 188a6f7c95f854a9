from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
import yaml

from graphlearn.config import (
    Config,
    ConfigKeyError,
    DataConfig,
    EvalConfig,
    ForwardSection,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    config_reference_markdown,
    dump_config,
    from_dict,
    load_config,
    parse_override,
    save_config,
    to_dict,
)
from graphlearn.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """\
task: recommendation
data:
  name: ml-100k
model:
  name: bpr_mf
  params: {dim: 64}
train:
  lr: 1e-3
  epochs: 5
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "bpr_mf.yaml"
    path.write_text(MINIMAL)
    return path


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------------------
# Loading, defaults, round trip
# ----------------------------------------------------------------------------------------


def test_load_fills_defaults_and_task_defaults(config_file):
    cfg = load_config(config_file)
    assert cfg.task == "recommendation"
    assert cfg.data == DataConfig(name="ml-100k")
    assert cfg.model == ModelConfig(name="bpr_mf", params={"dim": 64})
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)  # YAML 1.2 float
    assert cfg.train.epochs == 5
    assert cfg.train.loss == "bpr" and cfg.train.metric == "ndcg@10"
    assert cfg.eval == EvalConfig()
    assert cfg.eval.ks == (10, 20)


@pytest.mark.parametrize("task, loss, metric", [
    ("kg", "bce", "mrr"), ("link", "bce", "auroc"), ("recommendation", "bpr", "ndcg@10"),
])
def test_task_defaults(task, loss, metric):
    cfg = from_dict(Config, {"task": task, "data": {"name": "x"}, "model": {"name": "m"}})
    assert (cfg.train.loss, cfg.train.metric) == (loss, metric)
    explicit = from_dict(Config, {"task": task, "data": {"name": "x"}, "model": {"name": "m"},
                                  "train": {"loss": "softplus", "metric": "Hits@10"}})
    assert (explicit.train.loss, explicit.train.metric) == ("softplus", "hits@10")


@pytest.mark.parametrize("name, metric", [
    ("ogbl-ddi", "hits@20"), ("ddi", "hits@20"), ("OGBL_COLLAB", "hits@50"), ("ogbl-ppa", "hits@100"),
])
def test_ogbl_defaults_to_the_official_metric(name, metric):
    cfg = from_dict(Config, {"task": "ogbl", "data": {"name": name}, "model": {"name": "m"}})
    assert (cfg.train.loss, cfg.train.metric) == ("bce", metric)
    explicit = from_dict(Config, {"task": "ogbl", "data": {"name": "mine"}, "model": {"name": "m"},
                                  "train": {"metric": "hits@10"}})
    assert explicit.train.metric == "hits@10"
    message = error_of(from_dict, Config, {"task": "ogbl", "data": {"name": "mine"},
                                           "model": {"name": "m"}})
    assert "'train.metric' has no default for dataset 'mine' under task 'ogbl'" in message


def test_ogbl_metrics_agree_with_the_ogb_metrics_module():
    from graphlearn.config import OGBL_METRICS
    from graphlearn.metrics.ogb import OGB_METRICS

    hits = {name: metric for name, metric in OGB_METRICS.items() if metric.startswith("hits@")}
    assert OGBL_METRICS == hits


def test_clip_grad_norm_must_be_positive():
    assert "invalid 'clip_grad_norm': must be > 0, got 0.0" in error_of(
        TrainConfig, clip_grad_norm=0.0)
    assert TrainConfig().clip_grad_norm is None


def test_round_trip_yaml_config_yaml(config_file, tmp_path):
    cfg = load_config(config_file, ["eval.ks=[5,10]", "data.rating_threshold=4"])
    saved = tmp_path / "run" / "config.yaml"
    saved.parent.mkdir()
    save_config(cfg, saved)
    again = load_config(saved)
    assert again == cfg
    assert dump_config(again) == saved.read_text()
    assert yaml.safe_load(saved.read_text()) == to_dict(cfg)
    assert "ks: [5, 10]" in saved.read_text()


def test_to_dict_is_plain_data(config_file):
    raw = to_dict(load_config(config_file))
    assert raw["eval"]["ks"] == [10, 20] and isinstance(raw["eval"]["ks"], list)
    assert raw["data"]["ratios"] == [0.8, 0.1, 0.1]
    assert list(raw) == ["task", "data", "model", "forward", "train", "eval", "out"]
    yaml.safe_dump(raw)  # nothing a safe dumper cannot write


def test_int_accepted_for_float_and_literals_normalised():
    cfg = from_dict(Config, {"task": "KG", "data": {"name": "nations"}, "model": {"name": "m"},
                             "train": {"lr": 1, "optimizer": "AdamW", "device": "CPU"}})
    assert cfg.task == "kg"
    assert cfg.train.lr == 1.0 and type(cfg.train.lr) is float
    assert cfg.train.optimizer == "adamw" and cfg.train.device == "cpu"


# ----------------------------------------------------------------------------------------
# Unknown keys, missing keys
# ----------------------------------------------------------------------------------------


def test_unknown_nested_key_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, MINIMAL + "  num_negtive: 4\n")
    message = error_of(load_config, path)
    assert message.startswith(f"{path}:10: unknown key 'train.num_negtive'; "
                              f"did you mean 'num_negative'?")
    assert "(valid: epochs, batch_size" in message


def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, MINIMAL + "mdoel: {}\n")
    message = error_of(load_config, path)
    assert f"{path}:10: unknown key 'mdoel'; did you mean 'model'?" in message


def test_unknown_key_found_in_another_section(tmp_path):
    path = write(tmp_path, MINIMAL + "seed: 3\n")
    assert "unknown key 'seed'; did you mean 'train.seed'?" in error_of(load_config, path)
    message = error_of(from_dict, Config, {"task": "kg", "data": {"name": "x"},
                                           "model": {"name": "m"}, "train": {"ks": [1]}})
    assert "unknown key 'train.ks'; did you mean 'eval.ks'?" in message


def test_unknown_key_via_override(config_file):
    message = error_of(load_config, config_file, ["train.num_negtive=4"])
    assert message.startswith("override 'train.num_negtive=4': unknown key 'train.num_negtive'; "
                              "did you mean 'num_negative'?")
    message = error_of(load_config, config_file, ["trian.lr=0.1"])
    assert "unknown key 'trian'; did you mean 'train'?" in message


def test_error_has_dotted_key(config_file):
    with pytest.raises(ConfigKeyError) as info:
        load_config(config_file, ["eval.ks=[1,x]"])
    assert info.value.key == "eval.ks[1]"
    assert isinstance(info.value, ValueError)


def test_missing_required_keys(tmp_path):
    assert error_of(load_config, write(tmp_path, "task: kg\ndata: {root: x}\n")) \
        .endswith("missing required key 'model'")
    message = error_of(load_config, write(tmp_path, "task: kg\ndata: {root: x}\nmodel: {}\n"))
    assert message == f"{tmp_path / 'config.yaml'}:2: missing required key 'data.name'"
    message = error_of(from_dict, Config, {"data": {"name": "x"}})
    assert message == "missing required keys 'task', 'model'"


# ----------------------------------------------------------------------------------------
# Wrong types and values
# ----------------------------------------------------------------------------------------


def test_bool_is_not_int(tmp_path):
    path = write(tmp_path, MINIMAL.replace("epochs: 5", "epochs: true"))
    assert error_of(load_config, path) == \
        f"{path}:9: invalid 'train.epochs': expected int, got True (bool)"


def test_str_is_not_float(config_file):
    assert error_of(load_config, config_file, ["train.lr=fast"]) == \
        "override 'train.lr=fast': invalid 'train.lr': expected float, got 'fast' (str)"


def test_float_is_not_int():
    assert error_of(TrainConfig, epochs=1.5) == "invalid 'epochs': expected int, got 1.5 (float)"


def test_literal_lists_accepted_values_and_suggests(config_file):
    message = error_of(load_config, config_file, ["train.optimizer=adma"])
    assert "invalid 'train.optimizer': expected one of 'adam', 'adamw', 'sgd', 'adagrad', " \
           "got 'adma' (str); did you mean 'adam'?" in message
    message = error_of(load_config, config_file, ["task=graph"])
    assert "expected one of 'kg', 'link', 'node', 'ogbl', 'recommendation', got 'graph' (str)" \
        in message


def test_optional_literal_message(config_file):
    message = error_of(load_config, config_file, ["train.loss=bpe"])
    assert "expected one of 'bce', 'ce', 'bpr', 'softplus' or null, got 'bpe' (str); " \
           "did you mean 'bpr'?" in message


def test_list_element_type(tmp_path):
    path = write(tmp_path, MINIMAL + "eval:\n  ks: [5, ten]\n")
    assert error_of(load_config, path) == \
        f"{path}:11: invalid 'eval.ks[1]': expected int, got 'ten' (str)"
    path = write(tmp_path, MINIMAL + "eval:\n  ks: 5\n")
    assert "invalid 'eval.ks': expected list of int, got 5 (int)" in error_of(load_config, path)


def test_section_must_be_mapping(tmp_path):
    path = write(tmp_path, MINIMAL + "eval: [1]\n")
    assert "invalid 'eval': expected mapping, got [1] (list)" in error_of(load_config, path)


def test_params_keys_are_strings():
    message = error_of(ModelConfig, name="m", params={1: 2})
    assert "invalid key 1 in 'params': expected str" in message


@pytest.mark.parametrize("override, fragment", [
    ("train.epochs=0", "invalid 'train.epochs': must be >= 1, got 0"),
    ("train.lr=0", "invalid 'train.lr': must be > 0, got 0.0"),
    ("train.lr=.nan", "invalid 'train.lr': got NaN"),
    ("train.patience=0", "invalid 'train.patience': must be >= 1, got 0"),
    ("eval.ks=[]", "invalid 'eval.ks': needs at least one cut-off"),
    ("eval.ks=[0,5]", "invalid 'eval.ks[0]': must be >= 1, got 0"),
    ("data.ratios=[0.8,-0.1,0.3]", "invalid 'data.ratios[1]': must be >= 0, got -0.1"),
    ("data.ratios=[1]", "invalid 'data.ratios': expected [train, valid, test] or [train, test]"),
    ("train.metric=ndcg@50", "'train.metric' is 'ndcg@50' but 50 is not in eval.ks [10, 20]"),
])
def test_out_of_range_values(config_file, override, fragment):
    assert fragment in error_of(load_config, config_file, [override])


def test_option_of_another_task_is_an_error(config_file):
    message = error_of(load_config, config_file, ["data.val_ratio=0.2"])
    assert "'data.val_ratio' applies to task 'link' and 'node' only (task is 'recommendation')" \
        in message
    message = error_of(load_config, config_file, ["task=kg", "data.split=temporal"])
    assert "'data.split' applies to task 'recommendation' and 'node' only (task is 'kg')" \
        in message
    message = error_of(load_config, config_file, ["data.split=temporal", "data.ratios=[0.5,0.5]"])
    assert "'data.ratios' applies to split 'random' only" in message
    # Defaults of other tasks' options are fine: the same file serves as a kg config.
    assert load_config(config_file, ["task=kg"]).train.metric == "mrr"


def test_link_ratios_must_leave_training_edges():
    message = error_of(DataConfig, name="cora", val_ratio=0.5, test_ratio=0.5)
    assert "val_ratio + test_ratio must be < 1" in message


# ----------------------------------------------------------------------------------------
# Overrides
# ----------------------------------------------------------------------------------------


def test_overrides_nested_lists_none_and_params(config_file):
    cfg = load_config(config_file, [
        "train.lr=0.01", "model.name=lightgcn", "eval.ks=[5,10]", "data.root=null",
        "train.patience=null", "model.params.dim=128", "model.params.layers.n=3",
        "train.adversarial_temperature=0.5", "out=runs/x",
    ])
    assert cfg.train.lr == 0.01 and cfg.model.name == "lightgcn"
    assert cfg.eval.ks == (5, 10)
    assert cfg.data.root is None and cfg.train.patience is None
    assert cfg.model.params == {"dim": 128, "layers": {"n": 3}}
    assert cfg.train.adversarial_temperature == 0.5 and cfg.out == "runs/x"


def test_later_override_wins(config_file):
    assert load_config(config_file, ["train.lr=0.1", "train.lr=0.2"]).train.lr == 0.2


def test_override_without_equals(config_file):
    assert error_of(load_config, config_file, ["train.lr"]) == \
        "override 'train.lr' is not of the form key=value (e.g. train.lr=0.001)"
    assert "invalid key" in error_of(parse_override, "train..lr=1")


def test_override_values_are_yaml_never_code(config_file, tmp_path):
    assert parse_override("train.lr=__import__('os')") == ("train.lr", "__import__('os')")
    message = error_of(load_config, config_file, ["train.lr=__import__('os')"])
    assert "invalid 'train.lr': expected float, got \"__import__('os')\" (str)" in message
    marker = tmp_path / "executed"
    command = f"model.name=__import__('os').system('touch {marker}')"
    cfg = load_config(config_file, [command])
    assert cfg.model.name == f"__import__('os').system('touch {marker}')"
    assert not marker.exists()
    # Python-specific YAML tags are refused, not constructed.
    assert "cannot parse" in error_of(parse_override, "out=!!python/object/apply:os.getcwd []")


def test_override_unparsable_value(config_file):
    message = error_of(load_config, config_file, ["eval.ks=[5,"])
    assert message.startswith("override 'eval.ks=[5,': cannot parse '[5,' as YAML")


def test_override_below_a_leaf(config_file):
    message = error_of(load_config, config_file, ["train.lr.x=1"])
    assert "cannot set 'train.lr.x': 'train.lr' is a float, not a section" in message


def test_apply_overrides_does_not_mutate_input():
    raw = {"task": "kg", "train": {"lr": 0.1}}
    out = apply_overrides(raw, ["train.lr=0.2", "eval.ks=[1]"])
    assert raw == {"task": "kg", "train": {"lr": 0.1}}
    assert out == {"task": "kg", "train": {"lr": 0.2}, "eval": {"ks": [1]}}


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "task: kg\ndata:\n  name: nations\n model: {name: m}\n")
    message = error_of(load_config, path)
    assert re.match(rf"{re.escape(str(path))}:4: invalid YAML: ", message), message


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path, MINIMAL + "  lr: 0.1\n")
    assert error_of(load_config, path) == \
        f"{path}:10: duplicate key 'train.lr' (first at line 8)"


@pytest.mark.parametrize("text, fragment", [
    ("", "the config file is empty"),
    ("- 1\n- 2\n", "expected a mapping of keys to values at the top level, got list"),
])
def test_empty_or_non_mapping_file(tmp_path, text, fragment):
    assert fragment in error_of(load_config, write(tmp_path, text))


def test_missing_file(tmp_path):
    assert error_of(load_config, tmp_path / "nope.yaml").endswith("config file not found")


def test_python_tags_in_file_are_refused(tmp_path):
    path = write(tmp_path, "task: !!python/object/apply:os.getcwd []\n")
    assert "invalid YAML" in error_of(load_config, path)


def test_save_config_is_atomic(config_file, tmp_path, monkeypatch):
    cfg = load_config(config_file)
    target = tmp_path / "out" / "config.yaml"
    target.parent.mkdir()
    save_config(cfg, target)
    before = target.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_config(dataclasses.replace(cfg, out="elsewhere"), target)
    assert target.read_text() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["config.yaml"]


# ----------------------------------------------------------------------------------------
# Frozen objects
# ----------------------------------------------------------------------------------------


def test_configs_are_frozen(config_file):
    cfg = load_config(config_file)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 0.5
    changed = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=0.5))
    assert changed.train.lr == 0.5 and cfg.train.lr == 1e-3


def test_replace_is_validated(config_file):
    cfg = load_config(config_file)
    assert "invalid 'lr': expected float" in error_of(dataclasses.replace, cfg.train, lr="x")


def test_direct_construction_converts_nested_mappings():
    cfg = Config(task="link", data={"name": "cora"}, model={"name": "gae"})
    assert cfg.data == DataConfig(name="cora") and cfg.train.metric == "auroc"


# ----------------------------------------------------------------------------------------
# The generic loader on other dataclasses
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Inner:
    size: int
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: Inner
    pair: tuple[int, float] = (1, 2.0)
    maybe: Optional[Inner] = None  # noqa: UP045 (typing.Optional is supported too)
    mode: Literal["a", "b"] = "a"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def test_generic_from_dict():
    obj = from_dict(Outer, {"inner": {"size": 2, "tags": ["x"]}, "pair": [3, 4],
                            "maybe": {"size": 5}, "extra": {"k": [1, {"j": None}]}})
    assert obj == Outer(Inner(2, ["x"]), (3, 4.0), Inner(5), "a", {"k": [1, {"j": None}]})
    assert from_dict(Outer, {"inner": {"size": 1}, "maybe": None}).maybe is None


@pytest.mark.parametrize("raw, message", [
    ({"inner": {"size": 1}, "pair": [1]},
     "invalid 'pair': expected list [int, float], got [1] (list)"),
    ({"inner": {"size": 1}, "maybe": {"size": "2"}},
     "invalid 'maybe.size': expected int, got '2' (str)"),
    ({"inner": {"sise": 1}}, "unknown key 'inner.sise'; did you mean 'size'? (valid: size, tags)"),
    ({"inner": {}}, "missing required key 'inner.size'"),
    ({"inner": {"size": 1}, "mode": 1}, "invalid 'mode': expected one of 'a', 'b', got 1 (int)"),
    ({"inner": {"size": 1}, "maybe": 3}, "invalid 'maybe': expected mapping or null, got 3 (int)"),
])
def test_generic_from_dict_errors(raw, message):
    assert error_of(from_dict, Outer, raw) == message


def test_from_dict_path_prefixes_keys():
    assert error_of(from_dict, Inner, {"size": True}, "model.inner") == \
        "invalid 'model.inner.size': expected int, got True (bool)"


def test_from_dict_needs_a_dataclass():
    with pytest.raises(TypeError):
        from_dict(dict, {})


# ----------------------------------------------------------------------------------------
# The forward section (forward learning) and the node task
# ----------------------------------------------------------------------------------------

FORWARD = """\
task: link
data: {name: citeseer, val_ratio: 0.16, test_ratio: 0.2}
forward:
  variant: ff
train: {epochs: 3, patience: null}
"""


def test_forward_section_is_null_by_default_and_replaces_model(tmp_path, config_file):
    assert load_config(config_file).forward is None
    cfg = load_config(write(tmp_path, FORWARD))
    assert cfg.model is None and cfg.forward == ForwardSection(variant="ff")
    assert cfg.forward.backbone == "gcn" and cfg.forward.num_layers == 2
    assert cfg.train.metric == "auroc"
    assert load_config(write(tmp_path, dump_config(cfg), "saved.yaml")) == cfg
    sage = load_config(write(tmp_path, FORWARD), ["forward.backbone=sage",
                                                  "forward.num_layers=3",
                                                  "forward.schedule=layerwise"])
    assert (sage.forward.backbone, sage.forward.num_layers) == ("sage", 3)


@pytest.mark.parametrize("overrides, message", [
    (["forward.hiden_channels=8"],
     "unknown key 'forward.hiden_channels'; did you mean 'hidden_channels'?"),
    (["forward.num_layers=two"], "invalid 'forward.num_layers': expected int, got 'two'"),
    (["forward.num_layers=0"], "invalid 'forward.num_layers': must be >= 1, got 0"),
    (["forward.backbone=gin"],
     "invalid 'forward.backbone': expected one of 'gcn', 'sage', 'gat', 'gatv2', got 'gin'"),
    (["forward.variant=ff-lable"], "invalid 'forward.variant': expected one of"),
    (["forward.variant=ff-label"], "'ff-label' is not a variant of task 'link'"),
    (["forward.variant=ccl", "forward.schedule=layerwise"],
     ("'forward.schedule' 'layerwise' is implemented for link:ff, link:sf, node:ff-label, "
      "node:ff-virtual, node:sf only")),
    (["forward.ccl_temperature=0.5"],
     "'forward.ccl_temperature' applies to link:ccl, node:ccl only (this run is link:ff)"),
    (["model.name=gae"], "'model' does not apply to a forward-learning run"),
    (["train.batch_size=64"], "'train.batch_size' is not used by forward learning"),
    (["train.optimizer=sgd"], "'train.optimizer' is not used by forward learning"),
    (["train.clip_grad_norm=1.0"], "'train.clip_grad_norm' is not used by forward learning"),
])
def test_forward_section_errors(tmp_path, overrides, message):
    assert message in error_of(load_config, write(tmp_path, FORWARD), overrides)


def test_forward_needs_a_link_or_node_task(tmp_path):
    text = "task: kg\ndata: {name: x}\nforward: {variant: ff}\n"
    assert "forward learning is implemented for tasks link, node only" in error_of(
        load_config, write(tmp_path, text))


def test_model_is_required_without_forward(tmp_path):
    assert error_of(load_config, write(tmp_path, "task: link\ndata: {name: x}\n")) \
        .endswith("missing required key 'model'")
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        Config(task="link", data=DataConfig(name="x"))


def test_node_task_splits(tmp_path):
    text = "task: node\ndata: {name: cora, split: public}\nforward: {variant: sf}\n"
    cfg = load_config(write(tmp_path, text))
    assert cfg.train.metric == "accuracy" and cfg.train.loss == "ce"
    random = load_config(write(tmp_path, text), ["data.split=random", "data.val_ratio=0.16",
                                                 "data.test_ratio=0.2", "data.split_seed=1"])
    assert (random.data.val_ratio, random.data.split_seed) == (0.16, 1)
    assert "applies to split 'random' only" in error_of(
        load_config, write(tmp_path, text), ["data.val_ratio=0.16"])
    assert "'temporal' is not a split of task 'node'" in error_of(
        load_config, write(tmp_path, text), ["data.split=temporal"])
    assert "'public' is not a split of task 'recommendation'" in error_of(
        load_config, write(tmp_path, MINIMAL), ["data.split=public"])
    assert "applies to task 'recommendation' and 'node' only" in error_of(
        load_config, write(tmp_path, FORWARD), ["data.split=public"])


# ----------------------------------------------------------------------------------------
# The generated reference cannot drift
# ----------------------------------------------------------------------------------------


def test_docs_config_md_is_generated():
    committed = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == config_reference_markdown(), (
        "docs/config.md is out of date: run python experiments/tools/gen_config_docs.py")


def test_reference_documents_every_field():
    text = config_reference_markdown()
    for section in (Config, DataConfig, ModelConfig, TrainConfig, EvalConfig):
        for f in dataclasses.fields(section):
            assert f.metadata.get("help"), f"{section.__name__}.{f.name} has no help text"
    for name in ("`task`", "`data.name`", "`train.num_negative`", "`eval.ranking_mode`",
                 "`model.params`", "`out`"):
        assert f"| {name} |" in text
    assert "one of `adam`, `adamw`, `sgd`" in text
    assert "| `eval.ks` | list of int (>= 1) | `[10, 20]` |" in text
