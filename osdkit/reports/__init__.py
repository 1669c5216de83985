"""What a run leaves for people to read: plots and result files, the summary over folds (runSummary)
and the model card (modelCard)."""
