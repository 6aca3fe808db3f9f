"""Paddle-side reference for the SOLOv2 head parity tests.

Runs under the Paddle interpreter only (never imports torch):

    python paddle_solov2_head.py heads CONFIG.yml OUT_DIR [--no-run]
        builds ppdet 2.6.0's ``SOLOv2Head`` and ``SOLOv2MaskHead`` from CONFIG (its merged
        sections, as ppdet's ``create`` does), gives them random weights (see ``randomize``) and
        saves them to OUT_DIR/heads.pdparams under the full model's names (``solov2_head.*``,
        ``mask_head.*``). Unless ``--no-run``: runs both in eval mode on random FPN features
        (``FEATURE_SHAPES``) and saves OUT_DIR/outputs.npz: ``feat{l}``, Paddle's eval outputs
        ``cate{l}`` (N, S, S, C) (sigmoid, point NMS), ``cate_logit{l}`` (N, C, S, S)
        (``solo_cate``'s output before them), ``kernel{l}`` (N, E, S, S), ``seg_pred``
        (N, E, h, w); then, per image ``i`` of ``IMAGES`` (input size before padding, scale
        factor), ppdet's ``get_prediction`` on those raw outputs: ``segm{i}`` (K, H, W) uint8,
        ``label{i}``, ``score{i}``. ppdet's post-processing indexes 0-D tensors, which Paddle
        3.3.1 rejects: ``paddle2_semantics`` restores Paddle 2's 1-D results at those index
        sites here, never in site-packages.
    python paddle_solov2_head.py loss_inputs OUT_DIR
        ppdet's ``SOLOv2Head.get_loss`` on random head outputs and targets (``LOSS_CASE``; one
        level without targets), its ``solov2_loss`` replaced by a recorder: the arguments it
        passes to ``SOLOv2Loss`` saved to OUT_DIR/loss_inputs.npz with the inputs.
    python paddle_solov2_head.py matrix_nms OUT_DIR
        ppdet's ``MaskMatrixNMS`` on random candidates (``NMS_CASES``), seg_preds coding each
        candidate's index, saved to OUT_DIR/matrix_nms.npz.
"""
import contextlib
import inspect
import io
import os
import sys
import textwrap

import numpy as np

with contextlib.redirect_stdout(io.StringIO()):  # ppdet prints warnings on import
    import paddle
    import ppdet.modeling.heads.solov2_head as ppdet_solov2_head
    from ppdet.core.workspace import create, load_config
    from ppdet.modeling.layers import MaskMatrixNMS

BATCH = 2
INPUT_HW = (128, 160)  # the padded network input; FPN strides 4 .. 64
FEATURE_SHAPES = [(BATCH, 256, 32, 40), (BATCH, 256, 16, 20), (BATCH, 256, 8, 10),
                  (BATCH, 256, 4, 5), (BATCH, 256, 2, 3)]
IMAGES = [((128, 160), (0.5, 0.5)), ((100, 150), (0.8, 0.75))]
# Random candidates for the Matrix NMS unit: (count, pre_nms_top_n, post_nms_top_n, kernel).
NMS_CASES = [(120, 500, 1000, "gaussian"), (700, 500, 1000, "gaussian"), (90, 500, 1000, "linear")]
# get_loss inputs: batch, classes, kernel channels, mask size, targets per level (0: none).
LOSS_CASE = dict(batch=2, num_classes=3, channels=8, mask_hw=(16, 20), grids=[40, 36, 24, 16, 12],
                 targets=[3, 0, 5, 2, 1])

# ppdet's post-processing was written for Paddle 2, where indexing a 1-D tensor with an integer
# gives a 1-element 1-D tensor and a binary operator casts its right operand to the left one's
# dtype; Paddle >= 3 gives a 0-D tensor, which its ``[0]`` and ``concat`` reject, and refuses
# float32 > int32. Each rule restores Paddle 2's result at one such site (a slice ``[0:1]`` for
# ``paddle.shape(x)[0]``; ``h`` / ``w`` lose a ``[0]`` that is a no-op on Paddle 2; the int32
# strides cast to float32 as Paddle 2 casts them).
PADDLE2_SEMANTICS = (
    (r"paddle\.cast\(im_shape\[(\d)\], 'int32'\)\[0\]", r"paddle.cast(im_shape[\1], 'int32')"),
    (r"paddle\.shape\((\w+)\)\[0\](?=\s*-\s*1|, 'int64'\))", r"paddle.shape(\1)[0:1]"),
    (r"sum_masks > strides", r"sum_masks > paddle.cast(strides, 'float32')"),
)


def paddle2_semantics(function, expected_sites):
    """``function`` (ppdet's ``get_seg_single`` or ``MaskMatrixNMS.__call__``) recompiled with
    ``PADDLE2_SEMANTICS``, which must rewrite exactly ``expected_sites`` places (ppdet 2.6.0's);
    every other line is ppdet's. Never touches site-packages."""
    import re

    module = sys.modules[function.__module__]
    source = textwrap.dedent(inspect.getsource(function))
    sites = 0
    for pattern, replacement in PADDLE2_SEMANTICS:
        source, count = re.subn(pattern, replacement, source)
        sites += count
    assert sites == expected_sites, f"{function.__qualname__}: {sites} Paddle 2 sites rewritten"
    namespace = dict(vars(module))
    exec(compile(source, module.__file__, "exec"), namespace)
    return namespace[function.__name__]


