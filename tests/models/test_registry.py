import dataclasses

from tfvr import registry
from tfvr.config import Experiment
from tfvr.models import FAMILIES


def test_every_family_registers_a_task_with_its_own_experiment_config():
    names = registry.list_tasks()
    assert set(FAMILIES) <= set(names)
    for name in FAMILIES:
        task_cls = registry.get_task(name)
        assert task_cls.name == name
        exp_cls = task_cls.experiment_cls
        assert dataclasses.is_dataclass(exp_cls) and issubclass(exp_cls, Experiment) and exp_cls is not Experiment
        exp_cls()  # every field has a default
