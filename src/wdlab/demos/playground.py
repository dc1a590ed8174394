"""``wdlab reproduce playground``: a TensorFlow-Playground-like page for weight decay, offline.

Every combination of dataset (moons, circles, xor, spirals) x lam (12 values) x optimizer x
width trains a two-hidden-layer tanh MLP (2 -> w -> w -> 2, biases not decayed) on 2-D points
with minibatch cross-entropy, one ``wdlab.nets.train`` call per (optimizer, width) -- the
four datasets are that call's data draws and lam its configurations, so all 48 models of a
call train as one tensor program:

    adam+weight_decay   Adam, coupled L2: g <- g + lam w  (torch.optim.Adam(weight_decay=lam))
    adamw+decoupled     AdamW: w <- w - lr lam w          (torch.optim.AdamW(weight_decay=lam))
    sgd+weight_decay    SGD momentum 0.9 + L2: g <- g + lam w  (torch.optim.SGD(weight_decay=lam))

The engine keeps each model's parameters at ~10 epochs (``snapshot_epochs``); each snapshot's
decision function p(class 1 | x) on a GRID x GRID lattice over the data's box is quantised to
uint8, and the whole cube (calls, configs, snapshots, grid) is zlib-compressed and embedded in
base64 in one self-contained page (no server, no network: the browser's DecompressionStream
inflates it). Selectors and sliders for dataset, lam, optimizer, width and epoch redraw the
boundary, the points and the loss curves from the embedded arrays.

    playground_config(reduced) -> dict        the experiment, validated in one place
    train_playground(cfg) -> dict             the arrays (real runs)
    playground_html(data) -> str              the page
    run_playground(out=...) -> run directory  playground.html, playground.json, figures/
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = ("moons", "circles", "xor", "spirals")
OPTIMIZERS = {"adam+weight_decay": ("Adam + L2", 0.01), "adamw+decoupled": ("AdamW", 0.01),
              "sgd+weight_decay": ("SGD + L2", 0.1)}

PLAYGROUND: dict[str, Any] = {
    "n_train": 200, "n_test": 200, "seed": 0,
    "lams": [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0],
    "optimizers": list(OPTIMIZERS), "widths": [3, 8, 24], "epochs": 100, "batch_size": 20,
    "momentum": 0.9, "snapshot_epochs": [0, 1, 2, 5, 10, 20, 35, 50, 75, 100], "grid": 48,
}
REDUCED: dict[str, Any] = {"n_train": 40, "n_test": 20, "lams": [0.0, 0.1, 3.0],
                           "widths": [3, 6], "epochs": 12, "batch_size": 10,
                           "snapshot_epochs": [0, 4, 12], "grid": 16}


def playground_config(*, reduced: bool = False, epochs: int | None = None, **over) -> dict:
    """The experiment dict, checked: one-line ValueError naming the field."""
    cfg = {**PLAYGROUND, **(REDUCED if reduced else {}), **{k: v for k, v in over.items()
                                                            if v is not None}}
    if epochs is not None:
        if int(epochs) < 1:
            raise ValueError(f"epochs: must be >= 1, got {epochs}")
        cfg["epochs"] = int(epochs)
        cfg["snapshot_epochs"] = sorted({min(e, cfg["epochs"]) for e in cfg["snapshot_epochs"]}
                                        | {cfg["epochs"]})
    for o in cfg["optimizers"]:
        if o not in OPTIMIZERS:
            raise ValueError(f"optimizers: unknown pair {o!r}; expected one of {tuple(OPTIMIZERS)}")
    if not 4 <= int(cfg["grid"]) <= 256:
        raise ValueError(f"grid: must be in [4, 256], got {cfg['grid']}")
    if any(lam < 0 for lam in cfg["lams"]):
        raise ValueError("lams: weight decays must be >= 0")
    if any(int(w) < 1 for w in cfg["widths"]):
        raise ValueError("widths: must be positive integers")
    return cfg


def _box(ds) -> tuple[float, float, float, float]:
    import torch

    X = torch.cat([ds.X_train, ds.X_test])
    lo, hi = X.min(0).values, X.max(0).values
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def train_playground(cfg: dict, *, dtype=None, device: str = "cpu") -> dict[str, Any]:
    """Train every (optimizer, width) as one call over datasets x lams; return the arrays."""
    import torch

    from wdlab.nets import MLP, train
    from wdlab.nets.datasets import load
    from wdlab.nets.program import MLPProgram

    dtype = dtype or torch.float32
    data = [load(n, n_train=cfg["n_train"], n_test=cfg["n_test"], seed=cfg["seed"])
            for n in DATASETS]
    boxes = [_box(d) for d in data]
    n = int(cfg["grid"])
    grids = []
    for x0, x1, y0, y1 in boxes:  # row-major, y from top (canvas order)
        gx, gy = torch.meshgrid(torch.linspace(x0, x1, n), torch.linspace(y1, y0, n),
                                indexing="xy")
        grids.append(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).double())  # (n*n, 2)
    gridx = torch.stack(grids).to(dtype)  # (G, n*n, 2)
    lams = [float(v) for v in cfg["lams"]]
    L, G = len(lams), len(data)
    cubes, curves, timings = [], {}, []
    for opt in cfg["optimizers"]:
        o, reg = opt.split("+")
        lr = OPTIMIZERS[opt][1]
        for w in cfg["widths"]:
            m = MLP(2, (int(w), int(w)), 2, "tanh")
            t0 = time.perf_counter()
            r = train(m, [d.X_train for d in data], [d.y_train for d in data],
                      X_test=[d.X_test for d in data], y_test=[d.y_test for d in data],
                      loss="cross_entropy", optimizer=o, regularizer=reg, lam=lams * G, lr=lr,
                      beta1=cfg["momentum"] if o == "sgd" else 0.9, beta2=0.999,
                      seed=cfg["seed"], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                      batch_seed=cfg["seed"], snapshot_epochs=cfg["snapshot_epochs"],
                      K=G * L, record_every=1, dtype=dtype, device=device)
            timings.append(time.perf_counter() - t0)
            prog = MLPProgram(m)
            shots = r.extra["snapshots"]  # (S, K, P)
            with torch.no_grad():
                p1 = torch.stack([torch.softmax(prog.forward(s.to(dtype), gridx), -1)[..., 1]
                                  for s in shots])  # (S, K, n*n)
            q = torch.clamp(torch.round(p1 * 255), 0, 255).to(torch.uint8)
            cubes.append(q.permute(1, 0, 2).reshape(G, L, len(shots), n * n).numpy())
            for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
                v = r.metrics[name].T.reshape(G, L, -1).numpy()  # (G, L, R)
                curves.setdefault(name, []).append(v)
            curves.setdefault("diverged", []).append(r.diverged.reshape(G, L).numpy())
    n_opt, n_w = len(cfg["optimizers"]), len(cfg["widths"])
    cube = np.stack(cubes).reshape(n_opt, n_w, G, L, -1, n * n)  # (O, W, G, L, S, n*n)
    cube = cube.transpose(2, 3, 0, 1, 4, 5)  # (G, L, O, W, S, n*n): dataset-major
    out = {k: np.stack(v).reshape((n_opt, n_w) + v[0].shape) for k, v in curves.items()}
    return {"cfg": cfg, "cube": np.ascontiguousarray(cube), "boxes": boxes,
            "points": [{"x": d.X_train[:, 0].tolist(), "y": d.X_train[:, 1].tolist(),
                        "c": d.y_train.tolist()} for d in data],
            "curves": out, "epochs": list(range(cfg["epochs"] + 1)),
            "snapshot_epochs": list(cfg["snapshot_epochs"]), "engine_seconds": timings}


def summary(data: dict) -> dict[str, Any]:
    """Final test accuracy per (dataset, optimizer, width, lam), and each dataset's best lam."""
    cfg, acc = data["cfg"], data["curves"]["test_accuracy"]  # (O, W, G, L, R)
    rows, best = [], {}
    for g, ds in enumerate(DATASETS):
        for o, opt in enumerate(cfg["optimizers"]):
            for w, width in enumerate(cfg["widths"]):
                a = acc[o, w, g, :, -1]
                rows.append({"dataset": ds, "optimizer": opt, "width": width,
                             "test_accuracy": [round(float(v), 4) for v in a]})
                best[f"{ds}/{opt}/{width}"] = {"best_lam": cfg["lams"][int(np.nanargmax(a))],
                                               "best_test_accuracy": float(np.nanmax(a)),
                                               "test_accuracy_lam0": float(a[0]),
                                               "test_accuracy_max_lam": float(a[-1])}
    return {"rows": rows, "best": best}


