"""tfvr's training framework, shared by every family.

- `task.Task` - what a family implements (the contract is that module's docstring); `task.StepContext`,
  `task.OptimizerGroup`, `task.MetricGuard`.
- `loop.Trainer` - the distributed custom loop (strategy, checkpoints + resume, guards, EMA, mixed precision,
  TensorBoard, progress bar); `app.run` - the body of `train/<family>.py`.
- `config` (OptimConfig, TrainerConfig, RuntimeConfig), `schedules` (BasicSR's LR schedules), `summaries`
  (image strips, `flow_to_color`), `checkpoints`, `guards`, `ema`, `strategy`.
Importing this package does not import TensorFlow; its submodules do.
"""
