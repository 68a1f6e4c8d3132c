"""STTN-I's family record (`tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="sttn_inpaint",
    tasks={"sttn_inpaint": "tfvr.models.sttn_inpaint.task:STTNInpaintTask"},
    experiment="tfvr.models.sttn_inpaint.task:STTNInpaintExperiment",
    model_classes=("tfvr.models.sttn_inpaint.generator:STTNInpaintGenerator",
                   "tfvr.models.sttn_inpaint.discriminator:TPatchGANDiscriminator"),
    converter="tfvr.models.sttn_inpaint.convert:convert_cli",
    serving="inpainting",
)