def _payload(data: dict) -> dict[str, Any]:
    cfg = data["cfg"]
    blob = base64.b64encode(zlib.compress(data["cube"].tobytes(), 9)).decode("ascii")
    cur = {k: np.round(v.astype(np.float64), 4).tolist() for k, v in data["curves"].items()
           if k != "diverged"}
    return {"datasets": list(DATASETS), "lams": cfg["lams"], "widths": cfg["widths"],
            "optimizers": [OPTIMIZERS[o][0] for o in cfg["optimizers"]],
            "snapshots": data["snapshot_epochs"], "grid": cfg["grid"], "boxes": data["boxes"],
            "points": [{k: np.round(np.asarray(v, dtype=float), 3).tolist() if k != "c" else v
                        for k, v in p.items()} for p in data["points"]],
            "curves": cur, "cube": blob}


_SCRIPT = r"""
const D = JSON.parse(document.getElementById('pg-data').textContent);
const $ = id => document.getElementById(id);
let CUBE = null;
const G = D.grid, S = D.snapshots.length, NW = D.widths.length, NO = D.optimizers.length,
      NL = D.lams.length;
function opts(sel, names) { names.forEach((n, i) => { const o = document.createElement('option');
  o.value = i; o.textContent = n; sel.appendChild(o); }); }
opts($('dataset'), D.datasets); opts($('optimizer'), D.optimizers);
opts($('width'), D.widths.map(w => '2 x ' + w));
$('lam').max = NL - 1; $('epoch').max = S - 1; $('epoch').value = S - 1;
$('lam').value = Math.min(NL - 1, Math.floor(NL / 2));
function state() { return {g: +$('dataset').value, l: +$('lam').value, o: +$('optimizer').value,
  w: +$('width').value, s: +$('epoch').value}; }
function color(p) { // orange (class 0) -> white -> blue (class 1), like the Playground
  const t = p / 255; const a = [245, 147, 34], b = [8, 119, 189];
  const m = t < 0.5 ? 1 - 2 * t : 2 * t - 1, c = t < 0.5 ? a : b;
  return [255 + (c[0] - 255) * m, 255 + (c[1] - 255) * m, 255 + (c[2] - 255) * m]; }
function drawBoundary(st) {
  const cv = $('boundary'), ctx = cv.getContext('2d'), W = cv.width;
  const off = ((((st.g * NL + st.l) * NO + st.o) * NW + st.w) * S + st.s) * G * G;
  const img = ctx.createImageData(G, G);
  for (let i = 0; i < G * G; i++) { const c = color(CUBE[off + i]);
    img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2];
    img.data[4 * i + 3] = 255; }
  const tmp = document.createElement('canvas'); tmp.width = G; tmp.height = G;
  tmp.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true; ctx.drawImage(tmp, 0, 0, W, W);
  const [x0, x1, y0, y1] = D.boxes[st.g], P = D.points[st.g];
  for (let i = 0; i < P.x.length; i++) {
    const px = (P.x[i] - x0) / (x1 - x0) * W, py = (y1 - P.y[i]) / (y1 - y0) * W;
    ctx.beginPath(); ctx.arc(px, py, 3, 0, 2 * Math.PI);
    ctx.fillStyle = P.c[i] ? '#0877bd' : '#f59322'; ctx.fill();
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 1; ctx.stroke(); } }
function drawLoss(st) {
  const cv = $('loss'), ctx = cv.getContext('2d'), W = cv.width, H = cv.height;
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, H);
  const tr = D.curves.train_loss[st.o][st.w][st.g][st.l],
        te = D.curves.test_loss[st.o][st.w][st.g][st.l];
  const all = tr.concat(te).filter(v => v !== null && isFinite(v) && v > 0);
  const lo = Math.log10(Math.min(...all)), hi = Math.log10(Math.max(...all)) + 1e-9;
  const X = i => 40 + i / (tr.length - 1) * (W - 50), Y = v => 10 + (hi - Math.log10(v)) / (hi - lo) * (H - 40);
  ctx.strokeStyle = '#ccc'; ctx.strokeRect(40, 10, W - 50, H - 40);
  ctx.fillStyle = '#333'; ctx.font = '11px sans-serif';
  ctx.fillText(Math.pow(10, hi).toPrecision(2), 2, 18); ctx.fillText(Math.pow(10, lo).toPrecision(2), 2, H - 30);
  ctx.fillText('epoch', W / 2, H - 5);
  [[tr, '#888', [4, 3]], [te, '#000', []]].forEach(([v, c, d]) => { ctx.beginPath();
    ctx.setLineDash(d); ctx.strokeStyle = c; ctx.lineWidth = 1.5; let on = false;
    v.forEach((y, i) => { if (y === null || !(y > 0)) return;
      if (on) ctx.lineTo(X(i), Y(y)); else { ctx.moveTo(X(i), Y(y)); on = true; } });
    ctx.stroke(); });
  ctx.setLineDash([]); const e = D.snapshots[st.s]; ctx.strokeStyle = '#d33';
  ctx.beginPath(); ctx.moveTo(X(e), 10); ctx.lineTo(X(e), H - 30); ctx.stroke(); }
function redraw() {
  if (!CUBE) return; const st = state(), e = D.snapshots[st.s];
  $('lam-v').textContent = D.lams[st.l]; $('epoch-v').textContent = e;
  const c = D.curves, k = [st.o, st.w, st.g, st.l];
  const at = n => c[n][k[0]][k[1]][k[2]][k[3]][e];
  $('stats').textContent = 'epoch ' + e + ': train loss ' + (+at('train_loss')).toPrecision(3) +
    ', test loss ' + (+at('test_loss')).toPrecision(3) + ', train acc ' +
    (+at('train_accuracy')).toFixed(3) + ', test acc ' + (+at('test_accuracy')).toFixed(3);
  drawBoundary(st); drawLoss(st); document.body.dataset.drawn = JSON.stringify(st); }
['dataset', 'lam', 'optimizer', 'width', 'epoch'].forEach(id => $(id).addEventListener('input', redraw));
(async () => {
  const bin = Uint8Array.from(atob(D.cube), ch => ch.charCodeAt(0));
  const ds = new Blob([bin]).stream().pipeThrough(new DecompressionStream('deflate'));
  CUBE = new Uint8Array(await new Response(ds).arrayBuffer());
  document.body.dataset.ready = '1'; redraw(); })();
"""


