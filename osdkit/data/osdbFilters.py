"""The earlier pipeline's `eventFilters` and `osdbConfig.invalidEvents` over OSDB events."""
from collections import Counter

import numpy as np

from osdkit.data.osdbData import norm_key

_FILTER_LISTS = {  # eventFilters key -> (Event attribute, include?)
    "includeUserIds": ("user_id", True), "excludeUserIds": ("user_id", False),
    "includeTypes": ("type", True), "excludeTypes": ("type", False),
    "includeSubTypes": ("sub_type", True), "excludeSubTypes": ("sub_type", False),
    "includeDataSources": ("source", True), "excludeDataSources": ("source", False),
}
_FILTER_FLAGS = ("includeText", "excludeText", "require3dData", "requireHrData", "requireO2SatData")


def filter_events(events, event_filters, invalid_events=None):
    """Apply the earlier pipeline's `eventFilters` and drop the ids in `invalid_events` (osdbConfig's list).

    Lists compare case-insensitively as text (39 matches "39"; a missing subType or dataSourceName
    matches "null"); empty or absent lists do not filter. Text filters look for substrings of `desc`,
    ignoring case. require3dData needs acc3d, requireHrData at least one valid hr. Keys starting with "_"
    or ending in "_desc" are ignored; other unknown keys, and a true requireO2SatData (O2 saturation is
    not read), raise ValueError. Returns (kept events, {reason: events dropped, "kept": n}); an event
    counts under the first rule that drops it: invalid, then the lists in key order, text, data."""
    cfg = {k: v for k, v in (event_filters or {}).items() if not (k.startswith("_") or k.endswith("_desc"))}
    unknown = set(cfg) - set(_FILTER_LISTS) - set(_FILTER_FLAGS)
    if unknown:
        raise ValueError(f"unknown eventFilters keys: {sorted(unknown)}")
    if cfg.get("requireO2SatData"):
        raise ValueError("requireO2SatData is not supported: O2 saturation is not read")
    invalid = {norm_key(i) for i in invalid_events or ()}
    rules = [("invalid_event", lambda e: norm_key(e.id) in invalid)]
    for key, (attr, include) in _FILTER_LISTS.items():
        names = {norm_key(v) for v in cfg.get(key) or []}
        if names:
            rules.append((key, lambda e, a=attr, n=names, inc=include: (norm_key(getattr(e, a)) in n) != inc))
    include_text = [t.lower() for t in cfg.get("includeText") or []]
    exclude_text = [t.lower() for t in cfg.get("excludeText") or []]
    if include_text:
        rules.append(("includeText", lambda e: not any(t in e.desc.lower() for t in include_text)))
    if exclude_text:
        rules.append(("excludeText", lambda e: any(t in e.desc.lower() for t in exclude_text)))
    if cfg.get("require3dData"):
        rules.append(("require3dData", lambda e: e.acc3d is None))
    if cfg.get("requireHrData"):
        rules.append(("requireHrData", lambda e: not np.isfinite(e.hr).any()))
    kept, stats = [], Counter()
    for event in events:
        reason = next((name for name, drops in rules if drops(event)), None)
        if reason is None:
            kept.append(event)
        else:
            stats[reason] += 1
    stats["kept"] = len(kept)
    return kept, dict(stats)
