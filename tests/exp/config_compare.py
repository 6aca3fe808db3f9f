"""Comparing an exp's view of a config with PaddleDetection's merged YAML, key by key."""


def flatten(value, prefix=""):
    """Nested dicts -> ``{"a.b.c": leaf}``; an empty dict stays a leaf ``{}``."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out or {prefix.rstrip("."): {}}
    return {prefix.rstrip("."): value}


def config_mismatches(ours, theirs, reference="paddle"):
    """Lines naming every flattened key whose value differs or that only one side has."""
    ours, theirs, gone = flatten(ours), flatten(theirs), "<missing>"
    return [f"{key}: exp {ours.get(key, gone)!r} != {reference} {theirs.get(key, gone)!r}"
            for key in sorted(set(ours) | set(theirs))
            if ours.get(key) != theirs.get(key) or (key in ours) != (key in theirs)]
