"""STTN-I's family record (see `tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="sttn_inpaint",
    description="STTN-I (Zeng et al., ECCV 2020): spatial-temporal transformer video inpainting",
    tasks={"sttn_inpaint": "tfvr.models.sttn_inpaint.task:STTNInpaintTask"},
    experiment="tfvr.models.sttn_inpaint.task:STTNInpaintExperiment",
    model_classes=("tfvr.models.sttn_inpaint.generator:STTNInpaintGenerator",
                   "tfvr.models.sttn_inpaint.discriminator:TPatchGANDiscriminator"),
    converter="tfvr.models.sttn_inpaint.convert:convert_cli",
    serving="inpainting",
)
