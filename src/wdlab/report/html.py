"""HTML pieces of the report: escaping, script-safe JSON, tables, the page shell.

Every string that reaches the page goes through ``esc`` (text and attributes) or ``safe_json``
(inside <script>), so a column, file or label named ``<img src=x onerror=alert(1)>`` is shown
literally and never becomes markup.
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np
import pandas as pd

#: No network at all: scripts and styles inline only, images as data: URIs.
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
       "style-src 'unsafe-inline'; img-src data:; font-src data:")


def esc(value: Any) -> str:
    """HTML-escape ``str(value)`` for text and quoted attributes (& < > \" ')."""
    return html.escape(str(value), quote=True)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (np.generic,)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def safe_json(obj: Any) -> str:
    """JSON safe inside <script>: ``<``, ``>``, ``&`` and U+2028/9 as \\u escapes (NaN -> null).

    ``</script>`` or ``<!--`` in any string can then never end or alter the script element.
    """
    text = json.dumps(_clean(obj), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return text


def fmt(value: Any) -> str:
    """A number with 4 significant digits; other values as text (not yet escaped)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def table(df: pd.DataFrame, *, table_id: str, sortable: bool = False,
          caption: str = "") -> str:
    """An HTML table; numeric cells carry ``data-v`` (the exact value) for sorting."""
    head = "".join(f'<th scope="col"{" tabindex=0" if sortable else ""}>{esc(c)}</th>'
                   for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                num = float(v)
                data = "" if math.isnan(num) else f' data-v="{num!r}"'
                cells.append(f'<td class="num"{data}>{esc(fmt(v))}</td>')
            else:
                cells.append(f"<td>{esc(fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<table id="{esc(table_id)}"{cls}>{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:0 18px 40px;color:#1d232a;line-height:1.45}
h1{font-size:1.5em;margin:18px 0 4px} h2{font-size:1.15em;margin:26px 0 6px;border-bottom:1px solid #dde}
.meta{color:#555;font-size:.85em} .reading{background:#f4f7fb;border-left:4px solid #3b73b9;
padding:10px 14px;margin:12px 0} pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:260px;
font-size:.8em} table{border-collapse:collapse;font-size:.82em;margin:6px 0}
th,td{border:1px solid #dde;padding:3px 7px} td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#eef2f7} table.sortable th{cursor:pointer;user-select:none}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
.scroll{max-height:420px;overflow:auto;max-width:100%} .chart{width:100%;height:460px}
.wide{overflow-x:auto;max-width:100%} th,td{white-space:nowrap}
.warnings{background:#fff8e6;border-left:4px solid #d99a00;padding:6px 14px;margin:10px 0}
.warnings ul{margin:4px 0;padding-left:18px} .warnings code{font-size:.85em;background:#f3e6c4;
padding:0 4px;border-radius:3px} .ok{color:#1d6b2a} .answers li{margin:3px 0}
.figs{display:flex;flex-wrap:wrap;gap:10px} .figs figure{margin:0;flex:1 1 420px;max-width:100%}
.figs img{max-width:100%;height:auto;border:1px solid #eee} figcaption{font-size:.8em;color:#555}
.heat{display:flex;flex-wrap:wrap;gap:8px} .heat>div{flex:1 1 360px;height:380px}
.slider{display:flex;align-items:center;gap:12px;margin:6px 0} .slider input{flex:1}
details{margin:6px 0}
"""

SCRIPT = r"""
(function(){
  // plotly.js is embedded once, gzipped (4.8 MB -> ~1.5 MB of base64); the browser's own
  // DecompressionStream unpacks it, and an indirect eval defines window.Plotly.
  const gz = document.getElementById('plotly-gz');
  if (!gz) { main(); return; }
  if (typeof DecompressionStream === 'undefined') {
    document.body.insertAdjacentHTML('afterbegin', '<p class="warnings">This browser has no ' +
      'DecompressionStream: the charts cannot load (tables and figures still show).</p>');
    return;
  }
  const bin = atob(gz.textContent.trim()), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  new Response(stream).text().then(function(js){ (0, eval)(js); main(); });
})();
function main(){
  const D = JSON.parse(document.getElementById('report-data').textContent);
  const cfg = {responsive: true, displaylogo: false};
  if (D.validation) {
    Plotly.newPlot('validation-plot', D.validation.data, D.validation.layout, cfg);
    const g = document.getElementById('group-select');
    if (g) g.addEventListener('change', function(){
      const v = g.value;
      const vis = D.validation.data.map(function(t){
        return v === 'all' || t.meta === -1 || String(t.meta) === v; });
      Plotly.restyle('validation-plot', {visible: vis});
    });
  }
  if (D.double_descent) Plotly.newPlot('double-descent-plot', D.double_descent.data,
                                       D.double_descent.layout, cfg);
  if (D.training) {
    const s = document.getElementById('lam-slider'), shown = document.getElementById('lam-value');
    const draw = function(){
      const i = Number(s.value);
      shown.textContent = String(D.training.lams[i]);
      Plotly.react('training-plot', D.training.panels[i], D.training.layout, cfg);
    };
    s.addEventListener('input', draw); draw();
  }
  (D.heatmaps || []).forEach(function(h, i){
    Plotly.newPlot('heatmap-' + i, h.data, h.layout, cfg);
  });
  document.querySelectorAll('table.sortable').forEach(function(t){
    t.querySelectorAll('th').forEach(function(th, col){
      const sort = function(){
        const asc = !th.classList.contains('asc');
        t.querySelectorAll('th').forEach(function(h){ h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        const body = t.tBodies[0], rows = Array.from(body.rows);
        const key = function(r){
          const c = r.cells[col], v = c.getAttribute('data-v');
          return v === null ? c.textContent : Number(v);
        };
        rows.sort(function(a, b){
          const x = key(a), y = key(b);
          const nx = typeof x === 'number', ny = typeof y === 'number';
          let d = nx && ny ? x - y : nx ? -1 : ny ? 1 : String(x).localeCompare(String(y));
          return asc ? d : -d;
        });
        rows.forEach(function(r){ body.appendChild(r); });
      };
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function(e){ if (e.key === 'Enter') sort(); });
    });
  });
}
"""


_GZ_CACHE: dict[str, str] = {}


def answer_block(items: list[str], warnings: list[dict], meta: str, ok: str) -> str:
    """The "How much weight decay?" section: answer lines, a note on what they mean (``meta``,
    already HTML), the named warnings, or the ``ok`` line when there is none. Text is escaped."""
    body = "".join(f"<li>{esc(t)}</li>" for t in items)
    out = ['<section id="answer"><h2>How much weight decay?</h2>',
           f'<ul class="answers">{body}</ul>' if body else "", f'<p class="meta">{meta}</p>']
    if warnings:
        lis = "".join(f'<li><code>{esc(w["code"])}</code> {esc(w["message"])}</li>'
                      for w in warnings)
        out.append(f'<div class="warnings" id="warnings"><b>Warnings</b><ul>{lis}</ul></div>')
    else:
        out.append(f'<p class="ok" id="warnings">{esc(ok)}</p>')
    out.append("</section>")
    return "".join(out)


def packed(js: str) -> str:
    """``js`` gzipped (level 6: 4x faster than 9 for 2% more bytes; mtime 0: the same
    bytes every time) and base64-encoded; kept in memory and on disk (``_cache_dir()``,
    by content hash), since plotly.js is the same megabytes for every report (~0.4 s)."""
    import base64
    import gzip
    import hashlib

    key = hashlib.sha256(js.encode("utf-8")).hexdigest()[:32]
    if key in _GZ_CACHE:
        return _GZ_CACHE[key]
    path = _cache_dir() / f"js-{key}.gz.b64"
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, ValueError):
        text = base64.b64encode(gzip.compress(js.encode("utf-8"), 6, mtime=0)).decode()
        _save_cache(path, text)
    _GZ_CACHE[key] = text
    return text


def _cache_dir():
    """``$WDLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/wdlab``, else ``~/.cache/wdlab``."""
    import os
    from pathlib import Path

    if os.environ.get("WDLAB_CACHE_DIR"):
        return Path(os.environ["WDLAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "wdlab"


def _save_cache(path, text: str) -> None:
    """Write a cache file atomically; a cache that cannot be written is only slower."""
    import contextlib
    import os
    import tempfile

    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)


def page(*, title: str, body: str, data: dict[str, Any], plotly_js: str) -> str:
    """The whole self-contained page: CSP, style, body, plotly.js (gzipped, base64, unpacked
    by the browser's DecompressionStream), data and the page script."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n{body}\n"
        f'<script type="application/octet-stream" id="plotly-gz">{packed(plotly_js)}</script>\n'
        f'<script type="application/json" id="report-data">{safe_json(data)}</script>\n'
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )
