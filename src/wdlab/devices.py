"""One device check for every entry point: the CLI commands, the sweep driver, the estimator.

A device is ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device must exist on this machine.
"""

from __future__ import annotations

import torch


def check_device(device, field: str = "device") -> str:
    """Return ``device`` as a string, or raise a one-line ValueError naming ``field``."""
    text = str(device)
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    if not (text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit())):
        raise ValueError(f"{field}: expected 'cpu' or 'cuda[:N]', got {shown}")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"{field}: {shown} requested but CUDA is not available here")
        index, count = (int(text[5:]) if ":" in text else 0), torch.cuda.device_count()
        if index >= count:
            raise ValueError(f"{field}: {shown} requested but this machine has {count} CUDA "
                             f"device(s)")
    return text
