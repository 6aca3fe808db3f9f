"""RT-DETR's transformer parts: hybrid encoder, deformable decoder, position encodings."""
from .deformable_attention import MSDeformableAttention, multi_scale_deformable_attn
from .denoising import get_contrastive_denoising_training_group, inverse_sigmoid
from .hybrid_encoder import CSPRepLayer, HybridEncoder, MultiHeadAttention, TransformerLayer
from .position_encoding import generate_anchors, sincos_position_embedding_2d
from .rtdetr_decoder import MLP, RTDETRTransformer, TransformerDecoderLayer

__all__ = ["CSPRepLayer", "HybridEncoder", "MLP", "MSDeformableAttention", "MultiHeadAttention",
           "RTDETRTransformer", "TransformerDecoderLayer", "TransformerLayer",
           "generate_anchors", "get_contrastive_denoising_training_group", "inverse_sigmoid",
           "multi_scale_deformable_attn", "sincos_position_embedding_2d"]
