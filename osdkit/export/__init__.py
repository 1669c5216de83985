"""Eager model -> verified .ptl / .pte: exportCore (torch.export, lowering, running and verifying,
after ExecuTorch's examples/xnnpack), legacyPtl and legacyPtlOps (reading legacy mobile .ptl files)."""
