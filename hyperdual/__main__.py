"""The demo: ``python -m hyperdual``.

1. The reference API's own example (two recorded inputs, four blocks).
2. A Newton step on the chained Rosenbrock function, with its exact Hessian,
   and a check against the closed form.
3. A lazy sub-block of a 10 000-variable Hessian, showing the work done.
"""
from __future__ import annotations

import time

import numpy as np

import hyperdual


def rosenbrock(x):
    """Chained Rosenbrock: sum(100 (x[i+1] - x[i]²)² + (1 - x[i])²)."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_hessian(x):
    """Closed-form Hessian, for the check."""
    n = x.size
    H = np.zeros((n, n))
    i = np.arange(n - 1)
    H[i, i] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    H[i + 1, i + 1] += 200.0
    H[i, i + 1] = H[i + 1, i] = -400.0 * x[:-1]
    return H


def main() -> None:
    with np.printoptions(precision=4, suppress=True, linewidth=100):
        _demo()


def _demo() -> None:
    rng = np.random.default_rng(0)

    print("1. The reference example: y = x1.sum() + x2.sum(), x1 [3], x2 [4]")
    x1 = hyperdual.variable(rng.standard_normal(3))
    x2 = hyperdual.variable(rng.standard_normal(4))
    x1.stop_gradient = False
    x2.stop_gradient = False
    y = x1.sum() + x2.sum()
    H = hyperdual.hessian(y, (x1, x2))
    print("   block shapes:", H[0][0][:].shape, H[0][1][:].shape, H[1][0][:].shape, H[1][1][:].shape)
    y = np.sum(np.sin(x1) * x1) + np.sum(x2 ** 2) * x1[0]
    H = hyperdual.hessian(y, (x1, x2))
    print("   a nonlinear y = sum(sin(x1) x1) + sum(x2²) x1[0]; the cross block d²y/dx1 dx2:")
    print("  ", str(H[0][1][:]).replace("\n", "\n   "))

    print("\n2. Damped Newton on the chained Rosenbrock function, N = 6, from x = (-1.2, 1, ..., 1)")
    x = np.ones(6)
    x[0] = -1.2
    for step in range(40):
        H = hyperdual.hessian(rosenbrock, x)
        g, full = H.gradient, H[:]
        if step == 0:
            print("   exact Hessian at the start point:")
            print("  ", str(full).replace("\n", "\n   "))
            print(f"   max |H - closed form| = {np.abs(full - rosenbrock_hessian(x)).max():.1e}")
        if np.linalg.norm(g) < 1e-10:
            break
        try:
            d = -np.linalg.solve(full, g)
            if g @ d >= 0:
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            d = -g
        t, f0 = 1.0, rosenbrock(x)
        while rosenbrock(x + t * d) > f0 + 1e-4 * t * (g @ d):
            t *= 0.5
        x = x + t * d
    print(f"   {step} Newton steps reach a stationary point (for N >= 4 a local minimum besides x = 1):")
    print(f"   x = {x}, f = {rosenbrock(x):.4f}, |grad| = {np.linalg.norm(g):.1e}")

    print("\n3. Laziness: H[0:2, 0:2] of the Rosenbrock Hessian at N = 10 000")
    x = rng.uniform(-1.0, 1.0, 10_000)
    t = time.perf_counter()
    H = hyperdual.hessian(rosenbrock, x)
    block = H[0:2, 0:2]
    dt = time.perf_counter() - t
    print("  ", str(block).replace("\n", "\n   "))
    print(f"   {H.stats.pairs_evaluated} index pairs in {H.stats.passes} pass(es), "
          f"{dt * 1e3:.1f} ms (first call includes kernel loading)")
    print(f"   matches the closed form: {np.allclose(block, rosenbrock_hessian(x[:3])[:2, :2], rtol=1e-14)}")


if __name__ == "__main__":
    main()
