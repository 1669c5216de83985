"""The simulated OSDB database: osdbSim (users, events, the database file, example windows),
simSensor (a watch's sensor model), simSignals (signal building blocks), simActivities (daily life and
hard negatives), simSeizures (seizure types)."""
