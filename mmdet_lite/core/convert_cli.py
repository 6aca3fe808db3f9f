"""``tools/convert_weights.py``: Paddle ``.pdparams`` (or, for exps that declare it, another code
base's PyTorch ``.pth``) -> a checkpoint that every ``-c`` loads."""
import os

from mmdet_lite.utils.checkpoint import save_checkpoint
from mmdet_lite.utils.errors import UserError

__all__ = ["run_convert", "format_report"]

_MAX_LISTED = 20


def _listing(title, keys):
    if not keys:
        return [f"{title}: none"]
    lines = [f"{title} ({len(keys)}):"] + [f"  {k}" for k in keys[:_MAX_LISTED]]
    if len(keys) > _MAX_LISTED:
        lines.append(f"  ... {len(keys) - _MAX_LISTED} more")
    return lines


def format_report(report):
    """The conversion report as text: summary, unused source keys, unfilled model keys and
    those initialised to zero (if any)."""
    zeros = _listing("model keys initialised to zero (as Paddle initialises them)",
                     list(report.zero_filled)) if report.zero_filled else []
    return "\n".join([report.summary()]
                     + _listing(f"unused {report.origin} keys", list(report.unused))
                     + _listing("model keys not filled", list(report.missing)) + zeros)


def run_convert(args):
    """Everything ``tools/convert_weights.py`` does, for parsed ``args`` (``convert_parser``).

    Loads the exp (``-nc`` sets ``num_classes``), reads the weight file (its kind told from its
    content: ``checkpoint_kind``; one the exp's ``convert_source_kinds`` lacks is an error), builds
    the model, converts with the exp's rule table, checks that the result loads into the model,
    and saves ``{"model": state_dict}`` atomically. With ``--only_backbone True`` only
    ``backbone.*`` tensors are saved (for ``-c`` of training, which loads what fits).
    """
    from mmdet_lite.convert.checkpoint_kind import (
        KIND_ORIGINS,
        check_source_kind,
        detect_checkpoint_kind,
        load_source_weights,
    )
    from mmdet_lite.convert.converter import convert_state_dict
    from mmdet_lite.core.cli_args import split_opts
    from mmdet_lite.exp import build_exp

    exp = build_exp(args.exp_file or args.name, split_opts(args.opts))
    if args.num_classes is not None:
        exp.num_classes = args.num_classes
    out_dir = os.path.dirname(os.path.abspath(args.output_ckpt))
    if os.path.isdir(out_dir) and not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"cannot write checkpoint {args.output_ckpt}: folder {out_dir} is not "
                        "writable")
    kind = detect_checkpoint_kind(args.ckpt)
    check_source_kind(args.ckpt, kind, tuple(exp.convert_source_kinds), exp.exp_name)
    _, params = load_source_weights(args.ckpt, kind)
    model = exp.get_model()
    rules = exp.convert_rules
    extra = dict(rules) if isinstance(rules, dict) else {"rules": rules}
    state_dict, report = convert_state_dict(params, model, only_backbone=args.only_backbone,
                                            source=str(args.ckpt),
                                            num_classes=int(exp.num_classes),
                                            origin=KIND_ORIGINS[kind], **extra)
    print(format_report(report), flush=True)
    result = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")
               and (not args.only_backbone or k.startswith("backbone."))]
    if missing or result.unexpected_keys:
        raise UserError(f"the converted weights do not load into {exp.exp_name}: missing "
                        f"{missing[:5]}, unexpected {result.unexpected_keys[:5]}")
    meta = dict(exp_name=exp.exp_name, num_classes=int(exp.num_classes),
                source=os.path.basename(str(args.ckpt)), only_backbone=bool(args.only_backbone))
    path = save_checkpoint({"model": state_dict, "meta": meta}, args.output_ckpt)
    print(f"saved {len(state_dict)} tensors to {path}", flush=True)
    return path
