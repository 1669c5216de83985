"""The convulsion check: the run's models on simulated tonic-clonic seizures of people never trained on.

The test split of the default run holds only about ten tonic-clonic seizures with 15-30 s convulsions,
too few to tell 80 % from 95 %. With `evaluation.convulsionCheckUsers` > 0 the test step simulates that
many more users (other random people than any in the database: their own seed stream and user ids from
CHECK_FIRST_USER_ID), each with SEIZURES_PER_USER tonic-clonic seizures, and replays every model variant
on them as the app runs it (movement gate, threshold, the escalation: nnTester.evaluate_windows).
Reported as convulsionMetrics' summaries (ALARM before the convulsion ends, latency from its onset) for
ML alone, the OSD algorithm and both combined (printed by reports.plots.compare_convulsion_check). The
events live in a temporary file only: nothing is kept on disk, and nothing here can reach training,
validation or the alarm settings.
"""
import functools
import tempfile
from pathlib import Path

from osdkit.data import osdbData, windowing
from osdkit.sim import osdbSim

SEIZURES_PER_USER = 2
CHECK_FIRST_USER_ID = 900001
CHECK_FIRST_EVENT_ID = 900000
CHECK_STREAM = 1  # the users' seed is [simulation seed, CHECK_STREAM]: never the database's own people


@functools.lru_cache(maxsize=1)
def check_events(n_users, seed):
    """The check's tonic-clonic events (a tuple of osdbData Events) of n_users simulated users drawn from
    `seed`, without the database's file quirks (quirk_rate 0); simulated once per run, however many
    folds test on them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "convulsion_check.json"
        osdbSim.simulate_database(path, n_users=n_users, seizures_per_user=SEIZURES_PER_USER, nda_per_user=0,
                                  false_alarms_per_user=0, seed=[seed, CHECK_STREAM], quirk_rate=0.0,
                                  seizure_sub_type="Tonic-Clonic", first_user_id=CHECK_FIRST_USER_ID,
                                  first_event_id=CHECK_FIRST_EVENT_ID)
        events, _ = osdbData.read_osdb_file(path)
    return tuple(events)


def check_windows(run):
    """(events, WindowSet) of the check with the run's window settings, or None when it is off."""
    n_users = run.evaluation.convulsionCheckUsers
    if not n_users:
        return None
    events = check_events(n_users, run.osdb.simulation.seed)
    windows = windowing.make_windows(events, run.model.sampleFreq * run.model.bufferSeconds, run.data.step,
                                     run.data.labelMode, run.data.minOverlapS)
    return events, windows


def check_summary(results, events):
    """{users, events, ml, osd, combined} from appEvaluation's results on the check's events: each column's
    convulsionMetrics summary of the 15-30 s convulsions."""
    return {"users": len({e.user_id for e in events}), "events": len(events), **results["convulsion_15_30s"]}
