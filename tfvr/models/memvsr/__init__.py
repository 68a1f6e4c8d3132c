"""MemVSR (seed 004): memory-network module for video restoration, next-frame prediction and EDVR + memory VSR.

    from tfvr.models.memvsr import MemoryModule, NextFramePredictor, MemEDVR, MemVSRTask, MemVSRExperiment

Training: `python train/memvsr.py --flagfile=train/configs/memvsr_nextframe_demo.flags --workdir=...`.
"""

from tfvr.models.memvsr.config import MemoryConfig, MemVSRExperiment, NextFrameConfig, NextFrameDataConfig
from tfvr.models.memvsr.encoders import ResNetDecoder, ResNetEncoder, UNetDecoder, UNetEncoder
from tfvr.models.memvsr.memory import MemoryModule
from tfvr.models.memvsr.nextframe import NextFramePredictor
from tfvr.models.memvsr.task import MemVSRNextFrameTask, MemVSRTask, MemVSRVSRTask
from tfvr.models.memvsr.vsr import MemEDVR

__all__ = ["MemoryModule", "NextFramePredictor", "MemEDVR", "MemVSRTask", "MemVSRNextFrameTask", "MemVSRVSRTask",
           "MemVSRExperiment", "MemoryConfig",
           "NextFrameConfig", "NextFrameDataConfig", "UNetEncoder", "UNetDecoder", "ResNetEncoder", "ResNetDecoder"]
