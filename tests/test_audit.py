"""The audit on real torch.nn models, configured the way nanoGPT, timm and HF do it and the buggy
ways; every reported shrink is checked against torch's own step (the probe) and a real run."""

from __future__ import annotations

import copy
import fnmatch
import math

import pytest
import torch
from torch import nn

from wdlab.audit import Flag, audit, decay_convention_sets


class Encoder(nn.Module):
    """nn.Embedding + nn.TransformerEncoderLayer + nn.LayerNorm + a head."""

    def __init__(self, vocab=50, d=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layer = nn.TransformerEncoderLayer(d, 2, 32, dropout=0.0, batch_first=True)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, 5)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)


def mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))


class TinyViT(nn.Module):
    """timm-style: a learned position embedding listed in no_weight_decay()."""

    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.proj = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)

    def no_weight_decay(self):
        return {"pos_*"}  # timm matches these with fnmatch


def nanogpt_groups(model, wd=0.1):
    """karpathy/nanoGPT model.py configure_optimizers: decay iff p.dim() >= 2."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    return [{"params": [p for p in params.values() if p.dim() >= 2], "weight_decay": wd},
            {"params": [p for p in params.values() if p.dim() < 2], "weight_decay": 0.0}]


def timm_groups(model, wd=0.05):
    """huggingface/pytorch-image-models timm/optim/_param_groups.py param_groups_weight_decay,
    reimplemented: timm needs torchvision, which would replace this machine's torch."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skipped = any(fnmatch.fnmatch(name, pat) for pat in skip)  # timm matches patterns
        (no_decay if p.ndim <= 1 or name.endswith(".bias") or skipped else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": wd}]


def hf_groups(model, wd=0.01):
    """HF Trainer.create_optimizer: decay = get_decay_parameter_names (reimplemented here as
    transformers 5.24 writes it; checked against transformers itself below)."""
    import re
    pats = [re.compile(p) for p in (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)",
                                    r"_norm(?:$|\.)")]

    def names(mod):
        out = []
        for n, child in mod.named_children():
            out += [f"{n}.{k}" for k in names(child) if not isinstance(child, nn.LayerNorm)
                    and not any(pt.search(f"{n}.{k}".lower()) for pt in pats)]
        return out + [k for k in mod._parameters if not any(pt.search(k.lower()) for pt in pats)]

    dec = set(names(model))
    ps = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in ps if n in dec], "weight_decay": wd},
            {"params": [p for n, p in ps if n not in dec], "weight_decay": 0.0}]


def codes(a) -> set[str]:
    return {f.code for f in a.flags}


def flag(a, code) -> Flag:
    return next(f for f in a.flags if f.code == code)


# ----------------------------------------------------------------------------------------
# conventions and flags
# ----------------------------------------------------------------------------------------

def test_nanogpt_way_on_the_encoder_matches_all_three_conventions():
    torch.manual_seed(0)
    m = Encoder()
    a = audit(m, torch.optim.AdamW(nanogpt_groups(m), lr=1e-3))
    assert a.conventions == ["nanoGPT", "timm", "HF"]
    assert codes(a) == {"decayed_embedding"} and a.warnings == []
    assert flag(a, "decayed_embedding").params == ["embed.weight"]
    df = a.frame().set_index("name")
    assert df.loc["layer.norm1.weight", "kind"] == "norm"
    assert df.loc["layer.self_attn.in_proj_bias", "kind"] == "bias"
    assert df.loc["embed.weight", "kind"] == "embedding"
    assert df.loc["layer.linear1.weight", "decay"] == "decoupled"
    assert df.loc["layer.linear1.weight", "shrink_per_step"] == pytest.approx(1 - 1e-3 * 0.1)
    assert df.loc["layer.linear1.weight", "tau_iter"] == pytest.approx(1 / (1e-3 * 0.1))
    assert df.loc["ln.bias", "decay"] == "none"


def test_cnn_nanogpt_vs_hf_differ_on_batchnorm():
    m = CNN()
    a = audit(m, torch.optim.SGD(nanogpt_groups(m, 5e-4), lr=0.1, momentum=0.9))
    assert a.conventions == ["nanoGPT", "timm"] and a.flags == []
    # HF excludes only nn.LayerNorm and *norm* names: "bn1.weight" is decayed
    b = audit(m, torch.optim.SGD(hf_groups(m, 5e-4), lr=0.1, momentum=0.9))
    assert b.conventions == ["HF"]
    assert codes(b) == {"decayed_norm"}
    assert sorted(flag(b, "decayed_norm").params) == ["bn1.weight", "bn2.weight"]


