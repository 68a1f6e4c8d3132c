"""EDVR's family record (see `tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="edvr",
    description="EDVR (Wang et al., CVPRW 2019): PCD alignment + TSA fusion, BasicSR-compatible",
    tasks={"edvr": "tfvr.models.edvr.task:EDVRTask", "edvr_stage2": "tfvr.models.edvr.cascade:EDVRStage2Task"},
    experiment="tfvr.models.edvr.config:EDVRExperiment",
    model_classes=("tfvr.models.edvr.model:EDVR", "tfvr.models.edvr.cascade:EDVRCascade"),
    converter="tfvr.models.edvr.convert:convert_cli",
    serving="restoration",
    presets="tfvr.models.edvr.presets:PRESETS",
)
