"""Independent scipy fits for parity tests (scipy is a test-only dependency)."""

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber as scipy_huber
from scipy.special import logsumexp


def chinchilla_huber(x, logN, logD, logL, delta=1e-3):
    """Hoffmann's objective in NumPy/scipy: x = (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = x
    pred = logsumexp([a - alpha * logN, b - beta * logD, np.full_like(logN, e)], axis=0)
    return float(np.sum(scipy_huber(delta, pred - logL)))


def best_of(fun, starts, method="L-BFGS-B", **kw):
    """Minimise ``fun`` from every start with scipy, one at a time; return (f, x) of the best."""
    best = (np.inf, None)
    for x0 in np.atleast_2d(starts):
        res = minimize(fun, np.asarray(x0, float), method=method, **kw)
        if np.isfinite(res.fun) and res.fun < best[0]:
            best = (float(res.fun), res.x)
    return best
