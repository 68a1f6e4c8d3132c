"""STTN-R's family record (see `tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="sttn_restore",
    description="STTN-R (Kim et al., ECCV 2018): spatio-temporal flow U-Net denoising / deblurring",
    tasks={"sttn_restore": "tfvr.models.sttn_restore.task:STTNRestoreTask"},
    experiment="tfvr.models.sttn_restore.config:STTNRestoreExperiment",
    model_classes=("tfvr.models.sttn_restore.model:STTNRestore",),
    serving="restoration",
)
