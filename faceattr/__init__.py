"""faceattr: facial attributes from multi-view VAE-WGAN features (Hou et al., Neurocomputing 2019)."""
from .data.attributes import ATTRIBUTE_NAMES
from .version import __version__

__all__ = ["ATTRIBUTE_NAMES", "AttributePredictor", "FaceOptions", "FaceattrError", "MultiViewVAEFeatures",
           "__version__", "export_onnx"]


def __getattr__(name):
    # Lazy: `import faceattr` stays light for the CLI's --help.
    if name == "MultiViewVAEFeatures":
        from .inference.transformer import MultiViewVAEFeatures
        return MultiViewVAEFeatures
    if name == "FaceattrError":
        from .errors import FaceattrError
        return FaceattrError
    if name == "FaceOptions":
        from .faces.options import FaceOptions
        return FaceOptions
    if name == "export_onnx":
        from .onnx_export import export_onnx
        return export_onnx
    if name == "AttributePredictor":
        from .inference.predictor import AttributePredictor
        return AttributePredictor
    raise AttributeError(f"module 'faceattr' has no attribute {name!r}")
