"""Our RT-DETR exps as HF transformers' ``RTDetrForObjectDetection`` with the same weights.

Shared by benchmarks/latency_rtdetr.py and benchmarks/parity_all_rtdetr.py. The name mappings are
the tests' (no second copy): encoder / decoder from tests/models/test_rtdetr_parity.py
(``to_hf_state_dict``, ``randomize_``), backbones from tests/models/test_rtdetr_backbones.py
(``_hf_resnet`` / ``_hf_hgnet`` configurations, ``_hf_to_ours_*`` key maps).
"""
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT, REPO_ROOT / "tests", REPO_ROOT / "tests/models"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from test_rtdetr_backbones import _hf_hgnet, _hf_resnet, _hf_to_ours_hgnet, _hf_to_ours_resnet  # noqa: E402
from transformers import RTDetrConfig, RTDetrForObjectDetection  # noqa: E402

from mmdet_lite.exp import get_exp  # noqa: E402

from test_rtdetr_parity import randomize_, to_hf_state_dict  # noqa: E402

__all__ = ["EXPS", "spread_", "build_ours", "hf_config", "build_hf", "build_pair"]

EXPS = {name: REPO_ROOT / f"exps/rtdetr/rtdetr_{name}_6x_coco.py"
        for name in ("r18vd", "r34vd", "r50vd", "r50vd_m", "r101vd", "hgnetv2_l", "hgnetv2_x")}
HF_BACKBONE_PREFIX = "model.backbone.model."


def spread_(model):
    """Variance-keeping convolutions on top of ``randomize_``: conv weights x sqrt(6) (He's
    ``2 / fan_in`` variance instead of ``1 / (3 fan_in)``), BN statistics mean 0, variance 1.

    With ``randomize_`` alone a deep backbone's signal shrinks at every convolution until BN's
    running means and the biases make every position alike: the encoder's scores then tie at the
    top-k cut (as random as the last float bit) and the two models pick different queries.
    """
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.ndim == 4:
                tensor.mul_(6 ** 0.5)
            elif name.endswith("running_mean"):
                tensor.zero_()
            elif name.endswith("running_var"):
                tensor.fill_(1.0)


def build_ours(name, size=640, seed=0, opts=()):
    """Our detector of exp ``name`` (``EXPS`` key) for ``size`` x ``size`` inputs, with
    ``randomize_`` then ``spread_`` weights (seed ``seed``); returns ``(exp, model)``."""
    exp = get_exp(str(EXPS[name]))
    exp.merge(["test_size", f"{size},{size}", *opts])
    torch.manual_seed(seed)
    model = exp.get_model()
    randomize_(model, seed + 1)
    spread_(model)
    return exp, model


def _backbone_config(exp):
    """HF backbone config (and our-key mapper) of the exp's backbone, stages 2-4 returned."""
    backbone = exp.backbone
    if backbone["name"] == "ResNet":
        config, mapper = _hf_resnet(backbone["depth"]).config, _hf_to_ours_resnet
    else:
        config, mapper = _hf_hgnet(backbone["arch"]).config, _hf_to_ours_hgnet
    config.out_features = [f"stage{i + 1}" for i in backbone["return_idx"]]
    return config, mapper


def hf_config(exp, channels):
    """``RTDetrConfig`` equal to the exp's model whose backbone returns ``channels`` (and the
    backbone key mapper)."""
    backbone_config, mapper = _backbone_config(exp)
    enc, dec, layer = exp.encoder, exp.decoder, exp.encoder["encoder_layer"]
    config = RTDetrConfig(
        backbone_config=backbone_config, num_labels=exp.num_classes,
        freeze_backbone_batch_norms=bool(exp.backbone.get("freeze_norm", True)),
        encoder_in_channels=list(channels), encoder_hidden_dim=enc["hidden_dim"],
        encoder_ffn_dim=layer["dim_feedforward"], encoder_attention_heads=layer["nhead"],
        hidden_expansion=enc["expansion"], decoder_in_channels=[enc["hidden_dim"]] * 3,
        d_model=dec["hidden_dim"], decoder_ffn_dim=dec["dim_feedforward"],
        decoder_attention_heads=dec["nhead"], decoder_layers=dec["num_decoder_layers"],
        decoder_n_points=dec["num_decoder_points"], num_queries=dec["num_queries"],
        num_denoising=dec["num_denoising"], label_noise_ratio=dec["label_noise_ratio"],
        box_noise_scale=dec["box_noise_scale"])
    return config, mapper


def build_hf(exp, ours):
    """HF's model for ``exp`` holding ``ours``' weights (every HF tensor is set)."""
    config, mapper = hf_config(exp, ours.backbone.out_channels)
    hf = RTDetrForObjectDetection(config)
    state = to_hf_state_dict(ours.encoder, ours.decoder)
    backbone = ours.backbone.state_dict()
    for key in hf.state_dict():
        if key.startswith(HF_BACKBONE_PREFIX) and not key.endswith("num_batches_tracked"):
            state[key] = backbone[mapper(key[len(HF_BACKBONE_PREFIX):])].clone()
    missing, unexpected = hf.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"HF weight mapping: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return hf


def build_pair(name, size=640, seed=0, opts=()):
    """``(exp, ours, hf)`` for exp ``name`` with identical random weights."""
    exp, ours = build_ours(name, size, seed, opts)
    return exp, ours, build_hf(exp, ours)
