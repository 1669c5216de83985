"""The phone check: phoneEnv (builds the emulated arm64 environment with the app's ExecuTorch runtime),
phoneCheck (runs .pte files there on ARMv8.0 and ARMv8.2 CPUs), phoneGuest (the script that runs
inside the emulator; it imports nothing of ours)."""