def playground_html(data: dict, reading: list[str] | None = None) -> str:
    """The self-contained page (no external resource of any kind)."""
    from wdlab.report.html import esc, safe_json

    cfg = data["cfg"]
    setting = (f"{len(DATASETS)} datasets x {len(cfg['lams'])} λ x {len(cfg['optimizers'])} "
               f"optimizers x {len(cfg['widths'])} widths = "
               f"{len(DATASETS) * len(cfg['lams']) * len(cfg['optimizers']) * len(cfg['widths'])}"
               f" networks 2 → w → w → 2 (tanh), cross-entropy, batch {cfg['batch_size']}, "
               f"{cfg['epochs']} epochs; Adam/AdamW lr 0.01, SGD lr 0.1 momentum "
               f"{cfg['momentum']}; λ is each optimizer's weight_decay (L2: g ← g + λw; AdamW: "
               f"w ← w − lr·λ·w); biases not decayed.")
    body = "".join(f"<p>{esc(p)}</p>" for p in (reading or []))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
        "connect-src blob: data:\">"
        "<title>wdlab playground: weight decay</title><style>body{font:14px sans-serif;"
        "margin:16px;max-width:900px}label{display:inline-block;margin:4px 12px 4px 0}"
        "canvas{border:1px solid #ccc;margin:4px}</style></head><body>"
        "<h1>Weight decay playground</h1>"
        f"<p>{esc(setting)}</p>"
        "<div><label>dataset <select id='dataset'></select></label>"
        "<label>optimizer <select id='optimizer'></select></label>"
        "<label>width <select id='width'></select></label></div>"
        "<div><label>λ <input id='lam' type='range' min='0' step='1'> <b id='lam-v'></b></label>"
        "<label>epoch <input id='epoch' type='range' min='0' step='1'> <b id='epoch-v'></b>"
        "</label></div>"
        "<div><canvas id='boundary' width='400' height='400'></canvas>"
        "<canvas id='loss' width='420' height='260'></canvas></div>"
        "<p id='stats'></p><p>Background: p(class 1 | x) of the selected network (blue = 1, "
        "orange = 0); points: the training set. Loss: train dashed grey, test solid black, "
        "red line = the epoch shown.</p>"
        f"{body}"
        f"<script type='application/json' id='pg-data'>{safe_json(_payload(data))}</script>"
        f"<script>{_SCRIPT}</script></body></html>")


