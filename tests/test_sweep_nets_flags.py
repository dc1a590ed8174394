"""``wdlab sweep`` flags for the nets family: ``--dataset moons --hidden "32;64,64" ...``.

Each flag produces the spec field it names (``flag_overrides`` -> ``build_spec``); ``--dataset``
alone means ``family = "mlp"``; ``--loss``/``--schedule`` go to ``model.*`` for a nets spec
(from the flags or the spec file) and to ``train.*`` for a linear one. A flag-only nets sweep
equals the same sweep from a TOML spec file bitwise. Bad values are one-line errors (exit 2)
that leave no run directory.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from runs import assert_same_run, one_line_error
from wdlab.cli import app
from wdlab.cli.flags import flag_overrides
from wdlab.config import ConfigError
from wdlab.config.load import build_spec, merge

runner = CliRunner()


def spec_of(base: dict | None = None, **flags):
    """The spec ``wdlab sweep [SPEC] --flags`` builds (SPEC's raw dict = ``base``)."""
    base = base or {}
    return build_spec(merge(base, flag_overrides(base=base, **flags)))


# ------------------------------------------------------------------- flags -> spec fields


def test_each_nets_flag_sets_its_field():
    spec = spec_of(dataset="moons", hidden="32;64,64", activation="ReLU,tanh",
                   decay="matrices,all", bias="true,False", loss="cross_entropy",
                   schedule="constant,warmup_cosine", warmup="3", label_smoothing="0.1",
                   selection_metric="accuracy", n_train="40", seeds="2")
    m = spec.model
    assert m.family == "mlp"  # --dataset alone
    assert m.hidden == ((32,), (64, 64))
    assert m.activation == ("relu", "tanh") and m.decay == ("matrices", "all")
    assert m.bias == (True, False) and m.loss == ("cross_entropy",)
    assert m.schedule == ("constant", "warmup_cosine") and m.warmup == 3
    assert m.label_smoothing == 0.1 and spec.selection.metric == "accuracy"
    assert spec.dataset.name == "moons" and spec.dataset.seeds == (0, 1)
    assert spec.dataset.params == {"n_train": [40]}
    assert spec.validation.method == "split"  # the nets default
    assert spec.train.loss == type(spec.train)().loss  # --loss did not touch train.loss


def test_hidden_one_architecture_or_an_axis():
    assert spec_of(dataset="moons", hidden="64,64").model.hidden == ((64, 64),)
    assert spec_of(dataset="moons", hidden="128").model.hidden == ((128,),)
    assert spec_of(dataset="moons", hidden=" 8 ; 4, 4 ;8").model.hidden == ((8,), (4, 4))
    assert flag_overrides(hidden="32;64,64")["model"]["hidden"] == [[32], [64, 64]]
    # an empty architecture is no hidden layer, as "" in a spec file (config.nets)
    assert spec_of(dataset="moons", hidden=";64").model.hidden == ((), (64,))
    assert spec_of(dataset="moons", hidden="").model.hidden == spec_of(
        {"model": {"family": "mlp", "hidden": ""}, "data": {"dataset": "moons"}}).model.hidden


def test_family_and_dataset_flags():
    assert spec_of(family="MLP", dataset="digits").model.family == "mlp"
    kfold = spec_of(dataset="modular", hidden="128", validation="kfold", folds="5")
    assert kfold.dataset.name == "modular" and kfold.validation.method == "kfold"
    assert kfold.validation.folds == 5
    assert spec_of(family="linear").model.family == "linear"
    file = {"model": {"family": "mlp"}, "data": {"dataset": "xor", "n_train": 30}}
    assert spec_of(file, dataset="moons").dataset.name == "moons"  # the flag wins
    assert spec_of(file, dataset="moons").dataset.params == {"n_train": 30}


def test_loss_and_schedule_go_where_the_family_takes_them():
    nets = spec_of(dataset="digits", loss="mse", schedule="cosine")
    assert nets.model.loss == ("mse",) and nets.model.schedule == ("cosine",)
    assert flag_overrides(dataset="digits", loss="mse")["model"]["loss"] == ["mse"]
    linear = spec_of(preset="seed", loss="half_mse", schedule="cosine")
    assert linear.model.family == "linear"
    assert linear.train.loss == ("half_mse",) and linear.train.schedule == ("cosine",)
    assert flag_overrides(loss="mse") == {"train": {"loss": ["mse"]}}
    file = {"model": {"family": "mlp"}, "data": {"dataset": "xor"}}  # the spec file's family
    assert spec_of(file, loss="mse").model.loss == ("mse",)
    assert flag_overrides(base=file, schedule="cosine") == {"model": {"schedule": ["cosine"]}}
    # --family beats the file's; an explicit linear file keeps train.loss
    assert flag_overrides(base=file, family="linear", loss="mse")["train"] == {"loss": ["mse"]}
    lin_file = {"model": {"family": "linear"}}
    assert flag_overrides(base=lin_file, loss="mse") == {"train": {"loss": ["mse"]}}
    assert flag_overrides(base=lin_file, family="mlp", loss="mse")["model"]["loss"] == ["mse"]


@pytest.mark.parametrize("flags, message", [
    ({"hidden": "a"}, "--hidden: 'a' is not an integer"),
    ({"hidden": "0"}, "--hidden: width '0' must be a positive integer"),
    ({"hidden": "8,-2"}, "--hidden: width '-2' must be a positive integer"),
    ({"hidden": "1.5"}, "--hidden: '1.5' is not an integer"),
    ({"hidden": "8,,8"}, "--hidden: empty width in '8,,8'"),
    ({"memory_gb": "x"}, "--memory-gb: 'x' is not a number"),
    ({"bias": "true,maybe"}, "--bias: 'maybe' is not true or false"),
    ({"warmup": "2.5"}, "--warmup: '2.5' is not an integer"),
    ({"label_smoothing": "x"}, "--label-smoothing: 'x' is not a number"),
    ({"dataset": " "}, "--dataset: empty"),
])
def test_bad_flag_values_name_the_flag(flags, message):
    with pytest.raises(ConfigError) as exc:
        flag_overrides(**{"dataset": "moons", **flags})
    msg = str(exc.value)
    assert msg.startswith(message) and "\n" not in msg, msg


# ------------------------------------------------------------------- the CLI end to end

SPEC = """
[model]
family = "mlp"
hidden = [8]
bias = [true, false]
loss = "mse"
[data]
dataset = "moons"
n_train = 40
seeds = 1
[train]
lam = [0, 0.01]
epochs = 5
"""


def test_flag_only_nets_sweep_equals_the_spec_file_bitwise(tmp_path):
    spec = tmp_path / "m.toml"
    spec.write_text(SPEC)
    ref = tmp_path / "file"
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(ref), "--no-report", "--no-csv"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "flags"
    res = runner.invoke(app, ["sweep", "--dataset", "moons", "--n-train", "40",
                              "--seeds", "1", "--hidden", "8",
                              "--bias", "true,false", "--loss", "mse", "--lam", "0,0.01",
                              "--epochs", "5", "--out", str(out), "--no-report", "--no-csv"])
    assert res.exit_code == 0, res.output
    assert_same_run(out, ref, n_configs=4)  # 2 lams x 2 bias


def test_nets_flag_errors_are_one_line_and_write_nothing(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.5}\n" for i in range(20)))
    regression = tmp_path / "reg.toml"
    regression.write_text(f'[model]\nfamily = "mlp"\n[data]\ndataset = "table"\n'
                          f'path = "{table}"\ntarget = "y"\ntask = "regression"\n')
    cases = [
        (["--dataset", "moons", "--hidden", "a"], ["--hidden: 'a' is not an integer"]),
        (["--dataset", "moons", "--hidden", "0"], ["--hidden", "'0'", "positive"]),
        (["--dataset", "moons", "--bias", "maybe"], ["--bias: 'maybe' is not true or false"]),
        (["--dataset", "unknown-name"], ["data.dataset: unknown name 'unknown-name'", "moons"]),
        (["--family", "linear", "--dataset", "moons"], ["--dataset", "--family mlp"]),
        (["--preset", "seed", "--dataset", "moons"], ["--dataset", "drop --preset"]),
        (["--preset", "seed", "--family", "mlp"], ["--family", "drop --preset"]),
        ([str(regression), "--loss", "mse", "--selection-metric", "accuracy"],
         ["selection.metric", "regression"]),
        (["--dataset", "moons", "--activation", "sigmoid"], ["model.activation"]),
        (["--dataset", "moons", "--validation", "holdout"], ["validation.method"]),
    ]
    for i, (argv, needles) in enumerate(cases):
        out = tmp_path / f"run{i}"
        res = runner.invoke(app, ["sweep", *argv, "--epochs", "2", "--out", str(out),
                                  "--no-report", "--no-csv"])
        one_line_error(res, *needles, what=argv)
        assert not out.exists(), argv
    # the regression table itself is a valid nets spec once the loss is mse (the flag: model.loss)
    assert spec_of({"model": {"family": "mlp"},
                    "data": {"dataset": "table", "path": str(table), "target": "y",
                             "task": "regression"}}, loss="mse").model.loss == ("mse",)


def test_resume_refuses_nets_flags(tmp_path):
    res = runner.invoke(app, ["sweep", "--resume", str(tmp_path / "r"), "--hidden", "8"])
    one_line_error(res, "--resume", "drop --hidden")


def test_help_lists_every_flag_dataset():
    from wdlab.nets.datasets import DATASETS

    res = runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for flag in ("--family", "--dataset", "--hidden", "--activation", "--decay", "--bias",
                 "--label-smoothing", "--warmup", "--selection-metric"):
        assert flag in res.output, flag
    line = " ".join(res.output.split("--dataset", 1)[1].split("--hidden", 1)[0].split())
    for name in DATASETS:
        if name != "table":  # needs path and target: a spec file's
            assert name in line, name


def test_a_spec_files_linear_preset_is_refused_with_nets_flags():
    from wdlab.config.models import ConfigError

    with pytest.raises(ConfigError, match="^--dataset: --preset seed .*drop --preset"):
        flag_overrides(base={"preset": "seed"}, dataset="moons")
    with pytest.raises(ConfigError, match="^--family: --preset d2l"):
        flag_overrides(base={"preset": "d2l"}, family="mlp")
    assert flag_overrides(base={"preset": "seed"}, lam="0,3") == {"train": {"lam": [0.0, 3.0]}}
