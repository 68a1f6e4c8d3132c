"""`python -m tfvr.training TASK --flagfile=F --workdir=W [--config.a.b=...]`: `train/<family>.py` without the
script, for any registered task (`tfvr.registry.list_tasks()`, plug-ins via `TFVR_PLUGINS`): `app.run(task)`.

    python -m tfvr.training edvr --flagfile=train/configs/edvr_m_sr4x_demo.flags --workdir=runs/demo/edvr_m
"""

import sys

from tfvr import quiet

quiet.setup(sys.argv)  # before TensorFlow is imported


def main() -> None:
    from tfvr import registry
    from tfvr.errors import UserError

    prog = "python -m tfvr.training"
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(f"usage: {prog} TASK --workdir=W [--flagfile=F] [--config.x=v ...]; TASK one of "
              f"{', '.join(registry.list_tasks())}", file=sys.stderr)
        sys.exit(2)
    name = sys.argv.pop(1)
    try:
        task_cls = registry.get_task(name, source=prog)
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    from tfvr.training import app

    sys.argv[0] = f"{prog} {name}"
    app.run(task_cls)


if __name__ == "__main__":
    main()
