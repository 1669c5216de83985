"""The model: deepEpiCnn (the architecture and its input normalisation) and checkpoints (reading
.pt checkpoints, ours and the earlier pipeline's, into it)."""