def reading(data: dict) -> list[str]:
    """Plain-language reading from the numbers: per dataset, where weight decay helps."""
    cfg, acc = data["cfg"], data["curves"]["test_accuracy"][..., -1]  # (O, W, G, L)
    lams, out = cfg["lams"], []
    for g, ds in enumerate(DATASETS):
        parts = []
        for o, opt in enumerate(cfg["optimizers"]):
            a = acc[o, :, g, :]  # (W, L)
            w, li = np.unravel_index(int(np.nanargmax(a)), a.shape)
            parts.append(f"{OPTIMIZERS[opt][0]}: best test accuracy {a[w, li]:.3f} at λ = "
                         f"{lams[li]:g}, width {cfg['widths'][w]} (λ = 0: {np.nanmax(a[:, 0]):.3f}; "
                         f"λ = {lams[-1]:g}: {np.nanmax(a[:, -1]):.3f})")
        out.append(f"{ds}: " + "; ".join(parts) + ".")
    return out


def run_playground(*, out: Path | str | None = None, force: bool = False, report: bool = True,
                   reduced: bool = False, epochs: int | None = None, device: str = "cpu",
                   dtype: str = "float32") -> Path:
    """Train the playground and write playground.html (+ json summary, figure, manifest)."""
    import torch

    from wdlab.store import RunDir, default_run_dir, provenance, write_json, write_text

    cfg = playground_config(reduced=reduced, epochs=epochs)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"--dtype: expected float32 or float64, got {dtype!r}")
    path = Path(out) if out is not None else default_run_dir("playground")
    run = RunDir(path, force=force)
    run.create()
    run.manifest({"kind": "reproduce", "status": "running", "config": cfg,
                  "provenance": provenance(device)})
    t0 = time.perf_counter()
    data = train_playground(cfg, dtype=getattr(torch, dtype), device=device)
    train_s = time.perf_counter() - t0
    paras = reading(data)
    html = playground_html(data, paras)
    write_text(path / "playground.html", html)
    summ = summary(data)
    write_json(path / "playground.json", {"reading": paras, "train_seconds": train_s,
                                          "engine_seconds": data["engine_seconds"],
                                          "html_bytes": len(html.encode()), **summ})
    fig = playground_figure(data)
    run.figure("playground", fig, formats=("png",))
    import matplotlib.pyplot as plt

    plt.close(fig)
    run.manifest({"kind": "reproduce", "status": "complete", "config": cfg,
                  "provenance": provenance(device), "reading": paras,
                  "files": sorted(str(p.relative_to(path)) for p in path.rglob("*")
                                  if p.is_file() and not p.name.startswith("."))})
    run.release()
    return path


