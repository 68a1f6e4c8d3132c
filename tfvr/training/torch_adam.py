"""`TorchAdam`: a Keras optimizer whose update is exactly PyTorch's `torch.optim.Adam` (`OptimConfig.optimizer =
"torch_adam"`), so a BasicSR / authors' recipe trains the same numbers in tfvr.

Keras' `Adam` differs from PyTorch's in two ways that matter for step-for-step parity:

* **epsilon**: Keras computes `var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`, i.e. epsilon is
  added to the *uncorrected* `sqrt(v)`; PyTorch adds it after the bias correction,
  `var -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`. Keras' epsilon is thus PyTorch's epsilon times
  `sqrt(1 - b2^t)` (10× larger at the first step with b2 = 0.99), which changes the updates of parameters with
  small gradients.
* **step count**: Keras uses the optimizer's `iterations` for the bias correction of every variable; PyTorch counts
  the steps of each parameter (`state["step"]`), and a parameter without a gradient in a step (BasicSR's TSA
  warm-up sets `requires_grad = False`) is skipped and keeps its count. Here each variable has its own step
  counter (a scalar slot `<var>_step`), incremented only when the variable is updated, so a variable unfrozen
  after k warm-up steps starts its bias correction at t = 1 as in PyTorch.

Weight decay (L2 added to the gradient, PyTorch Adam's `weight_decay`) is `torch_weight_decay`; Keras' own
`weight_decay` (decoupled) stays off. No amsgrad.
"""

from __future__ import annotations

import keras
from keras import ops


class TorchAdam(keras.optimizers.Adam):
    """`torch.optim.Adam(params, lr, betas=(beta_1, beta_2), eps=epsilon, weight_decay=torch_weight_decay)`."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, torch_weight_decay=0.0,
                 name="torch_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=False,
                         name=name, **kwargs)
        self.torch_weight_decay = float(torch_weight_decay)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._steps = []
        for v in var_list:
            base = v.path.replace("/", "_") if hasattr(v, "path") else str(v.name).replace("/", "_").replace(":", "_")
            self._steps.append(self.add_variable(shape=(), initializer="zeros", dtype="float32",
                                                 name=f"{base}_step"))

    def update_step(self, gradient, variable, learning_rate):
        i = self._get_variable_index(variable)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        if self.torch_weight_decay:
            g = ops.add(g, ops.multiply(ops.cast(self.torch_weight_decay, dtype), variable))
        step_var = self._steps[i]
        self.assign_add(step_var, ops.ones((), "float32"))
        t = ops.cast(step_var, dtype)
        m = self._momentums[i]
        v = self._velocities[i]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        bc1 = 1 - ops.power(ops.cast(self.beta_1, dtype), t)
        bc2_sqrt = ops.sqrt(1 - ops.power(ops.cast(self.beta_2, dtype), t))
        denom = ops.add(ops.divide(ops.sqrt(v), bc2_sqrt), ops.cast(self.epsilon, dtype))
        self.assign_sub(variable, ops.multiply(ops.divide(lr, bc1), ops.divide(m, denom)))

    def get_config(self):
        config = super().get_config()
        config.pop("amsgrad", None)
        config["torch_weight_decay"] = self.torch_weight_decay
        return config
