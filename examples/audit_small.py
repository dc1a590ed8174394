"""The README's audit example: a bag-of-embeddings classifier with three weight-decay bugs.

    wdlab audit examples/audit_small.py:make --steps-per-epoch 390 --epochs 30 --probe
"""

import torch
from torch import nn


def make():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(100, 16), nn.LayerNorm(16), nn.Linear(16, 2))
    optimizer = torch.optim.Adam([                    # 1. Adam's weight_decay is coupled L2
        {"params": model[:2].parameters()},           # 2. LayerNorm and embedding decayed
        {"params": model[2].parameters(), "weight_deacy": 0.0},  # 3. typo: still decayed
    ], lr=1e-3, weight_decay=0.05)
    return model, optimizer
