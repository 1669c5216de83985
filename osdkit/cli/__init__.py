"""What the command lines share: startup (imported first: Ctrl-C while the libraries load), cliUtils
(argument parsing, one-line errors, exit codes, signals), batchConvert (many files per call in worker
processes) and pteConverter (the .pte converters' steps: export, phone check, app entry, index)."""