class Paddle2MaskMatrixNMS(MaskMatrixNMS):
    """ppdet's ``MaskMatrixNMS`` with ``PADDLE2_SEMANTICS`` applied to its ``__call__``."""


Paddle2MaskMatrixNMS.__call__ = paddle2_semantics(MaskMatrixNMS.__call__, expected_sites=1)


def fan_in(shape):
    return int(np.prod(shape[1:]))


def randomize(layer, rng):
    """Random weights that give a well-conditioned net and many instances: fan-in scaled convs,
    GroupNorm affine away from (1, 0), DCN offsets of pixels, ``solo_cate`` biased so that
    hundreds of cells pass the score threshold, small ``solo_kernel`` weights (mask logits of a
    few units)."""
    for name, param in sorted(layer.named_parameters()):
        shape = tuple(param.shape)
        if ".norm.weight" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif ".norm.bias" in name:
            value = rng.uniform(-0.5, 0.5, shape)
        elif "conv_offset.weight" in name:
            value = rng.normal(0.0, 0.5 / np.sqrt(fan_in(shape)), shape)
        elif "conv_offset.bias" in name:  # 2 k^2 offsets of 1.5 to 4 pixels, k^2 mask logits
            value = rng.normal(0.0, 1.0, shape)
            offsets = shape[0] * 2 // 3
            value[:offsets] = rng.choice([-1.0, 1.0], offsets) * rng.uniform(1.5, 4.0, offsets)
        elif "solo_cate.weight" in name:
            value = rng.normal(0.0, 2.0 / np.sqrt(fan_in(shape)), shape)
        elif "solo_cate.bias" in name:
            value = rng.uniform(-8.5, -6.0, shape)
        elif "solo_kernel.weight" in name:
            value = rng.normal(0.0, 0.6 / np.sqrt(fan_in(shape)), shape)
        elif "solo_kernel.bias" in name:
            value = rng.normal(0.0, 0.02, shape)
        elif len(shape) == 4:
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in(shape)), shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        param.set_value(value.astype(np.float32))


def build_heads(config):
    cfg = load_config(config)
    return create(cfg[cfg.architecture]["solov2_head"]), create(cfg[cfg.architecture]["mask_head"])


def run_heads(config, out_dir, run=True):
    paddle.set_device("cpu")
    head, mask_head = build_heads(config)
    rng = np.random.RandomState(0)
    randomize(head, rng)
    randomize(mask_head, rng)
    state = {f"solov2_head.{k}": v for k, v in head.state_dict().items()}
    state.update({f"mask_head.{k}": v for k, v in mask_head.state_dict().items()})
    paddle.save(state, os.path.join(out_dir, "heads.pdparams"))
    if not run:
        return
    head.eval()
    mask_head.eval()
    feats_np = [rng.normal(0.0, 1.0, s).astype(np.float32) for s in FEATURE_SHAPES]
    feats = [paddle.to_tensor(f) for f in feats_np]
    cate_logits = []  # solo_cate's raw outputs, level by level, before sigmoid and point NMS
    hook = head.solo_cate.register_forward_post_hook(
        lambda layer, inputs, output: cate_logits.append(output.numpy()))
    with paddle.no_grad():
        cates, kernels = head(feats)
        seg_pred = mask_head(feats)
    hook.remove()
    out = {f"feat{i}": f for i, f in enumerate(feats_np)}
    out.update({f"cate{i}": c.numpy() for i, c in enumerate(cates)})
    out.update({f"kernel{i}": k.numpy() for i, k in enumerate(kernels)})
    out["seg_pred"] = seg_pred.numpy()
    out.update({f"cate_logit{i}": logit for i, logit in enumerate(cate_logits)})
    get_seg_single = paddle2_semantics(type(head).get_seg_single, expected_sites=6)
    head.get_seg_single = get_seg_single.__get__(head)
    head.mask_nms.__class__ = Paddle2MaskMatrixNMS
    for i, (size, scale) in enumerate(IMAGES):
        im_shape = paddle.to_tensor(np.array([size], dtype=np.float32))
        scale_factor = paddle.to_tensor(np.array([scale], dtype=np.float32))
        with paddle.no_grad():
            segm, labels, scores, _ = head.get_prediction(
                [c[i:i + 1] for c in cates], [k[i:i + 1] for k in kernels], seg_pred[i:i + 1],
                im_shape, scale_factor)
        out[f"segm{i}"], out[f"label{i}"], out[f"score{i}"] = (segm.numpy(), labels.numpy(),
                                                               scores.numpy())
    np.savez(os.path.join(out_dir, "outputs.npz"), **out)


