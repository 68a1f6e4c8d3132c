"""EDVR's family record (`tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="edvr",
    tasks={"edvr": "tfvr.models.edvr.task:EDVRTask", "edvr_stage2": "tfvr.models.edvr.cascade:EDVRStage2Task"},
    experiment="tfvr.models.edvr.config:EDVRExperiment",
    model_classes=("tfvr.models.edvr.model:EDVR", "tfvr.models.edvr.cascade:EDVRCascade"),
    converter="tfvr.models.edvr.convert:convert_cli",
    serving="restoration",
    presets="tfvr.models.edvr.presets:PRESETS",
)
