"""Generic Paddle -> PyTorch state-dict conversion driven by an ordered table of renaming rules.

A rule is ``(regex, replacement)``. Every rule is applied in order with ``re.sub`` to the result of
the previous ones, so rules compose (rename a prefix in one rule, a suffix in another). A
replacement of ``None`` drops a key that matches (e.g. an alias that Paddle saves twice). After the
rules,
Paddle's BatchNorm buffer names ``_mean`` / ``_variance`` become ``running_mean`` / ``running_var``,
and weights of our ``nn.Linear`` modules are transposed (Paddle stores them as [in, out]).
"""
import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from mmdet_lite.utils.errors import UserError

_BN_SUFFIXES = ((re.compile(r"\._mean$"), ".running_mean"),
                (re.compile(r"\._variance$"), ".running_var"))
_ALWAYS_OPTIONAL = re.compile(r"(^|\.)num_batches_tracked$")
_BACKBONE_PREFIX = "backbone."
# DCNv2 offset/mask convs: ImageNet classifiers have none; Paddle (and our DeformableConvV2)
# start them at zero, i.e. a plain convolution.
IMAGENET_ZERO_INIT = (r"(^|\.)conv_offset\.(weight|bias)$",)
# Past this share of unmatched model tensors the file is reported as another model's checkpoint.
_OTHER_MODEL_SHARE = 0.5


@dataclass
class ConversionReport:
    """What a conversion did, key by key.

    ``filled``: our keys that received a tensor (with their Paddle source in ``sources``);
    ``transposed``: our ``nn.Linear`` weights that were transposed; ``dropped``: Paddle keys removed
    by a rule; ``unused``: Paddle keys with no destination; ``missing``: our keys left unfilled;
    ``zero_filled``: our keys absent from ImageNet weights that start as zeros (``only_backbone``
    with ``backbone_zero_init``: DCN offsets). ``origin`` names the source framework in messages.
    """

    filled: list = field(default_factory=list)
    sources: dict = field(default_factory=dict)
    transposed: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    unused: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    zero_filled: list = field(default_factory=list)
    origin: str = "Paddle"

    def summary(self):
        """One line of counts, for logs."""
        zeros = f", {len(self.zero_filled)} initialised to zero" if self.zero_filled else ""
        return (f"{len(self.filled)} tensors converted ({len(self.transposed)} transposed), "
                f"{len(self.dropped)} {self.origin} tensors dropped by a rule, "
                f"{len(self.unused)} {self.origin} tensors unused, "
                f"{len(self.missing)} model tensors not filled{zeros}")


def compile_rules(rules):
    """Validate and compile a rule table: list of ``(regex, replacement or None)``."""
    compiled = []
    for rule in rules:
        if not (isinstance(rule, (tuple, list)) and len(rule) == 2):
            raise ValueError(f"a conversion rule must be (regex, replacement), got {rule!r}")
        pattern, replacement = rule
        compiled.append((re.compile(pattern), replacement))
    return compiled


def map_key(key, compiled_rules):
    """Our name for a Paddle key after the rules and the BN renaming,
    or ``None`` if a rule drops it."""
    for pattern, replacement in compiled_rules:
        if replacement is None:
            if pattern.search(key):
                return None
        else:
            key = pattern.sub(replacement, key)
    for pattern, replacement in _BN_SUFFIXES:
        key = pattern.sub(replacement, key)
    return key


def _matches_any(key, patterns):
    return any(re.search(p, key) for p in patterns)


def _short_list(keys, limit=5):
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _linear_weights(model):
    return {f"{name}.weight" if name else "weight" for name, module in model.named_modules()
            if isinstance(module, nn.Linear)}


