"""Closed forms and theory: the ridge path (one batched, weighted closed form), AdamW's
l-inf limit, ridge's asymptotic risk and the exact error decomposition. Pure
torch/numpy."""
