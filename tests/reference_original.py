"""A line-by-line transcription of the original implementation's update, as the spec
(shared/spec/complex-synapse-dynamics.md) states it: lr time, forward Euler, Gauss-Seidel
sweep, the original Adam's eps placement. Deliberately naive (a loop over beakers, no
shared code with the package beyond the constants' formula) so it can check the package."""

import math

import torch


def constants(n, alpha, beta):
    if n == 1:
        return [1.0], [1.0 / beta]
    x = (beta / alpha) ** (1.0 / (2 * n - 2))
    return [x**k for k in range(n)], [x ** (-k) / alpha for k in range(n)]


class ReferenceOriginal:
    def __init__(
        self, params, base, lr, n_beakers, alpha, beta, init, betas=(0.9, 0.999), eps=1e-8, torch_eps=False
    ):
        """``torch_eps``: eps where torch.optim.Adam puts it (added to the bias-corrected
        sqrt(v)), which is the original's form with eps scaled by sqrt(1 - beta2^t)."""
        self.torch_eps = torch_eps
        self.params = list(params)
        self.base, self.lr, self.n = base, lr, n_beakers
        self.alpha, self.beta, self.init, self.betas, self.eps = alpha, beta, init, betas, eps
        self.state = {}

    @torch.no_grad()
    def step(self):
        n = self.n
        for p in self.params:
            if p.grad is None:
                continue
            st = self.state.setdefault(id(p), {})
            if not st:
                make = torch.clone if self.init == "same" else torch.zeros_like
                st["u"] = (
                    [None] + [make(p) for _ in range(n - 1)] + [torch.zeros_like(p)]
                )  # u[1..n-1], u[n]=0
                st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
            st["t"] += 1
            if self.base == "sgd":
                dt, d = self.lr, -p.grad
            else:
                b1, b2 = self.betas
                st["m"] = b1 * st["m"] + (1 - b1) * p.grad
                st["v"] = b2 * st["v"] + (1 - b2) * p.grad * p.grad
                dt = self.lr * math.sqrt(1 - b2 ** st["t"]) / (1 - b1 ** st["t"])
                eps = self.eps * math.sqrt(1 - b2 ** st["t"]) if self.torch_eps else self.eps
                d = -st["m"] / (st["v"].sqrt() + eps)
            if n == 0:
                p.add_(dt * d)
                continue
            C, g = constants(n, self.alpha, self.beta)
            u = st["u"]  # u[k] is beaker k+1 for k >= 1; u[n] is the reservoir
            p_old = p.clone()
            p.copy_(p_old + (dt / C[0]) * (d + g[0] * (u[1] - p_old)))
            for k in range(1, n):
                prev = p if k == 1 else u[k - 1]
                u[k] = u[k] + (dt / C[k]) * (g[k - 1] * (prev - u[k]) + g[k] * (u[k + 1] - u[k]))
