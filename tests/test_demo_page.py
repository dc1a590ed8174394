"""The demos' one page assembly (wdlab.demos.page): escaped strings, one table, the PNG
embedded byte for byte, a page with no script and no network."""

from __future__ import annotations

import base64
import re

from wdlab.demos.page import page, section


def test_section_escapes_and_embeds_the_png():
    png = bytes(range(256))
    html = page("wdlab <x>", section("s-1", "A & B <i>", paras=["p < q", "r & 's'"],
                                     head=("λ", "a<b"), rows="<tr><td>1</td><td>2</td></tr>",
                                     png=png, alt="it's", intro="<h3>Reading</h3>",
                                     after_table="<p>after</p>"))
    assert html.startswith("<!doctype html><html><head><meta charset='utf-8'><title>"
                           "wdlab &lt;x&gt;</title></head><body><section id='s-1'>")
    assert "<h2>A &amp; B &lt;i&gt;</h2><h3>Reading</h3><p>p &lt; q</p>" in html
    assert "<p>r &amp; &#x27;s&#x27;</p>" in html
    assert "<tr><th>λ</th><th>a&lt;b</th></tr><tr><td>1</td><td>2</td></tr></table>" in html
    assert html.count("<table") == 1 and "</table><p>after</p><img alt='it&#x27;s'" in html
    embedded = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)'", html).group(1)
    assert base64.b64decode(embedded) == png
    assert "<script" not in html and "http" not in html
    assert html.endswith("</section></body></html>")
