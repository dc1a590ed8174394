"""A small transformer classifier configured with three classic weight-decay bugs.

    wdlab audit examples/audit_buggy.py:make --steps-per-epoch 390 --epochs 30 --probe

1. Adam(weight_decay=...) where AdamW was meant: coupled L2, which Adam normalises away.
2. Every parameter decayed: biases, LayerNorm weights and the embedding too.
3. A misspelled key in the head's param group ("weight_deacy"), silently ignored.
"""

import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, vocab=1000, d=32, classes=10):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.encoder = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=64,
                                                  dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens):
        return self.head(self.norm(self.encoder(self.embed(tokens))).mean(1))


def make():
    torch.manual_seed(0)
    model = Classifier()
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    optimizer = torch.optim.Adam([
        {"params": body},
        {"params": model.head.parameters(), "weight_deacy": 0.0},
    ], lr=1e-3, weight_decay=0.05)
    return model, optimizer