def playground_figure(data: dict, width_index: int = -1, snapshot: int = -1):
    """Static figure: final decision functions, rows = optimizer, columns = dataset x 3 lams."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, cube = data["cfg"], data["cube"]  # (G, L, O, W, S, n*n)
    n = cfg["grid"]
    lam_idx = sorted({0, len(cfg["lams"]) // 2, len(cfg["lams"]) - 1})
    n_opt = len(cfg["optimizers"])
    fig, axes = plt.subplots(n_opt, len(DATASETS) * len(lam_idx), squeeze=False,
                             figsize=(1.2 * len(DATASETS) * len(lam_idx), 1.35 * n_opt))
    for o in range(n_opt):
        for g in range(len(DATASETS)):
            for j, li in enumerate(lam_idx):
                ax = axes[o][g * len(lam_idx) + j]
                img = cube[g, li, o, width_index, snapshot].reshape(n, n) / 255.0
                x0, x1, y0, y1 = data["boxes"][g]
                ax.imshow(img, cmap="RdBu", vmin=0, vmax=1, extent=(x0, x1, y0, y1))
                p = data["points"][g]
                ax.scatter(p["x"], p["y"], c=p["c"], cmap="RdBu", vmin=-0.3, vmax=1.3, s=2,
                           edgecolors="white", linewidths=0.2)
                ax.set_xticks([])
                ax.set_yticks([])
                if o == 0:
                    ax.set_title(f"{DATASETS[g]}\nλ={cfg['lams'][li]:g}", fontsize=7)
                if g == 0 and j == 0:
                    ax.set_ylabel(OPTIMIZERS[cfg["optimizers"][o]][0], fontsize=7)
    fig.suptitle(f"Playground: p(class 1 | x) (blue = 1, red = 0) at epoch "
                 f"{data['snapshot_epochs'][snapshot]}, "
                 f"width 2x{cfg['widths'][width_index]}", fontsize=9)
    fig.tight_layout()
    return fig


def payload_json(data: dict) -> str:
    """The embedded JSON (for size checks)."""
    return json.dumps(_payload(data))
