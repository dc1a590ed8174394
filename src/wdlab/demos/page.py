"""A demo's page, assembled once: a section (heading, reading, one table, one embedded PNG)
and the self-contained page around it (no script, no network).

Every user-facing string is escaped here; ``rows`` are the caller's ``<tr>`` cells, built
with ``esc`` on each value.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from wdlab.report.html import esc

TABLE = "<table border='1' cellspacing='0' cellpadding='3'>"


def section(section_id: str, heading: str, *, paras: Sequence[str], head: Sequence[str],
            rows: str, png: bytes, alt: str, intro: str = "", after_table: str = "") -> str:
    """``<section>``: the heading, ``intro`` (HTML), the reading (one ``<p>`` per paragraph),
    the table (``head`` cells over ``rows``), ``after_table`` (HTML) and the figure."""
    img = base64.b64encode(png).decode("ascii")
    return (f"<section id='{esc(section_id)}'><h2>{esc(heading)}</h2>{intro}"
            + "".join(f"<p>{esc(p)}</p>" for p in paras)
            + TABLE + "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"
            + rows + "</table>" + after_table
            + f"<img alt='{esc(alt)}' src='data:image/png;base64,{img}' "
            "style='max-width:100%'></section>")


def page(title: str, body: str) -> str:
    """The whole page: ``<!doctype html>``, a UTF-8 head with ``title``, ``body`` (HTML)."""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{esc(title)}</title></head><body>{body}</body></html>")


def write_tables(run_dir, tables: dict) -> None:
    """Write each ``name -> DataFrame`` as ``run_dir/name`` (``wdlab.store.write_table``)."""
    from pathlib import Path

    from wdlab.store import write_table

    for name, df in tables.items():
        write_table(Path(run_dir) / name, df)


def figure_png(fig, path, dpi: int = 100) -> bytes:
    """Write ``fig`` as a PNG at ``path`` (atomically, ``wdlab.store.save_png``), close it,
    and return the bytes to embed."""
    import matplotlib.pyplot as plt

    from wdlab.store import save_png

    try:
        return save_png(fig, path, dpi=dpi)
    finally:
        plt.close(fig)
