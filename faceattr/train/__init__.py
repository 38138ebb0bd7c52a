"""Training one view (Algorithm 1): ``train_view`` as ``faceattr train`` runs it, the ``Trainer``
and its parts, and its one extension point, extra loss terms (``LossTerm``)."""
from .feeding import FaceFeed
from .loop import Trainer, TrainResult
from .measures import latent_statistics, reference_terms
from .networks import CriticPair, Networks
from .resume import RESUME_MUST_MATCH
from .run_folder import RUN_FILES, RunFolder, StopRule, run_folder
from .runtime import Placement, Runtime
from .terms import LossTerm, StepBatch
from .view import held_out_faces, load_init, resolve_init, train_view

__all__ = ["CriticPair", "FaceFeed", "LossTerm", "Networks", "Placement", "RESUME_MUST_MATCH", "RUN_FILES",
           "RunFolder", "Runtime", "StepBatch", "StopRule", "TrainResult", "Trainer", "held_out_faces",
           "latent_statistics", "load_init", "reference_terms", "resolve_init", "run_folder", "train_view"]
