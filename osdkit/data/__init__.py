"""Recordings in, windows out: osdbData (reading and cleaning OSDB files; the 25 Hz / 125-sample
datapoint constants), osdbFilters (eventFilters), osdbSplit (train / validation / test and k-fold by
user, augmentation), windowing (windows, labels, the app's movement gate), realData (readers of real
daily-life recordings and real OSDB events)."""
