"""Models, registered by name for configs (``model.name``).

``MODELS`` maps names to classes; :func:`build_model` builds one from a
config's ``model.params`` plus what the task knows about the data (see
:mod:`graphlearn.models.registry`). Importing this package imports each model
module so that it registers itself; a new model module adds its import here.
"""

# import each model module so that it registers itself
from graphlearn.models import (  # noqa: F401
    gae,
    gnn_lp,
    kge,
    lightgcn,
    mf,
    nbfnet,
    ngcf,
    sheaf_gae,
    sheaf_rec,
)
from graphlearn.models.gae import GAE
from graphlearn.models.gnn_lp import GNNLinkPredictor
from graphlearn.models.kge import ComplEx, DistMult, RotatE
from graphlearn.models.lightgcn import LightGCN
from graphlearn.models.mf import BPRMF, EmbeddingRecommender
from graphlearn.models.nbfnet import NBFNet
from graphlearn.models.ngcf import NGCF
from graphlearn.models.registry import MODELS, build_model, list_models
from graphlearn.models.sheaf_gae import SheafGAE

__all__ = ["BPRMF", "GAE", "MODELS", "NGCF", "ComplEx", "DistMult", "EmbeddingRecommender",
           "GNNLinkPredictor", "LightGCN", "NBFNet", "RotatE", "SheafGAE", "build_model",
           "list_models"]
