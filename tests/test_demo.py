"""The demo (`python -m hyperdual`) runs and its own checks come out right."""
import re
import subprocess
import sys

import numpy as np

from hyperdual import __main__ as demo


def test_demo_main_checks_pass(capsys):
    demo.main()
    out = capsys.readouterr().out
    assert "block shapes: (3, 3) (3, 4) (4, 3) (4, 4)" in out
    err = float(re.search(r"max \|H - closed form\| = (\S+)", out).group(1))
    assert err <= 1e-12
    assert "matches the closed form: True" in out
    assert "3 index pairs in 1 pass(es)" in out
    grad = float(re.search(r"\|grad\| = (\S+)", out.split("stationary point")[1]).group(1))
    assert grad < 1e-8


def test_rosenbrock_closed_form_helper_matches_differences():
    x = np.array([0.3, -0.7, 1.1, 0.2])
    h = 1e-4
    f = demo.rosenbrock
    H = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            ei, ej = np.eye(4)[i] * h, np.eye(4)[j] * h
            H[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
    # central differences: O(h²) truncation, O(eps·f/h²) rounding -> about 1e-4 absolute here
    np.testing.assert_allclose(demo.rosenbrock_hessian(x), H, atol=1e-3)


def test_python_dash_m_runs():
    out = subprocess.run([sys.executable, "-m", "hyperdual"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "matches the closed form: True" in out.stdout
