"""Eager model -> verified .ptl / .pte: exportCore (torch.export, lowering, running and verifying,
after ExecuTorch's examples/xnnpack), legacyPtl and legacyPtlOps (reading legacy mobile .ptl files),
stagedPte (the one policy of every .pte writer: staged, phone-checked, published with its app entry)."""
