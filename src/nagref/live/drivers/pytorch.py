"""The live driver of ``torch.optim.SGD`` (CPU, one thread)."""

from __future__ import annotations

from ..cases import Spec, arrays
from . import Run, Trajectory, per_step

_VARIANT = {
    "single-tensor": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}


def start(variant: str | None) -> tuple[str, Run]:
    import torch

    torch.set_num_threads(1)

    def run(spec: Spec) -> Trajectory:
        param, grads = arrays(spec)
        p = torch.tensor(param.copy())
        opt = torch.optim.SGD(
            [p],
            lr=spec.lr[0],
            momentum=spec.momentum or 0.0,
            dampening=spec.dampening,
            weight_decay=spec.weight_decay or 0.0,
            nesterov=spec.nesterov,
            maximize=spec.maximize,
            **_VARIANT[spec.variant],
        )
        out: Trajectory = []
        for lr, g in zip(spec.lr, per_step(grads), strict=True):
            opt.param_groups[0]["lr"] = lr
            p.grad = torch.tensor(g.copy())
            opt.step()
            buf = opt.state[p].get("momentum_buffer")
            out.append((p.detach().numpy().copy(), None if buf is None else buf.numpy().copy()))
        return out

    return f"torch {torch.__version__}", run
