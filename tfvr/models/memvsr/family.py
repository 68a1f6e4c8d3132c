"""MemVSR's family record (see `tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="memvsr",
    description="MemVSR (seed 004): memory-augmented next-frame prediction and EDVR + memory VSR",
    tasks={"memvsr": "tfvr.models.memvsr.task:MemVSRTask"},
    experiment="tfvr.models.memvsr.config:MemVSRExperiment",
    model_classes=("tfvr.models.memvsr.nextframe:NextFramePredictor", "tfvr.models.memvsr.vsr:MemEDVR"),
    serving="restoration",
)
