"""tfvr: a TensorFlow 2 / Keras 3 model zoo for video restoration.

Families: STTN-R (`tfvr.models.sttn_restore`), EDVR (`tfvr.models.edvr`), STTN-I (`tfvr.models.sttn_inpaint`),
vid2vid (`tfvr.models.vid2vid`) and memory-augmented VSR (`tfvr.models.memvsr`).
Importing `tfvr` is cheap: TensorFlow is imported by the submodules that need it.
"""

import os as _os

__version__ = "0.1.0"

# Keras 3 picks its backend at import time; tfvr's ops, custom kernels and tf.distribute training are TensorFlow
# only, so fail here, before a model half-builds on another backend.
_backend = _os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if _backend != "tensorflow":
    raise ImportError(
        f"tfvr needs Keras on the TensorFlow backend, but KERAS_BACKEND={_backend!r}. "
        "Unset it or set KERAS_BACKEND=tensorflow."
    )
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
