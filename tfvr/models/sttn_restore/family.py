"""STTN-R's family record (`tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="sttn_restore",
    tasks={"sttn_restore": "tfvr.models.sttn_restore.task:STTNRestoreTask"},
    experiment="tfvr.models.sttn_restore.config:STTNRestoreExperiment",
    model_classes=("tfvr.models.sttn_restore.model:STTNRestore",),
    serving="restoration",
)
