"""wdlab.cli._common.heavy_imports: no cyclic GC while a fresh process loads torch, then the
loaded objects frozen out of later collections; a process that has torch is left alone."""

from __future__ import annotations

import gc
import subprocess
import sys

from wdlab.cli._common import heavy_imports

FRESH = """
import gc, sys
from wdlab.cli._common import heavy_imports
assert "torch" not in sys.modules and gc.isenabled() and gc.get_freeze_count() == 0
with heavy_imports():
    assert not gc.isenabled()
    import torch
assert gc.isenabled(), "the collector must be back on"
assert gc.get_freeze_count() > 10000, gc.get_freeze_count()
try:
    with heavy_imports():  # torch loaded: nothing changes, even on an error
        assert gc.isenabled()
        raise KeyError("x")
except KeyError:
    pass
assert gc.isenabled()
print("ok")
"""


def test_fresh_process_freezes_after_loading_torch():
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_loaded_process_is_left_alone():
    import torch  # noqa: F401  (as in any test process)

    frozen = gc.get_freeze_count()
    with heavy_imports():
        assert gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