def test_timm_way_respects_no_weight_decay():
    m = TinyViT()
    a = audit(m, torch.optim.AdamW(timm_groups(m), lr=1e-3))
    assert a.conventions == ["timm"] and a.flags == []
    b = audit(m, torch.optim.AdamW(nanogpt_groups(m), lr=1e-3))  # decays pos_embed (3-D)
    assert b.conventions == ["nanoGPT", "HF"]  # HF's rule has no no_weight_decay list
    assert codes(b) == {"decayed_embedding"}


def test_hf_rule_matches_transformers_own_function():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32,
                                  max_position_embeddings=16)
    model = transformers.BertModel(cfg)  # from config: no weights downloaded
    theirs = set(transformers.Trainer.get_decay_parameter_names(None, model))
    assert decay_convention_sets(model)["HF"] == theirs
    groups = [{"params": [p for n, p in model.named_parameters() if n in theirs],
               "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if n not in theirs],
               "weight_decay": 0.0}]
    a = audit(model, torch.optim.AdamW(groups, lr=1e-4))
    assert "HF" in a.conventions
    assert codes(a) <= {"decayed_embedding"}


def test_adam_weight_decay_meant_as_adamw_and_everything_decayed():
    m = Encoder()
    a = audit(m, torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=0.01), probe=True)
    assert codes(a) == {"coupled_adam", "decayed_bias", "decayed_norm", "decayed_embedding"}
    assert len(flag(a, "coupled_adam").params) == len(list(m.parameters()))
    assert a.conventions == []
    df = a.frame()
    assert (df.decay == "coupled").all() and df.shrink_per_step.isna().all()
    assert (df.probe == "not a shrink").all() and (df.probe_max_err <= 1e-6).all()
    assert any("not a multiplicative shrink" in n for n in a.notes)


def test_adamw_everything_decayed_flags_only_the_kinds():
    m = Encoder()
    a = audit(m, torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.1))
    assert codes(a) == {"decayed_bias", "decayed_norm", "decayed_embedding"}
    assert "match no convention" in flag(a, "decayed_bias").message
    assert a.closest.startswith("nanoGPT") and "closest nanoGPT" in str(a)
    assert set(flag(a, "decayed_norm").params) == {"layer.norm1.weight", "layer.norm1.bias",
                                                   "layer.norm2.weight", "layer.norm2.bias",
                                                   "ln.weight", "ln.bias"}


def test_positional_eps_trap():
    m = mlp()
    a = audit(m, torch.optim.Adam(m.parameters(), 1e-3, (0.9, 0.999), 1e-2))  # eps=1e-2
    assert codes(a) == {"positional_trap", "no_decay"}
    assert "eps=0.01" in flag(a, "positional_trap").message
    b = audit(m, torch.optim.SGD(m.parameters(), 0.1, 0.9, 5e-4))  # dampening=5e-4
    assert codes(b) == {"positional_trap", "no_decay"}
    assert "dampening" in flag(b, "positional_trap").message


def test_misspelled_key_keeps_the_default_decay():
    m = mlp()
    decay = [p for p in m.parameters() if p.dim() >= 2]
    no_decay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.SGD([{"params": decay}, {"params": no_decay, "weight_deacy": 0.0}],
                          lr=0.1, weight_decay=1e-4)
    a = audit(m, opt)
    assert codes(a) == {"unknown_key", "decayed_bias"}
    f = flag(a, "unknown_key")
    assert "'weight_deacy'" in f.message and "did you mean 'weight_decay'" in f.message
    assert "weight_decay=0.0001" in f.message
    # a scheduler's own keys and a plain tag: no typo warning
    opt2 = torch.optim.SGD([{"params": decay, "weight_decay": 1e-4, "name": "w"},
                            {"params": no_decay, "weight_decay": 0.0}], lr=0.1)
    torch.optim.lr_scheduler.StepLR(opt2, 10)  # adds initial_lr
    b = audit(m, opt2)
    assert b.warnings == [] and codes(b) == {"unknown_key"}
    assert flag(b, "unknown_key").severity == "info"


def test_missing_and_frozen_parameters():
    m = Encoder()
    opt = torch.optim.AdamW([p for n, p in m.named_parameters() if not n.startswith("head.")],
                            lr=1e-3, weight_decay=0.0)
    a = audit(m, opt)
    assert codes(a) == {"missing_from_optimizer", "no_decay"}
    assert flag(a, "missing_from_optimizer").params == ["head.weight", "head.bias"]

    m2 = Encoder()
    m2.embed.weight.requires_grad_(False)
    opt2 = torch.optim.AdamW(nanogpt_groups(m2) + [{"params": [m2.embed.weight],
                                                    "weight_decay": 0.1}], lr=1e-3)
    b = audit(m2, opt2, probe=True)
    assert codes(b) == {"frozen_in_optimizer"}
    row = b.frame().set_index("name").loc["embed.weight"]
    assert row.decay == "none" and row.probe == "unchanged"


