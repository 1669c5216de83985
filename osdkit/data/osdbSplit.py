"""Split OSDB events into train / validation / test (by event or by user, stratified) and augment seizures.

Splits: test_prop of each class goes to test, validation_prop of the rest to validation; with by_user
every user's events stay in one split, and users are split per stratum (with or without seizures, and
per data source, so real people of each dataset are split like the simulated users);
`test_prop_by_source` gives some data sources (dataSourceName, e.g. "wisdm_watch") their own test share. Augmentation (training seizure events only) follows the earlier
pipeline: phase-shifted re-slicing, then noise added to x, y, z.
"""
from dataclasses import replace

import numpy as np

from osdkit.data.osdbData import MAX_DP_GAP_S, SAMPLE_RATE_HZ, SAMPLES_PER_DP, norm_key


def _check_prop(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def _user_units(events, idx):
    """Per user (sorted by key): (indices, weight, stratum); weight = seizure events, else events; stratum
    = (has seizures, data source of the user's first event)."""
    groups = {}
    for i in idx:
        groups.setdefault(norm_key(events[i].user_id), []).append(i)
    units = []
    for key in sorted(groups):
        members = groups[key]
        n_seizures = sum(events[i].label == 1 for i in members)
        units.append((members, n_seizures or len(members), (n_seizures > 0, norm_key(events[members[0]].source))))
    return units


def _pick(events, idx, prop, rng, by_user, prop_by_source=None):
    """Choose about `prop` of the events at `idx`, per label (by event) or per stratum of users (with the
    stratum's data source's share from prop_by_source when it has one)."""
    chosen = []
    if not by_user:
        for label in (0, 1):
            group = [i for i in idx if events[i].label == label]
            chosen.extend(rng.permutation(group)[:int(np.floor(prop * len(group) + 0.5))].tolist())
    else:
        units = _user_units(events, idx)
        shares = {norm_key(k): v for k, v in (prop_by_source or {}).items()}
        for key in sorted({u[2] for u in units}):
            stratum = [u for u in units if u[2] == key]
            target, total = shares.get(key[1], prop) * sum(u[1] for u in stratum), 0
            for k in rng.permutation(len(stratum)):
                members, weight, _ = stratum[k]
                if total + weight / 2 < target:
                    chosen.extend(members)
                    total += weight
    chosen_set = set(chosen)
    return sorted(chosen_set), [i for i in idx if i not in chosen_set]


def split_events(events, test_prop, validation_prop, seed, by_user=False, test_prop_by_source=None):
    """(train, val, test) event lists, stratified by label (seizure or not); deterministic for a seed.

    test_prop of each class goes to test, validation_prop of the rest to val. With by_user every user's
    events go to one split; users are split per stratum (with / without seizures, data source), aiming at
    test_prop (or test_prop_by_source[source]) of the stratum's seizure events (resp. events), which is
    best effort. Lists keep the input order."""
    _check_prop("test_prop", test_prop)
    _check_prop("validation_prop", validation_prop)
    for source, share in (test_prop_by_source or {}).items():
        _check_prop(f"test_prop_by_source[{source!r}]", share)
    rng = np.random.default_rng(seed)
    test, rest = _pick(events, list(range(len(events))), test_prop, rng, by_user, test_prop_by_source)
    val, train = _pick(events, rest, validation_prop, rng, by_user)
    return [events[i] for i in train], [events[i] for i in val], [events[i] for i in test]


def _fold_of(events, k, rng, by_user):
    """Fold number of each event: labels dealt round-robin after a shuffle, or users packed by weight."""
    fold = np.zeros(len(events), dtype=int)
    if not by_user:
        offset = 0
        for label in (0, 1):
            group = rng.permutation([i for i, e in enumerate(events) if e.label == label]).astype(int)
            fold[group] = (offset + np.arange(len(group))) % k
            offset += len(group)
        return fold
    units = _user_units(events, range(len(events)))
    for key in sorted({u[2] for u in units}):
        stratum = [units[j] for j in rng.permutation(len(units)) if units[j][2] == key]
        load = np.zeros(k)
        for members, weight, _ in sorted(stratum, key=lambda u: -u[1]):
            f = int(np.argmin(load))
            fold[members] = f
            load[f] += weight
    return fold


def kfold_splits(events, k, seed, by_user=False, validation_prop=0.0):
    """Yield (train, val, test) for each of k folds; each event (or user) is in exactly one test fold."""
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    _check_prop("validation_prop", validation_prop)
    fold = _fold_of(events, k, np.random.default_rng(seed), by_user)
    for f in range(k):
        test = [i for i in range(len(events)) if fold[i] == f]
        rest = [i for i in range(len(events)) if fold[i] != f]
        val, train = _pick(events, rest, validation_prop, np.random.default_rng([seed, f]), by_user)
        yield [events[i] for i in train], [events[i] for i in val], [events[i] for i in test]


def phase_shifted_copies(event, step):
    """Copies of the event re-sliced at offsets step, 2*step, ... < 125 samples.

    At offset o, new datapoint j holds samples o..124 of datapoint j and 0..o-1 of datapoint j+1, so its
    last-sample time is dp_times[j+1] - (125-o)/25 s and it takes datapoint j+1's alarm state and hr. The
    partial datapoints at both ends are dropped, and so are new datapoints that would span a gap."""
    n = len(event.dp_times)
    if n < 2 or step <= 0:
        return []
    contiguous = np.diff(event.dp_times) <= MAX_DP_GAP_S
    if not contiguous.any():
        return []
    flat, length = event.mag.reshape(-1), (n - 1) * SAMPLES_PER_DP
    copies = []
    for off in range(step, SAMPLES_PER_DP, step):
        acc = None
        if event.acc3d is not None:
            acc = event.acc3d.reshape(-1, 3)[off:off + length].reshape(n - 1, SAMPLES_PER_DP, 3)[contiguous]
        copies.append(replace(
            event, mag=flat[off:off + length].reshape(n - 1, SAMPLES_PER_DP)[contiguous], acc3d=acc,
            dp_times=event.dp_times[1:][contiguous] - (SAMPLES_PER_DP - off) / SAMPLE_RATE_HZ,
            alarm_state=event.alarm_state[1:][contiguous], hr=event.hr[1:][contiguous]))
    return copies


def noisy_copy(event, std_mg, rng):
    """A copy with N(0, std_mg) added to x, y, z and the magnitude recomputed (to the magnitude if no 3-D)."""
    if event.acc3d is None:
        return replace(event, mag=(event.mag + rng.normal(0.0, std_mg, event.mag.shape)).astype(np.float32))
    acc = (event.acc3d + rng.normal(0.0, std_mg, event.acc3d.shape)).astype(np.float32)
    return replace(event, acc3d=acc, mag=np.sqrt(np.square(acc, dtype=np.float64).sum(axis=-1)).astype(np.float32))


def augment_events(events, cfg, rng):
    """Training events plus augmented copies, as the earlier pipeline did; `cfg` is a
    configUtils.DataConfig (dataProcessing).

    phaseAugmentationSources (data sources, e.g. the real daily life "wisdm_watch") first adds the
    phase-shifted copies of every event of those sources (not noised, not counted as seizures below).
    phaseAugmentation (every phaseAugmentationStep samples) runs first on the seizure events, then
    noiseAugmentation: noiseAugmentationFactor noisy copies (noiseAugmentationValue mg) of the seizure
    events and their phase copies, and with noiseAugmentationNegatives one noisy copy of each
    non-seizure event, so that noise alone does not mark a seizure. Copies keep their source's id and
    share its unchanged arrays; originals are not modified."""
    out = list(events)
    seizures = [e for e in events if e.label == 1]
    sources = {norm_key(s) for s in cfg.phaseAugmentationSources}
    if sources:  # more windows of the real recordings: every event of those sources, re-sliced
        out += [c for e in events if norm_key(e.source) in sources
                for c in phase_shifted_copies(e, cfg.phaseAugmentationStep)]
    if cfg.phaseAugmentation:
        shifted = [c for e in seizures for c in phase_shifted_copies(e, cfg.phaseAugmentationStep)]
        out += shifted
        seizures += shifted
    if cfg.noiseAugmentation:
        std = float(cfg.noiseAugmentationValue)
        out += [noisy_copy(e, std, rng) for e in seizures for _ in range(cfg.noiseAugmentationFactor)]
        if cfg.noiseAugmentationNegatives:
            out += [noisy_copy(e, std, rng) for e in events if e.label != 1]
    return out