def convert_state_dict(paddle_params, model, rules, only_backbone=False, expected_unused=(),
                       expected_missing=(), source="the Paddle weights", num_classes=None,
                       backbone_zero_init=IMAGENET_ZERO_INIT, origin="Paddle"):
    """Convert Paddle tensors to a state dict for ``model``; return ``(state_dict, report)``.

    ``paddle_params``: ``{paddle name: numpy array}`` (see ``load_pdparams``). ``rules``: the
    family's rule table. Every Paddle key must land on a model key and every model key must be
    filled, except keys matching ``expected_unused`` / ``expected_missing`` (regexes) and
    ``num_batches_tracked``. With ``only_backbone=True`` only ``backbone.*`` model keys must be
    filled
    and only they are returned; Paddle keys that map outside the backbone (a classifier's ``fc``, a
    detector's neck and head) are listed as unused without error. ``source`` names the file in
    errors; ``num_classes`` (the model's) lets a class-count mismatch name the ``-nc`` that fits.
    ``backbone_zero_init`` (regexes): with ``only_backbone``, model keys matching one that have
    no source are filled with zeros (their initial value; ImageNet weights lack DCN offsets:
    ``IMAGENET_ZERO_INIT``) and listed in ``report.zero_filled``. ``origin``: the source
    framework, for the report.
    Raises ``UserError`` on a shape mismatch, an unmatched key, or a checkpoint of another model.
    """
    compiled = compile_rules(rules)
    model_state = model.state_dict()
    linear_weights = _linear_weights(model)
    report = ConversionReport(origin=origin)

    def wanted(key):
        return key.startswith(_BACKBONE_PREFIX) if only_backbone else True

    targets = {k for k in model_state if wanted(k)}
    state_dict, mismatches, duplicates, stray = {}, [], [], []
    for paddle_key, array in paddle_params.items():
        key = map_key(paddle_key, compiled)
        if key is None:
            report.dropped.append(paddle_key)
            continue
        if key not in targets:
            report.unused.append(paddle_key)
            if wanted(key) and not _matches_any(paddle_key, expected_unused):
                stray.append(paddle_key)
            continue
        if key in state_dict:
            duplicates.append(f"{report.sources[key]} and {paddle_key} -> {key}")
            continue
        array = np.asarray(array)
        if key in linear_weights and array.ndim == 2:
            array = array.T
            report.transposed.append(key)
        expected = tuple(model_state[key].shape)
        if tuple(array.shape) != expected:
            mismatches.append((key, paddle_key, tuple(array.shape), expected))
            continue
        state_dict[key] = torch.from_numpy(np.ascontiguousarray(array)).to(model_state[key].dtype)
        report.filled.append(key)
        report.sources[key] = paddle_key

    if only_backbone and backbone_zero_init:
        for key in sorted(targets - set(state_dict)):
            if _matches_any(key, backbone_zero_init):
                state_dict[key] = torch.zeros_like(model_state[key])
                report.zero_filled.append(key)
    mismatched = {m[0] for m in mismatches}
    report.missing = sorted(k for k in targets if k not in state_dict and k not in mismatched
                            and not _ALWAYS_OPTIONAL.search(k))
    _check(report, mismatches, duplicates, stray, targets, only_backbone, expected_missing, source,
           num_classes)
    return state_dict, report


def _class_count_delta(mismatches):
    """``checkpoint - model`` classes when every mismatch differs only in its first dimension, by
    the same amount (class heads and class embeddings: classes first, after the Linear
    transpose); else None."""
    deltas = {got[0] - expected[0] if got[1:] == expected[1:] and len(got) == len(expected)
              else None for _, _, got, expected in mismatches}
    return deltas.pop() if len(deltas) == 1 else None


def _check(report, mismatches, duplicates, stray, targets, only_backbone, expected_missing, source,
           num_classes=None):
    """Raise one clear ``UserError`` for whatever went wrong, the most telling problem first."""
    required = [k for k in targets if not _ALWAYS_OPTIONAL.search(k)]
    missing = [k for k in report.missing if not _matches_any(k, expected_missing)]
    if required and len(missing) + len(mismatches) > _OTHER_MODEL_SHARE * len(required):
        what = f"{len(missing)} of {len(required)} model tensors have no source in {source}"
        if mismatches:
            what += f" and {len(mismatches)} differ in shape"
        if not only_backbone and report.filled and not mismatches and \
                all(k.startswith(_BACKBONE_PREFIX) for k in report.filled) and \
                not any(k.startswith(_BACKBONE_PREFIX) for k in missing):
            raise UserError(f"{what}: it holds the backbone only (ImageNet-pretrained weights?); "
                            "convert it with --only_backbone True")
        raise UserError(f"{what}: is it a checkpoint of another model"
                        f"{' or of a classifier without this backbone' if only_backbone else ''}?")
    if duplicates:
        raise UserError(f"{source}: two {report.origin} tensors map to one model tensor: "
                        f"{duplicates[0]} (a rule is missing to drop an alias)")
    if mismatches:
        key, paddle_key, got, expected = mismatches[0]
        first = (f"{key} ({report.origin} {paddle_key}): checkpoint {got} vs model {expected}"
                 f"{f' (and {len(mismatches) - 1} more)' if len(mismatches) > 1 else ''}")
        delta = _class_count_delta(mismatches)
        if delta is not None and not missing and not stray:
            nc = f"-nc {num_classes + delta}" if num_classes is not None else "-nc"
            raise UserError(f"{source}: shape mismatch for {first} -- a different class count? "
                            f"pass {nc} (the checkpoint's number of classes)")
        unmatched = len(missing) + len(stray)
        raise UserError(f"{source} is a checkpoint of another model (another variant or size of "
                        f"this family?): shape mismatch for {first}"
                        f"{f'; {unmatched} tensors without a counterpart' if unmatched else ''}")
    problems = []
    if missing:
        problems.append(f"{len(missing)} model tensors have no source: {_short_list(missing)}")
    if stray:
        problems.append(f"{len(stray)} {report.origin} tensors have no destination in the model: "
                        f"{_short_list(stray)}")
    if problems:
        raise UserError(f"{source}: " + "; ".join(problems))
