"""MemVSR's family record (`tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="memvsr",
    tasks={"memvsr": "tfvr.models.memvsr.task:MemVSRTask",
           "memvsr_nextframe": "tfvr.models.memvsr.task:MemVSRNextFrameTask",
           "memvsr_vsr": "tfvr.models.memvsr.task:MemVSRVSRTask"},
    experiment="tfvr.models.memvsr.config:MemVSRExperiment",
    model_classes=("tfvr.models.memvsr.nextframe:NextFramePredictor", "tfvr.models.memvsr.vsr:MemEDVR"),
    serving="restoration",
)
