"""Backbones by name (ours and timm's), and the network = backbone + a head sized by the Task."""

# Importing mlp, vision, combiner, text and hf_text registers "mlp", "cnn", "concat", the text backbones and
# "hf_text" (which imports transformers only when it builds one).
from labelwise.models import combiner as combiner
from labelwise.models import hf_text as hf_text
from labelwise.models import mlp as mlp
from labelwise.models import text as text
from labelwise.models import vision as vision
from labelwise.models.head import ModelSpec as ModelSpec
from labelwise.models.head import Network as Network
from labelwise.models.head import build_network as build_network
from labelwise.models.head import create_network as create_network
from labelwise.models.registry import create_backbone as create_backbone
from labelwise.models.registry import list_backbones as list_backbones
from labelwise.models.registry import register_backbone as register_backbone

__all__ = [
    "ModelSpec",
    "Network",
    "build_network",
    "create_backbone",
    "create_network",
    "list_backbones",
    "register_backbone",
]
