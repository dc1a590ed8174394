"""The sweep spec: ranges and lists, TOML/YAML files, CLI flags, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from runs import one_line_error
from wdlab.cli import app
from wdlab.cli.flags import flag_overrides
from wdlab.config.load import build_spec, load_spec
from wdlab.config.models import ConfigError
from wdlab.config.schema import SweepRecord
from wdlab.config.values import parse_values

runner = CliRunner()


def test_log_range_is_exact_at_the_ends():
    v = parse_values("1e-3:1e2:50")
    assert len(v) == 50 and v[0] == 1e-3 and v[-1] == 1e2
    np.testing.assert_allclose(np.diff(np.log10(v)), 5 / 49, rtol=1e-12)


def test_lists_ranges_and_linear():
    assert parse_values("0,0.1,3") == [0.0, 0.1, 3.0]
    assert parse_values("0,1e-2:1:3") == [0.0, 0.01, 0.1, 1.0]
    assert parse_values("0:1:3:lin") == [0.0, 0.5, 1.0]


def test_preset_and_flags():
    raw = flag_overrides(preset="seed", lam="1e-3:1e2:50", seeds="20")
    spec = build_spec(raw)
    assert spec.preset == "seed" and spec.name == "seed"
    assert spec.data.seeds == tuple(range(20)) and spec.data.n_features == 200
    assert len(spec.train.lam) == 50 and spec.train.lr == (0.05,)
    assert spec.train.pair_list() == [("adam", "mean")]


def test_lam_sorted_and_deduplicated():
    spec = build_spec({"train": {"lam": ["1:10:2", 0, 1.0, 0.5]}})
    assert spec.train.lam == (0.0, 0.5, 1.0, 10.0)


def test_product_skips_invalid_adamw_pairs_and_explicit_pairs():
    spec = build_spec({"train": {"optimizer": ["adam", "adamw"], "regularizer": ["mean", "decoupled"]}})
    assert spec.train.pair_list() == [("adam", "mean"), ("adam", "decoupled"), ("adamw", "decoupled")]
    spec = build_spec({"preset": "seed", "train": {"pairs": "sgd+sum,adamw+independent"}})
    assert spec.train.pair_list() == [("sgd", "sum"), ("adamw", "independent")]


def test_record_epochs():
    assert SweepRecord(every=10).epochs(25) == [0, 10, 20, 25]
    pts = SweepRecord(log_points=50).epochs(1000)
    assert pts[0] == 0 and pts[-1] == 1000 and len(pts) <= 51 and pts == sorted(set(pts))


def test_toml_and_yaml_give_the_same_spec(tmp_path):
    (tmp_path / "s.toml").write_text(
        'preset = "seed"\n[train]\nlam = "1e-2:1:3"\nlr = [0.01, 0.05]\n'
        '[data]\nseeds = 3\n[record]\nlog_points = 10\n')
    (tmp_path / "s.yaml").write_text(
        "preset: seed\ntrain:\n  lam: 1e-2:1:3\n  lr: [0.01, 0.05]\n"
        "data:\n  seeds: 3\nrecord:\n  log_points: 10\n")
    a, b = load_spec(tmp_path / "s.toml"), load_spec(tmp_path / "s.yaml")
    assert a == b and a.train.lam == (0.01, 0.1, 1.0)


def test_yaml_is_loaded_safely(tmp_path):
    (tmp_path / "evil.yaml").write_text("train: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_spec(tmp_path / "evil.yaml")


BAD = [
    ("unknown.toml", "[train]\nlrr = 0.1\n", "train.lrr: unknown key"),
    ("unknown_top.toml", "[trian]\nlr = 0.1\n", "trian: unknown key"),
    ("type.toml", '[train]\nlr = "fast"\n', "train.lr"),
    ("type_bool.toml", "[train]\nepochs = true\n", "train.epochs"),
    ("negative.toml", "[data]\nn_train = -5\n", "data.n_train"),
    ("negative_features.yaml", "data:\n  n_features: -1\n", "data.n_features"),
    ("empty_range.toml", '[train]\nlam = "1e-3:1e2:0"\n', "train.lam: empty range"),
    ("reversed_range.toml", '[train]\nlam = "1e2:1e-3:5"\n', "train.lam: empty range"),
    ("empty_list.toml", "[train]\nlam = []\n", "train.lam: empty list"),
    ("negative_lam.toml", "[train]\nlam = [0.1, -1]\n", "train.lam.1"),
    ("pairs.toml", '[train]\npairs = ["adamw+mean"]\n', "train.pairs.0"),
    ("folds.toml", '[validation]\nmethod = "kfold"\nfolds = 50\n', "validation.folds"),
    ("malformed.toml", "[train\nlr = 0.1\n", "malformed TOML"),
    ("malformed.yaml", "train:\n  lr: [0.1,\n  epochs: 3\n", "malformed YAML"),
    ("not_a_table.yaml", "- 1\n- 2\n", "top level"),
]


@pytest.mark.parametrize(("name", "text", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_spec_is_one_line_exit_2_nothing_written(tmp_path, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    out = tmp_path / "run"
    one_line_error(runner.invoke(app, ["sweep", str(path), "--out", str(out), "--no-report"]),
                   needle)
    assert not out.exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--lam", "1e-3:1e2:0"], "--lam: empty range"),
    (["--lam", "abc"], "--lam"),
    (["--seeds", "-2"], "data.seeds"),
    (["--epochs", "1.5"], "--epochs"),
    (["--optimizer", "rmsprop"], "train.optimizer.0"),
    (["--preset", "nope"], "preset"),
    (["--log-points", "5", "--record-every", "2"], "record.log_points"),
])
def test_bad_flags_are_one_line(tmp_path, args, needle):
    out = tmp_path / "run"
    res = runner.invoke(app, ["sweep", "--preset", "seed", *args, "--out", str(out)]
                        if "--preset" not in args else ["sweep", *args, "--out", str(out)])
    one_line_error(res, needle)
    assert not out.exists()


def test_resume_rejects_spec_flags(tmp_path):
    res = runner.invoke(app, ["sweep", "--resume", str(tmp_path), "--lam", "1"])
    assert res.exit_code == 2 and "--lam" in res.output


def test_resume_without_manifest_is_one_line(tmp_path):
    res = runner.invoke(app, ["sweep", "--resume", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "nothing to resume" in res.output


@pytest.mark.parametrize("raw", [
    {"preset": "seed", "train": {"lam": "1e-3:1e2:50"}, "data": {"seeds": 20}},
    {"preset": "d2l", "train": {"pairs": ["sgd+half_sum", "adamw+decoupled"], "init_seed": [0, 1]},
     "validation": {"method": "kfold", "folds": 3}, "record": {"log_points": 20}},
])
def test_spec_round_trips_through_its_json_dump(raw):
    import json

    from wdlab.config.load import spec_from_json

    spec = build_spec(raw)
    again = spec_from_json(json.loads(json.dumps(spec.model_dump(mode="json"))))
    assert again == spec


def test_spec_engines_are_the_engines():
    from typing import get_args

    from wdlab.config.schema import Engine
    from wdlab.engine.fast import ENGINES

    assert set(get_args(Engine)) == set(ENGINES)


# ------------------------------------------------------------------ the one preset registry

def _help_names(output: str, lead: str) -> tuple[str, ...]:
    """The names a help text lists after ``lead`` ("a, b or c.")."""
    text = " ".join(output.split())
    assert lead in text, text
    listed = text.split(lead, 1)[1].split(".", 1)[0]
    head, _, last = listed.rpartition(" or ")
    return (*(s.strip() for s in head.split(",")), last.strip()) if head else (last.strip(),)


def test_the_preset_registry_is_the_only_source():
    """reproduce, sweep --preset, a spec's preset key, the demos and the CLI's help all take
    their names from wdlab.config.presets, and every name resolves there to a runner."""
    import importlib
    from typing import get_args

    from wdlab.config import presets as reg
    from wdlab.config.load import preset_spec
    from wdlab.config.schema import SpecPreset, SweepSpec
    from wdlab.demos import DEMOS

    assert set(reg.KINDS) == {p.kind for p in reg.PRESETS.values()}
    assert reg.names() == tuple(reg.PRESETS)
    assert get_args(SpecPreset) == reg.SPEC_PRESETS == reg.names(reg.EXPERIMENT) == ("seed", "d2l")
    assert get_args(SweepSpec.model_fields["preset"].annotation)[0] is SpecPreset
    assert DEMOS == reg.names(reg.DEMO)
    assert tuple(reg.SWEEP_PRESETS) == tuple(reg.REDUCED) == reg.names(reg.SWEEP)
    for name in reg.names():
        p = reg.lookup(name)
        assert p.name == name and p.summary and p.kind in reg.KINDS
        module, _, function = p.runner.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), p.runner
    for name in reg.names(reg.EXPERIMENT):
        assert reg.experiment(name).name == name
        assert build_spec({"preset": name}).preset == name
    for name in reg.names(reg.SWEEP):
        assert preset_spec(name, reduced=True).name == name
    reproduce = runner.invoke(app, ["reproduce", "--help"], env={"COLUMNS": "400"})
    assert reproduce.exit_code == 0
    assert _help_names(reproduce.output, "Experiment to run: ") == reg.names()
    sweep = runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": "400"})
    assert sweep.exit_code == 0
    assert _help_names(sweep.output, "Defaults for data and training: ") == reg.SPEC_PRESETS


@pytest.mark.parametrize("name, kind", [("sed", None), ("adamw-fig2", "experiment"),
                                        ("grokking", "sweep"), (3, None)])
def test_unknown_preset_is_one_line_naming_the_registry(name, kind):
    from wdlab.config.presets import lookup, names

    with pytest.raises(ConfigError) as exc:
        lookup(name, kind)
    msg = str(exc.value)
    assert msg.startswith(f"preset: unknown name {name!r}; expected one of {names(kind)}")
    assert "\n" not in msg


def test_reproduce_and_spec_refuse_a_name_outside_their_kind(tmp_path):
    from wdlab.config.presets import names

    res = runner.invoke(app, ["reproduce", "sede", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert f"expected one of {names()}; did you mean 'seed'?" in res.output
    with pytest.raises(ConfigError, match=r"^preset: unknown name 'adamw-fig2'; expected one "
                                          r"of \('seed', 'd2l'\)"):
        build_spec({"preset": "adamw-fig2"})
    assert not (tmp_path / "r").exists()


def test_no_import_circle_through_the_config_package():
    """schema -> nets -> values -> models, load above them, presets below the schema: the old
    spec <-> spec_nets circle is gone, and nothing in wdlab.config sits in a circle."""
    from test_import_graph import cycles, import_graph

    g = import_graph()
    assert "wdlab.config.nets" in g["wdlab.config.schema"]
    assert not {"wdlab.config.schema", "wdlab.config.load"} & g["wdlab.config.nets"]
    assert not {"wdlab.config.schema", "wdlab.config.load"} & g["wdlab.config.presets"]
    looped = [sorted(c) for c in cycles(g)
              if any(m == "wdlab.config" or m.startswith("wdlab.config.") for m in c)]
    assert looped == [], f"import circles through wdlab.config: {looped}"


@pytest.mark.parametrize("flags, message", [
    ({"epochs": "2.5"}, "--epochs: '2.5' is not an integer"),
    ({"seeds": "x"}, "--seeds: 'x' is not an integer"),
    ({"lam": "abc"}, "--lam: 'abc' is not a number"),
])
def test_flag_errors_name_the_flag_once(flags, message):
    with pytest.raises(ConfigError) as info:
        flag_overrides(**flags)
    assert str(info.value) == message
