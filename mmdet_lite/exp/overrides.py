"""Trailing ``KEY VALUE`` overrides of exp fields (``head.nms.keep_top_k 50``).

A value typed on the command line is cast to the type of the value it replaces: ``int``, ``float``,
``str``; ``bool`` from ``True/False/true/false/1/0``; lists and tuples from ``416,416``,
``[416, 416]`` or ``(416,416)`` with every element cast like the old elements (a tuple keeps its
length: ``test_size`` is always ``(h, w)``); dicts from a literal merged key by key into the old
dict; ``None`` fields take any Python literal (``ast.literal_eval``), else the raw string. The
literal ``None`` sets any field to ``None`` (optional fields: ``seed``, ``warmup.epochs``, a derived
``head.conv_feat.feat_out``, an activation).
"""
import ast
import copy
import difflib

from mmdet_lite.utils.errors import UserError

__all__ = ["apply_overrides", "cast_value", "dotted_keys"]

_TRUE = ("true", "1")
_FALSE = ("false", "0")


def dotted_keys(fields, prefix=""):
    """Every key an override may name: the fields and, recursively, the keys of dict fields."""
    keys = []
    for name, value in fields.items():
        key = f"{prefix}{name}"
        keys.append(key)
        if isinstance(value, dict):
            keys.extend(dotted_keys(value, prefix=f"{key}."))
    return keys


def _literal(text):
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _parse_sequence(text):
    text = text.strip()
    if text[:1] in "[(":
        value = _literal(text)
        if not isinstance(value, (list, tuple)):
            raise ValueError("not a list literal")
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


def _element_template(old, index, count):
    if not old:
        return None
    return old[index] if len(old) == count else old[0]


def cast_value(old, new):
    """``new`` (a command-line string, or an element of a parsed literal) as the type of ``old``.

    Raises ``ValueError`` with the reason when ``new`` does not fit.
    """
    if old is None or new is None:
        return _literal(new) if isinstance(new, str) else new
    if isinstance(new, str) and new.strip() == "None":
        return None
    if isinstance(old, bool):
        if isinstance(new, bool):
            return new
        word = str(new).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("expected a boolean: True/False/true/false/1/0")
    if isinstance(old, int):
        if isinstance(new, int) and not isinstance(new, bool):
            return new
        if isinstance(new, str):
            try:
                return int(new.strip())
            except ValueError:
                pass
        raise ValueError("expected an integer")
    if isinstance(old, float):
        if isinstance(new, (int, float)) and not isinstance(new, bool):
            return float(new)
        if isinstance(new, str):
            try:
                return float(new.strip())
            except ValueError:
                pass
        raise ValueError("expected a number")
    if isinstance(old, str):
        return new if isinstance(new, str) else str(new)
    if isinstance(old, (list, tuple)):
        items = _parse_sequence(new) if isinstance(new, str) else new
        if not isinstance(items, (list, tuple)):
            raise ValueError("expected a list such as 1,2 or [1, 2]")
        if isinstance(old, tuple) and old and len(items) != len(old):
            raise ValueError(f"expected {len(old)} values")
        cast = [cast_value(_element_template(old, i, len(items)), item)
                for i, item in enumerate(items)]
        return type(old)(cast)
    if isinstance(old, dict):
        items = _literal(new) if isinstance(new, str) else new
        if not isinstance(items, dict):
            raise ValueError("expected a dict literal such as \"{'key': 1}\"")
        merged = copy.deepcopy(old)
        for key, item in items.items():
            if key not in old:
                raise ValueError(f"unknown key {key!r}; valid keys: {', '.join(map(str, old))}")
            merged[key] = cast_value(old[key], item)
        return merged
    value = _literal(new) if isinstance(new, str) else new
    if not isinstance(value, type(old)):
        raise ValueError(f"expected a {type(old).__name__} literal")
    return value


def _unknown_key(key, fields, owner):
    matches = difflib.get_close_matches(key, dotted_keys(fields), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(matches)}?" if matches else ""
    return UserError(f"unknown exp key '{key}' for {owner}{hint}")


def _value_tokens(node, tokens):
    """How many of ``tokens`` make the value of a field: a tuple of ``n > 1`` elements may be
    typed as ``n`` separate numbers (``input_size 192 192``), anything else is one token."""
    count = len(node) if isinstance(node, tuple) else 1
    numbers = [isinstance(_literal(t), (int, float)) for t in tokens[:count]]
    if count > 1 and len(numbers) == count and all(numbers):
        return count
    return 1


def apply_overrides(exp, opts):
    """Apply ``[KEY, VALUE, KEY, VALUE, ...]`` to ``exp`` (an exp object) in order; the value of a
    tuple field may also be its elements as separate items (``input_size 192 192``).

    Raises ``UserError`` for a key without a value, an unknown key (naming close matches) or a
    value that does not fit the field's type.
    """
    opts = [str(item) for item in opts]
    index = 0
    while index < len(opts):
        key = opts[index]
        if index + 1 >= len(opts):
            raise UserError(f"overrides must be KEY VALUE pairs, got {len(opts)} items: "
                            f"{' '.join(opts)}")
        fields = exp.fields()
        parts = key.split(".")
        parent, node = None, fields
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                raise _unknown_key(key, fields, exp.exp_name)
            parent, node = node, node[part]
        taken = _value_tokens(node, opts[index + 1:])
        text = ",".join(opts[index + 1:index + 1 + taken])
        index += 1 + taken
        try:
            value = cast_value(node, text)
        except ValueError as err:
            raise UserError(f"bad value for exp key '{key}': {text!r} ({err})") from None
        if len(parts) == 1:
            setattr(exp, key, value)
        else:
            parent[parts[-1]] = value