def test_lambda_zero_everywhere():
    m = CNN()
    a = audit(m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9))
    assert codes(a) == {"no_decay"}
    assert (a.frame().tau_iter == math.inf).all()


def test_tau_epoch_outside_the_sensible_range():
    m = mlp()
    groups = nanogpt_groups(m, 0.1)
    a = audit(m, torch.optim.AdamW(groups, lr=1e-3), steps_per_epoch=100, epochs=50)
    # τ_iter = 1/(1e-3·0.1) = 1e4 iterations = 100 epochs > 50
    assert codes(a) == {"tau_epoch_range"}
    assert a.frame().set_index("name").loc["0.weight", "tau_epoch"] == pytest.approx(100.0)
    ok = audit(m, torch.optim.AdamW(nanogpt_groups(m, 0.1), lr=1e-3), steps_per_epoch=100,
               epochs=200)
    assert ok.flags == []
    short = audit(m, torch.optim.AdamW(nanogpt_groups(m, 20.0), lr=1e-3), steps_per_epoch=100,
                  epochs=200)  # τ_epoch = 0.5
    assert codes(short) == {"tau_epoch_range"}


def test_unknown_optimizer_is_reported_and_probed():
    class SignDecay(torch.optim.Optimizer):
        def __init__(self, params, lr=0.1, weight_decay=0.01):
            super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self, closure=None):
            for g in self.param_groups:
                for p in g["params"]:
                    if p.grad is not None:
                        p.mul_(1 - g["weight_decay"]).add_(p.grad.sign(), alpha=-g["lr"])

    m = mlp()
    a = audit(m, SignDecay(nanogpt_groups(m, 0.01)), probe=True)
    assert codes(a) == {"unknown_optimizer"}
    df = a.frame().set_index("name")
    assert df.loc["0.weight", "decay"] == "unknown"
    assert df.loc["0.weight", "probe_shrink"] == pytest.approx(0.99, abs=1e-6)
    assert df.loc["0.weight", "shrink_per_step"] == pytest.approx(0.99, abs=1e-6)


# ----------------------------------------------------------------------------------------
# the probe: the reported shrink is the one torch's step applies
# ----------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda g: torch.optim.SGD(g, lr=0.1),
    "sgd_momentum": lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9),
    "sgd_nesterov": lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda g: torch.optim.Adam(g, lr=1e-3),
    "adam_decoupled": lambda g: torch.optim.Adam(g, lr=1e-3, decoupled_weight_decay=True),
    "adamw": lambda g: torch.optim.AdamW(g, lr=1e-3),
    "adamw_amsgrad": lambda g: torch.optim.AdamW(g, lr=1e-3, amsgrad=True),
    "rmsprop": lambda g: torch.optim.RMSprop(g, lr=1e-2),
    "rmsprop_centered_momentum": lambda g: torch.optim.RMSprop(g, lr=1e-2, centered=True,
                                                               momentum=0.5),
    "adagrad": lambda g: torch.optim.Adagrad(g, lr=1e-2, initial_accumulator_value=0.1),
    "nadam": lambda g: torch.optim.NAdam(g, lr=1e-3),
    "nadam_decoupled": lambda g: torch.optim.NAdam(g, lr=1e-3, decoupled_weight_decay=True),
    "radam": lambda g: torch.optim.RAdam(g, lr=1e-3),
    "adamax": lambda g: torch.optim.Adamax(g, lr=1e-3),
}
MULTIPLICATIVE = {"sgd", "sgd_momentum", "sgd_nesterov", "adam_decoupled", "adamw",
                  "adamw_amsgrad", "nadam_decoupled", "radam"}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_probe_agrees_with_the_reported_shrink(name):
    torch.manual_seed(0)
    m = Encoder()
    before = copy.deepcopy(m.state_dict())
    opt = OPTIMIZERS[name](nanogpt_groups(m, 0.05))
    state = copy.deepcopy(opt.state_dict())
    a = audit(m, opt, probe=True)
    assert "probe_mismatch" not in codes(a)
    df = a.frame()
    decayed = df[df.weight_decay > 0]
    if name in MULTIPLICATIVE:
        assert (decayed.probe == "multiplicative").all()
        assert (decayed.probe_shrink - decayed.shrink_per_step).abs().max() <= 1e-6
        assert (decayed.shrink_per_step < 1).all()
    else:
        assert (decayed.probe == "not a shrink").all() and decayed.shrink_per_step.isna().all()
    assert (decayed.probe_max_err <= 1e-6).all()
    assert (df[df.weight_decay == 0].probe == "unchanged").all()
    # the user's model and optimizer are untouched
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert repr(opt.state_dict()) == repr(state)


