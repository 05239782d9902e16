"""The polynomial coefficients of the SIMD GELU in src/gelu.c, fitted here (numpy, double).

erfc(a) = exp(-a^2) * q(t) / (a + K) with t = (a - K) / (a + K) and K = 3: q approximates
erfcx(a) * (a + K), which is bounded (3 at a = 0, 2 / sqrt(pi) as a -> inf) and smooth in t, over
a in [0, 10.6] (|x| = a sqrt 2 up to 15, past the kernel's cut-off of 14.5). exp(s) is fitted on
[-ln 2 / 2, ln 2 / 2]. Both are weighted least squares on Chebyshev nodes, with the coefficients
rounded to float32 one at a time from the constant term up, each later one refitted to absorb the
rounding. Prints the coefficients (constant term first) and the fit's relative error in double;
tests/native/test_gelu.c measures the float kernel itself.

    /usr/bin/python3 tests/reference/gelu_coefficients.py
"""

import math

import numpy as np

NODES = 6000


def fit_rounded(x, f, degree, weight):
    fixed = []
    for k in range(degree + 1):
        residual = f - sum(c * x**i for i, c in enumerate(fixed))
        basis = np.stack([x**i for i in range(k, degree + 1)], 1) * weight[:, None]
        c, *_ = np.linalg.lstsq(basis, residual * weight, rcond=None)
        fixed.append(float(np.float32(c[0])))
    return fixed


def report(name, coefficients, x, f):
    err = np.max(np.abs(np.polynomial.Polynomial(coefficients)(x) - f) / np.abs(f))
    print(f'{name}: relative error {err:.2e}')
    print('  ' + ', '.join(f'{c:.9g}f' for c in coefficients))


def main():
    cheb = np.cos(np.pi * (np.arange(NODES) + 0.5) / NODES)  # in (-1, 1)
    K, a_max = 3.0, 10.6
    t_max = (a_max - K) / (a_max + K)
    t = -1 + (cheb + 1) / 2 * (t_max + 1)
    a = K * (1 + t) / (1 - t)
    q = np.array([math.erfc(v) * math.exp(v * v) * (K + v) for v in a])
    report('erfcx(a) (a + 3) on t', fit_rounded(t, q, 9, 1 / q), t, q)
    half_ln2 = math.log(2) / 2
    s = half_ln2 * cheb
    report('exp(s)', fit_rounded(s, np.exp(s), 6, np.exp(-s)), s, np.exp(s))


if __name__ == '__main__':
    main()
