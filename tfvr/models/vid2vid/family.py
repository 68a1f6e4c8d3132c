"""vid2vid's family record (`tfvr.family`; listed in `tfvr/models/__init__.py`)."""

from tfvr.family import Family

FAMILY = Family(
    name="vid2vid",
    tasks={"vid2vid": "tfvr.models.vid2vid.task:Vid2VidTask"},
    experiment="tfvr.models.vid2vid.config:Vid2VidExperiment",
    model_classes=("tfvr.models.vid2vid.generator:CompositeGenerator",
                   "tfvr.models.vid2vid.generator:CompositeLocalGenerator",
                   "tfvr.models.vid2vid.generator:Vid2VidGenerator",
                   "tfvr.models.vid2vid.discriminator:MultiscaleDiscriminator",
                   "tfvr.models.vid2vid.discriminator:VideoDiscriminator"),
    converter="tfvr.models.vid2vid.convert:convert_cli",
    serving="label-to-video",
    presets="tfvr.models.vid2vid.convert:PRESETS",
)
