"""Full-batch AdamW and L-BFGS over a small weight vector, in float64 numpy.

Both follow torch's implementations step for step (``torch.optim.AdamW`` and
``torch.optim.LBFGS`` with ``line_search_fn="strong_wolfe"``, BSD-3 licensed; the
tests compare against them) but run on plain arrays, so a fit never imports torch
(its import alone is seconds; constructing a ``torch.optim`` optimiser also imports
``torch._dynamo``). The weights are ``d`` numbers, so the optimisers' own arithmetic
is negligible; the cost is the objective's evaluations (:mod:`specc.fit.objective`).
Weights start at zero, or at ``x0`` (a warm start, as the weight-decay selection
uses), so a fit is deterministic given its data and split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from specc.fit.settings import FitSettings

FloatArray = npt.NDArray[np.float64]
#: ``w -> (objective, gradient)``
Evaluate = Callable[[FloatArray], tuple[float, FloatArray]]


@dataclass(frozen=True)
class OptimResult:
    weights: FloatArray
    iterations: int
    evaluations: int
    #: the objective at every evaluation, in order (L-BFGS: line-search trials too)
    history: tuple[float, ...] = field(default=())


class _Counted:
    def __init__(self, f: Evaluate):
        self.f = f
        self.history: list[float] = []

    def __call__(self, w: FloatArray) -> tuple[float, FloatArray]:
        loss, grad = self.f(w)
        self.history.append(loss)
        return loss, grad


def _start(d: int, x0: FloatArray | None) -> FloatArray:
    if x0 is None:
        return np.zeros(d, dtype=np.float64)
    return np.array(x0, dtype=np.float64).reshape(d)


def run_adamw(
    f: Evaluate,
    d: int,
    settings: FitSettings,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    x0: FloatArray | None = None,
) -> OptimResult:
    """``settings.steps`` full-batch AdamW steps (decoupled weight decay), then one
    evaluation at the final weights. Same update as ``torch.optim.AdamW``."""
    lr, wd = settings.lr, settings.weight_decay or 0.0
    beta1, beta2 = betas
    fc = _Counted(f)
    w = _start(d, x0)
    m = np.zeros(d, dtype=np.float64)
    v = np.zeros(d, dtype=np.float64)
    for step in range(1, settings.steps + 1):
        _, g = fc(w)
        if wd != 0:
            w *= 1 - lr * wd
        m += (1 - beta1) * (g - m)  # torch's lerp for a weight below 0.5
        v *= beta2
        v += (1 - beta2) * g * g
        bias1 = 1 - beta1**step
        bias2 = 1 - beta2**step
        denom = np.sqrt(v) / math.sqrt(bias2) + eps
        w += -(lr / bias1) * (m / denom)
    fc(w)
    return OptimResult(w, settings.steps, len(fc.history), tuple(fc.history))


def _cubic_interpolate(
    x1: float,
    f1: float,
    g1: float,
    x2: float,
    f2: float,
    g2: float,
    bounds: tuple[float, float] | None = None,
) -> float:
    """Minimiser of the cubic through two points with their slopes, clipped to
    ``bounds`` (default: between the points); the midpoint if it has none."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = math.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def _strong_wolfe(
    f: Evaluate,
    x: FloatArray,
    t: float,
    d: FloatArray,
    loss: float,
    g: FloatArray,
    gtd: float,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> tuple[float, FloatArray, float, int]:
    """Line search along ``d`` from ``x`` for a step meeting the strong Wolfe
    conditions: bracketing, then zooming with cubic interpolation. Returns
    ``(loss, gradient, step, evaluations)`` at the accepted step."""
    d_norm = float(np.abs(d).max())
    f_new, g_new = f(x + t * d)
    evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, loss, g, gtd
    done = False
    ls_iter = 0
    bracket: list[float] = []
    bracket_f: list[float] = []
    bracket_g: list[FloatArray] = []
    bracket_gtd: list[float] = []
    while ls_iter < max_ls:
        if f_new > (loss + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        previous = t
        t = _cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step)
        )
        t_prev, f_prev, g_prev, gtd_prev = previous, f_new, g_new, gtd_new
        f_new, g_new = f(x + t * d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0.0, t], [loss, f_new], [g, g_new]
        bracket_gtd = [gtd, gtd_new]

    # Zoom: shrink the bracket until a point meets the conditions.
    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        # Too close to an end of the bracket twice in a row (or outside it): move to
        # 10 % of the bracket's length away from the nearest end.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = f(x + t * d)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > (loss + c1 * t * gtd) or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high], bracket_gtd[high] = g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low], bracket_gtd[low] = g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


def run_lbfgs(
    f: Evaluate, d: int, settings: FitSettings, x0: FloatArray | None = None
) -> OptimResult:
    """L-BFGS with a strong-Wolfe line search: at most ``settings.steps`` iterations
    and ``steps * 5 // 4 + 1`` evaluations, stopping early when the gradient, the step
    or the change of the objective falls below ``settings.tolerance``. The objective
    must include any L2 term."""
    tol = settings.tolerance
    max_iter = settings.steps
    max_eval = settings.steps * 5 // 4 + 1
    history_size = settings.lbfgs_history
    fc = _Counted(f)
    x = _start(d, x0)
    loss, g = fc(x)
    evals = 1
    iterations = 0
    if np.abs(g).max(initial=0.0) <= tol:
        return OptimResult(x, 0, evals, tuple(fc.history))
    dirs: list[FloatArray] = []  # y: gradient changes
    steps: list[FloatArray] = []  # s: weight changes
    rho: list[float] = []
    h_diag = 1.0
    direction = -g
    t = 0.0
    prev_g = g
    while iterations < max_iter:
        iterations += 1
        if iterations > 1:
            y = g - prev_g
            s = direction * t
            ys = float(y @ s)
            if ys > 1e-10:
                if len(dirs) == history_size:
                    dirs.pop(0)
                    steps.pop(0)
                    rho.pop(0)
                dirs.append(y)
                steps.append(s)
                rho.append(1.0 / ys)
                h_diag = ys / float(y @ y)
            # two-loop recursion: direction = -H g
            q = -g
            alpha = [0.0] * len(dirs)
            for i in range(len(dirs) - 1, -1, -1):
                alpha[i] = float(steps[i] @ q) * rho[i]
                q = q - alpha[i] * dirs[i]
            r = q * h_diag
            for i in range(len(dirs)):
                beta = float(dirs[i] @ r) * rho[i]
                r = r + (alpha[i] - beta) * steps[i]
            direction = r
        prev_g = g
        prev_loss = loss
        t = min(1.0, 1.0 / float(np.abs(g).sum())) if iterations == 1 else 1.0
        gtd = float(g @ direction)
        if gtd > -tol:
            break
        loss, g, t, ls_evals = _strong_wolfe(
            fc, x, t, direction, loss, g, gtd, max_ls=max_eval - evals
        )
        x = x + t * direction
        evals += ls_evals
        if iterations == max_iter or evals >= max_eval:
            break
        if np.abs(g).max() <= tol:
            break
        if np.abs(direction * t).max() <= tol:
            break
        if abs(loss - prev_loss) < tol:
            break
    return OptimResult(x, iterations, len(fc.history), tuple(fc.history))


def minimise(
    f: Evaluate, d: int, settings: FitSettings, x0: FloatArray | None = None
) -> OptimResult:
    """Run the configured optimiser from zero weights (or from ``x0``)."""
    if settings.optimizer == "lbfgs":
        return run_lbfgs(f, d, settings, x0)
    return run_adamw(f, d, settings, x0=x0)
