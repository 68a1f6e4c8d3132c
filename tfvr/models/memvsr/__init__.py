"""MemVSR (seed 004): memory-network module for video restoration, next-frame prediction and EDVR + memory VSR.

    from tfvr.models.memvsr import MemoryModule, NextFramePredictor, MemEDVR, MemVSRTask, MemVSRExperiment

Training: `python train/memvsr.py --flagfile=train/configs/memvsr_nextframe_demo.flags --workdir=...`.
"""

from tfvr.family import lazy_exports

_EXPORTS = {
    "MemoryModule": "tfvr.models.memvsr.memory",
    "NextFramePredictor": "tfvr.models.memvsr.nextframe",
    "MemEDVR": "tfvr.models.memvsr.vsr",
    "MemVSRTask": "tfvr.models.memvsr.task",
    "MemVSRNextFrameTask": "tfvr.models.memvsr.task",
    "MemVSRVSRTask": "tfvr.models.memvsr.task",
    "MemVSRExperiment": "tfvr.models.memvsr.config",
    "MemoryConfig": "tfvr.models.memvsr.config",
    "NextFrameConfig": "tfvr.models.memvsr.config",
    "NextFrameDataConfig": "tfvr.models.memvsr.config",
    "UNetEncoder": "tfvr.models.memvsr.encoders",
    "UNetDecoder": "tfvr.models.memvsr.encoders",
    "ResNetEncoder": "tfvr.models.memvsr.encoders",
    "ResNetDecoder": "tfvr.models.memvsr.encoders",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
