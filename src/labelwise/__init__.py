"""labelwise: binary, multiclass and multilabel classifiers on PyTorch, right by construction.

Public names are re-exported here and loaded on first use (PEP 562), so ``import labelwise`` and the
command line start fast; ``__all__`` is the whole public surface (a test keeps the two equal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelwise._lazy import lazy_exports
from labelwise._version import __version__ as __version__

if TYPE_CHECKING:
    from labelwise.checking import CheckReport as CheckReport
    from labelwise.checking import Finding as Finding
    from labelwise.checking import WiringCheck as WiringCheck
    from labelwise.checking import check as check
    from labelwise.classifier import Classifier as Classifier
    from labelwise.classifier import load as load
    from labelwise.errors import ArtifactError as ArtifactError
    from labelwise.errors import ConfigError as ConfigError
    from labelwise.errors import DataError as DataError
    from labelwise.errors import DataWarning as DataWarning
    from labelwise.errors import LabelError as LabelError
    from labelwise.errors import LabelwiseError as LabelwiseError
    from labelwise.errors import LabelwiseWarning as LabelwiseWarning
    from labelwise.errors import NotFittedError as NotFittedError
    from labelwise.errors import PossibleMistakeWarning as PossibleMistakeWarning
    from labelwise.errors import TrainingError as TrainingError
    from labelwise.errors import TrainingWarning as TrainingWarning
    from labelwise.estimator import LabelwiseClassifier as LabelwiseClassifier
    from labelwise.fitting import fit as fit
    from labelwise.losses import loss_for as loss_for
    from labelwise.models import create_backbone as create_backbone
    from labelwise.models import list_backbones as list_backbones
    from labelwise.models import register_backbone as register_backbone
    from labelwise.task import Task as Task
    from labelwise.task import TaskKind as TaskKind
    from labelwise.task import infer_task as infer_task
    from labelwise.train import TrainConfig as TrainConfig

_EXPORTS = {
    "ArtifactError": "labelwise.errors",
    "CheckReport": "labelwise.checking",
    "Finding": "labelwise.checking",
    "WiringCheck": "labelwise.checking",
    "check": "labelwise.checking",
    "Classifier": "labelwise.classifier",
    "ConfigError": "labelwise.errors",
    "DataError": "labelwise.errors",
    "DataWarning": "labelwise.errors",
    "LabelError": "labelwise.errors",
    "LabelwiseClassifier": "labelwise.estimator",
    "LabelwiseError": "labelwise.errors",
    "LabelwiseWarning": "labelwise.errors",
    "NotFittedError": "labelwise.errors",
    "PossibleMistakeWarning": "labelwise.errors",
    "Task": "labelwise.task",
    "TaskKind": "labelwise.task",
    "TrainConfig": "labelwise.train",
    "TrainingError": "labelwise.errors",
    "TrainingWarning": "labelwise.errors",
    "create_backbone": "labelwise.models",
    "fit": "labelwise.fitting",
    "infer_task": "labelwise.task",
    "list_backbones": "labelwise.models",
    "load": "labelwise.classifier",
    "loss_for": "labelwise.losses",
    "register_backbone": "labelwise.models",
}

__all__ = sorted([*_EXPORTS, "__version__"])

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, defined=("__version__",))