def run_loss_inputs(out_dir):
    paddle.set_device("cpu")
    case, rng = LOSS_CASE, np.random.RandomState(7)
    batch, channels, (h, w) = case["batch"], case["channels"], case["mask_hw"]
    recorded = {}

    def record(ins_pred_list, ins_labels, cate_preds, cate_labels, num_ins):
        recorded.update(cate_preds=cate_preds.numpy(), cate_labels=cate_labels.numpy(),
                        num_ins=np.asarray(num_ins.numpy()))
        for level, pred in enumerate(ins_pred_list):
            if pred is not None:
                recorded[f"ins_pred{level}"] = pred.numpy()
        return paddle.zeros([1]), paddle.zeros([1])

    head = ppdet_solov2_head.SOLOv2Head(num_classes=case["num_classes"], in_channels=channels,
                                        seg_feat_channels=32, stacked_convs=1,
                                        num_grids=case["grids"], kernel_out_channels=channels,
                                        solov2_loss=record)
    out = {"ins_pred": rng.normal(0, 1, (batch, channels, h, w)).astype(np.float32),
           "fg_num": rng.randint(1, 9, batch).astype(np.int32)}
    cate_preds, kernel_preds, ins_labels, cate_labels, grid_orders = [], [], [], [], []
    for level, (grid, count) in enumerate(zip(case["grids"], case["targets"])):
        out[f"cate_pred{level}"] = rng.normal(0, 1, (batch, case["num_classes"], grid, grid))
        out[f"kernel_pred{level}"] = rng.normal(0, 1, (batch, channels, grid, grid))
        out[f"ins_label{level}"] = rng.randint(0, 2, (batch, count, h, w)).astype(np.uint8)
        out[f"cate_label{level}"] = rng.randint(0, case["num_classes"] + 1, (batch, grid * grid))
        cells = rng.randint(0, grid * grid, (batch, count))
        out[f"grid_order{level}"] = (cells + np.arange(batch)[:, None] * grid * grid).astype(
            np.int32)
        for key in ("cate_pred", "kernel_pred"):
            out[f"{key}{level}"] = out[f"{key}{level}"].astype(np.float32)
        cate_preds.append(paddle.to_tensor(out[f"cate_pred{level}"]))
        kernel_preds.append(paddle.to_tensor(out[f"kernel_pred{level}"]))
        ins_labels.append(paddle.to_tensor(out[f"ins_label{level}"]))
        cate_labels.append(paddle.to_tensor(out[f"cate_label{level}"]))
        grid_orders.append(paddle.to_tensor(out[f"grid_order{level}"]))
    head.get_loss(cate_preds, kernel_preds, paddle.to_tensor(out["ins_pred"]), ins_labels,
                  cate_labels, grid_orders, paddle.to_tensor(out["fg_num"]))
    out.update({f"recorded_{k}": v for k, v in recorded.items()})
    np.savez(os.path.join(out_dir, "loss_inputs.npz"), **out)


def run_matrix_nms(out_dir):
    """Candidates with masks of random blobs (overlapping, several labels); ``seg_preds[j]`` is
    filled with ``j`` so that Paddle's gathered outputs name the candidates they come from."""
    paddle.set_device("cpu")
    rng = np.random.RandomState(5)
    out = {}
    for k, (count, pre, post, kernel) in enumerate(NMS_CASES):
        centres = rng.uniform(0, 24, (count, 2))
        radii = rng.uniform(6, 14, (count, 1, 1))
        ys, xs = np.mgrid[:24, :32]
        masks = ((ys - centres[:, :1, None]) ** 2 + (xs - centres[:, 1:, None]) ** 2
                 < radii ** 2).astype(np.float32)
        masks[:, 0, 0] = 1.0  # no empty mask
        labels = rng.randint(0, 2, count).astype(np.int64)
        scores = rng.uniform(0.02, 0.3, count).astype(np.float32)
        codes = np.broadcast_to(np.arange(count, dtype=np.float32)[:, None, None],
                                masks.shape).copy()
        nms = Paddle2MaskMatrixNMS(update_threshold=0.05, pre_nms_top_n=pre, post_nms_top_n=post,
                            kernel=kernel, sigma=2.0)
        seg, out_scores, out_labels = nms(paddle.to_tensor(codes), paddle.to_tensor(masks),
                                          paddle.to_tensor(labels), paddle.to_tensor(scores),
                                          sum_masks=paddle.to_tensor(masks.sum((1, 2))))
        out.update({f"masks{k}": masks, f"labels{k}": labels, f"scores{k}": scores,
                    f"out_index{k}": seg.numpy()[:, 0, 0].astype(np.int64),
                    f"out_scores{k}": out_scores.numpy(), f"out_labels{k}": out_labels.numpy()})
    np.savez(os.path.join(out_dir, "matrix_nms.npz"), **out)


if __name__ == "__main__":
    if sys.argv[1] == "heads":
        run_heads(sys.argv[2], sys.argv[3], run="--no-run" not in sys.argv[4:])
    elif sys.argv[1] == "matrix_nms":
        run_matrix_nms(sys.argv[2])
    elif sys.argv[1] == "loss_inputs":
        run_loss_inputs(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}; use heads, matrix_nms or loss_inputs")
