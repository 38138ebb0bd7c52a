"""Every error faceattr raises on purpose, in one family.

``except FaceattrError`` catches "faceattr refused this" (a bad input, option or file, a bundle
that fails its checks, an output that is in use), whatever part of faceattr refused it. Each
subclass also keeps the built-in kind that callers already catch, as requests' exceptions do
(``InvalidURL(RequestException, ValueError)``): an ``ImageError`` is a ``ValueError``, an
``OutputInUse`` an ``OSError``. The command line prints a ``FaceattrError`` as one line; anything
else is a fault of faceattr's and shows its traceback.

    FaceattrError
    ├── InputError (ValueError)            a value given to faceattr: an argument, option or setting
    │   ├── ImageError                     an input that is not a usable image (``kind``: serve's status)
    │   │   ├── ImageTooLarge              above the pixel limit, or a decompression bomb
    │   │   └── ImageTooSmall              smaller than the smallest face searched for
    │   └── DatasetError                   a CelebA folder whose lists are missing or inconsistent
    ├── BundleError (RuntimeError)         weights that are missing, incomplete or fail their sha256
    ├── LossNetworkUnavailable (RuntimeError)  no VGG19 weights to train with
    ├── DetectorUnavailable (RuntimeError) no MTCNN weights to find faces with
    ├── TrainingError (RuntimeError)       a run that cannot go on
    │   └── NonFiniteLoss                  a loss term became inf or NaN
    └── OutputError (OSError)              where faceattr would write
        ├── OutputExists (FileExistsError) a file or folder that is not faceattr's to replace
        ├── NotAFolder (NotADirectoryError) a path that must be a folder and is not
        └── OutputInUse                    another process is writing it
            └── FolderInUse                ... a folder (a training run)
"""
from __future__ import annotations


class FaceattrError(Exception):
    """Base of every error faceattr raises on purpose. The message names the input, file or
    option and says what is wrong with it."""


class InputError(FaceattrError, ValueError):
    """A value given to faceattr that it cannot use: an argument, an option, an environment
    setting, a file's contents."""


class ImageError(InputError):
    """An input that is not a usable image; the message names the input and the problem.

    ``kind`` says what sort of problem, for callers that map errors to codes (serve: HTTP 400)."""

    kind = "bad_input"


class ImageTooLarge(ImageError):
    """An image above the pixel limit, or too large to decode safely (serve: HTTP 413)."""

    kind = "too_large"


class ImageTooSmall(ImageError):
    """An image smaller than the smallest face searched for."""


class DatasetError(InputError):
    """A CelebA-layout folder that cannot be read as one: missing or inconsistent lists."""


class BundleError(FaceattrError, RuntimeError):
    """A missing, incomplete or tampered weights bundle."""


class LossNetworkUnavailable(FaceattrError, RuntimeError):
    """No VGG19 weights for the perceptual loss."""


class DetectorUnavailable(FaceattrError, RuntimeError):
    """No MTCNN weights to find faces with (facenet-pytorch is missing or incomplete)."""


class TrainingError(FaceattrError, RuntimeError):
    """A training run that cannot go on."""


class NonFiniteLoss(TrainingError):
    """A loss term became inf or NaN: the weights are no longer usable."""


class OutputError(FaceattrError, OSError):
    """Where faceattr would write cannot be written, or is not faceattr's to write."""


class OutputExists(OutputError, FileExistsError):
    """A file or folder is already there, and faceattr does not replace what it did not make."""


class NotAFolder(OutputError, NotADirectoryError):
    """A path that must be a folder is something else."""


class OutputInUse(OutputError):
    """Another process is writing the same output."""


class FolderInUse(OutputInUse):
    """Another process is writing into this folder."""


__all__ = ["BundleError", "DatasetError", "DetectorUnavailable", "FaceattrError", "FolderInUse", "ImageError", "ImageTooLarge",
           "ImageTooSmall", "InputError", "LossNetworkUnavailable", "NonFiniteLoss", "NotAFolder", "OutputError",
           "OutputExists", "OutputInUse", "TrainingError"]
