"""What the command lines share: cliUtils (argument parsing, one-line errors, exit codes, signals),
batchConvert (many files per call in worker processes) and pteConverter (the .pte converters' steps:
export, phone check, app entry, index)."""
