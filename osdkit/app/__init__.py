"""What the OSD Android app does, on a PC: osdAlgorithm (its spectral algorithm, the ML result, the
voting and the alarm escalation), appEvaluation (the one datapoint timeline and the app-escalated
figures every report uses), evaluation (single-window and per-event metrics), appIndex (the app's
model index entry)."""