def test_sgd_momentum_tau_uses_the_steady_state_gain():
    m = mlp()
    a = audit(m, torch.optim.SGD(nanogpt_groups(m, 1e-3), lr=0.1, momentum=0.9),
              steps_per_epoch=10)
    row = a.frame().set_index("name").loc["0.weight"]
    assert row.shrink_per_step == pytest.approx(1 - 0.1 * 1e-3)
    assert row.tau_iter == pytest.approx(0.1 / (0.1 * 1e-3))  # (1 − μ)/(lr·λ)
    assert row.tau_epoch == pytest.approx(row.tau_iter / 10)


def test_scheduled_shrink_equals_a_real_run():
    """shrink_total = Π(1 − lr_t·λ): checked against torch.optim.AdamW run for the whole
    schedule with zero gradients (float64)."""
    m = mlp().double()
    opt = torch.optim.AdamW(nanogpt_groups(m, 0.1), lr=1e-2)
    spe, epochs = 5, 4
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spe * epochs)
    a = audit(m, opt, steps_per_epoch=spe, epochs=epochs, scheduler=sched)
    row = a.frame().set_index("name").loc["0.weight"]
    assert sched.last_epoch == 0 and opt.param_groups[0]["lr"] == 1e-2  # not advanced
    w = m[0].weight
    w0 = w.detach().clone()
    for _ in range(spe * epochs):
        for p in m.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        sched.step()
    measured = float((w.detach() / w0).mean())
    assert row.shrink_total == pytest.approx(measured, rel=1e-12)
    assert row.shrink_avg == pytest.approx(measured ** (1 / (spe * epochs)), rel=1e-12)


def test_string_and_dict_outputs():
    m = Encoder()
    a = audit(m, torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=0.01))
    text = str(a)
    assert "coupled_adam" in text and "embed.weight" in text and "fix:" in text
    d = a.to_dict()
    assert d["optimizer"] == "Adam" and len(d["params"]) == len(list(m.parameters()))
    assert all(v is None or not isinstance(v, float) or math.isfinite(v)
               for r in d["params"] for v in r.values())


def test_bad_arguments_name_the_field():
    m = mlp()
    with pytest.raises(ValueError, match="optimizer"):
        audit(m, "adam")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        audit(m, torch.optim.SGD(m.parameters(), lr=0.1), steps_per_epoch=0)


def test_public_api_in_either_import_order():
    import subprocess
    import sys

    code = ("import torch, {first}\n"
            "m = torch.nn.Linear(2, 2); o = torch.optim.AdamW(m.parameters())\n"
            "import wdlab.audit\nfrom wdlab import audit\n"
            "assert wdlab.audit(m, o).optimizer == audit(m, o).optimizer == 'AdamW'\n")
    for first in ("wdlab", "wdlab.audit"):
        subprocess.run([sys.executable, "-c", code.format(first=first)], check=True)


def test_robust_to_closures_short_schedules_and_empty_parameters():
    m = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 4))
    a = audit(m, torch.optim.LBFGS(m.parameters()), probe=True)  # step() needs a closure
    assert codes(a) == {"unknown_optimizer", "probe_failed"}
    assert (a.frame().probe == "failed").all()
    opt = torch.optim.AdamW(nanogpt_groups(m), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=10)
    b = audit(m, opt, scheduler=sched, steps_per_epoch=10, epochs=3)  # runs past total_steps
    assert any(n.startswith("scheduler not simulated") for n in b.notes)
    assert b.frame().shrink_avg.isna().all()
    with pytest.warns(UserWarning, match="zero-element"):
        empty = nn.Linear(3, 0)
    c = audit(empty, torch.optim.AdamW(empty.parameters(), lr=1e-3), probe=True)
    assert set(c.frame().probe) == {"empty"}


def test_custom_rmsnorm_is_a_norm_even_where_hf_decays_it():
    """A custom RMSNorm named ln_f: HF's name patterns miss it (the transformers #35927 class of
    bug), so HF's grouping decays it; the audit still calls it a norm and flags it."""
    class RMSNorm(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(20, 8)
            self.fc = nn.Linear(8, 8, bias=False)
            self.ln_f = RMSNorm(8)

    m = LM()
    a = audit(m, torch.optim.AdamW(hf_groups(m, 0.1), lr=1e-3))
    assert a.conventions == ["HF"]
    assert a.frame().set_index("name").loc["ln_f.weight", "kind"] == "norm"
    assert codes(a) == {"decayed_norm", "decayed_embedding"}
    assert flag(a, "decayed_norm").params == ["ln_f.weight"]
