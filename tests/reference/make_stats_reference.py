#!/usr/bin/python3
"""Writes the fixtures that pin bd's statistics to standard libraries (CI
needs none of them: tests/test_stats_reference.c and
tests/lua/test_stats_reference.lua read the committed files).

    /usr/bin/python3 tests/reference/make_stats_reference.py    # regenerate

Needs Debian's python3-numpy python3-scipy python3-sklearn python3-gudhi and
python3-mpmath (the versions used go into the files; the committed ones:
numpy 1.24.2, scipy 1.10.1, scikit-learn 1.2.1, gudhi 3.7.1, mpmath 1.2.1).

stats_reference.safetensors: per case, inputs x (n, d) and labels (n, 2) as
F32 tensors "<case>.x" (n, 1, 1, d: a batch of images), "<case>.labels", and in the metadata
  cases              the case names, space-separated
  <case>.metric      the bd metric that measures it
  <case>.config      its config, "key=value ..."
  <case>.stats       the result names compared
  <case>.<stat>      the library's value(s), "%.17g" space-separated (bars
                     as birth death pairs)
computed in float64 from the float32 inputs:
  manifold (method = pca): eff_dim (participation ratio of numpy's
    covariance spectrum), explained_variance_ratio (sklearn PCA), r2_x,
    r2_y (sklearn LinearRegression on the top `dims` PCA scores), r2_x_pca,
    r2_y_pca (on the top `pcs`), trustworthiness (sklearn.manifold),
    knn_r2_x, knn_r2_y (KNeighborsRegressor, leave-one-out), dist_rank_corr
    (scipy.stats.spearmanr over all pairs, average ranks for ties).
  persistence: h0, h1 from gudhi.RipsComplex, Z/2 coefficients, to
    max_length (gudhi's max_edge_length) or, by default, every edge.
  factorization: hist_xy, hist_xx, hist_yy (numpy.histogram over [-1, 1]
    of the cosines of unit steps between grid-cell means), orthogonality,
    parallel_x, parallel_y, aligned_x, aligned_y.
stats_scipy.lua: scipy.stats' t and normal quantiles and cdfs (t quantiles
also to 30 digits by mpmath: scipy's are less exact), t intervals,
Welch intervals (Welch-Satterthwaite df, checked against ttest_ind's p),
Wilson intervals (binomtest.proportion_ci) and bootstrap percentiles
(numpy.quantile of stats.lua's own resamples), for scripts/lib/stats.lua.
Deterministic: numpy's seeded generator and exact algorithms only.
"""
import os
import sys
import warnings

import gudhi
import mpmath
import numpy as np
import scipy
import scipy.stats as st
import sklearn
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.manifold import trustworthiness
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.neighbors import KNeighborsRegressor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bd_torch import HERE, save_safetensors  # noqa: E402

VERSIONS = {"numpy": np.__version__, "scipy": scipy.__version__,
            "sklearn": sklearn.__version__, "gudhi": gudhi.__version__,
            "mpmath": mpmath.__version__}


def fmt(values):
    return " ".join("%.17g" % v for v in np.ravel(values))


def grid_labels(gx, gy, repeat=1):
    """(gx gy repeat, 2) labels on the grid [0, gx) x [0, gy), row-major."""
    xs, ys = np.meshgrid(np.arange(gx), np.arange(gy))
    lab = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    return np.repeat(lab, repeat, axis=0)


# ---- manifold ---------------------------------------------------------------

def knn_tie_free(x, k):
    """Whether every point's k-th and (k+1)-th neighbour distances differ by
    more than float32 rounding (else bd's seeded tie-break and sklearn's
    index order may pick different neighbours)."""
    d = np.sort(np.linalg.norm(x[:, None] - x[None], axis=2), axis=1)[:, 1:]
    return bool(np.all(d[:, k] - d[:, k - 1] > 1e-4 * d[:, k]))


def manifold_expected(x, labels, dims, pcs, eval_k, order_k):
    x = x.astype(np.float64)
    spectrum = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    kp = min(max(pcs, dims), *x.shape)
    pca = PCA(n_components=kp, svd_solver="full").fit(x)
    scores = pca.transform(x)
    emb = np.zeros((len(x), dims))
    emb[:, :min(dims, kp)] = scores[:, :dims]
    out = {"eff_dim": spectrum.sum() ** 2 / (spectrum ** 2).sum(),
           "explained_variance_ratio": pca.explained_variance_ratio_}
    for axis, name in ((0, "x"), (1, "y")):
        y = labels[:, axis].astype(np.float64)
        out["r2_" + name] = LinearRegression().fit(emb, y).score(emb, y)
        top = scores[:, :min(pcs, kp)]
        out["r2_%s_pca" % name] = LinearRegression().fit(top, y).score(top, y)
        pred = cross_val_predict(KNeighborsRegressor(n_neighbors=order_k), x, y,
                                 cv=LeaveOneOut())
        out["knn_r2_" + name] = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    out["trustworthiness"] = trustworthiness(x, emb, n_neighbors=eval_k)
    iu = np.triu_indices(len(x), 1)
    da = np.linalg.norm(x[:, None] - x[None], axis=2)[iu]
    dl = np.linalg.norm(labels[:, None].astype(np.float64) - labels[None], axis=2)[iu]
    out["dist_rank_corr"] = st.spearmanr(da, dl).correlation
    return out


def manifold_cases(rng):
    """An ordered code with label ties (a grid), an unrelated one, and a
    rank-3 code of scattered labels in more dimensions than samples (collinear PCs: the least squares of
    r2_linear must still be the best fit)."""
    cases = {}
    lab = grid_labels(8, 6)
    feats = np.concatenate([lab, np.sin(lab), lab ** 2 / 8], 1)
    x = feats @ rng.normal(size=(6, 12)) + 0.3 * rng.normal(size=(48, 12))
    cases["ordered"] = (x, lab, dict(dims=3, pcs=4, eval_k=10, order_k=5))
    x = rng.normal(size=(40, 7))
    cases["unrelated"] = (x, grid_labels(5, 8), dict(dims=3, pcs=10, eval_k=8, order_k=3))
    lab = rng.uniform(0, 6, size=(36, 2)).astype(np.float32)
    x = np.concatenate([lab, lab[:, :1] * lab[:, 1:]], 1) @ rng.normal(size=(3, 50))
    x += 1e-3 * rng.normal(size=x.shape)
    cases["low_rank"] = (x, lab, dict(dims=3, pcs=5, eval_k=10, order_k=4))
    return cases


def add_manifold(meta, tensors, rng):
    for name, (x, lab, o) in manifold_cases(rng).items():
        x = x.astype(np.float32)
        assert knn_tie_free(x.astype(np.float64), o["order_k"]), name
        want = manifold_expected(x, lab, **o)
        add_case(meta, tensors, "manifold_" + name, x, lab, "manifold",
                 "method=pca dims=%(dims)d pcs=%(pcs)d eval_neighbors=%(eval_k)d"
                 " order_neighbors=%(order_k)d" % o, want)


# ---- persistence -----------------------------------------------------------

def rips_bars(x, max_length, pcs, rms):
    """gudhi's H0 (every bar, zero-length ones too) and H1 (bars of positive
    length: pairs of equal values are not bars, as in bd) of x, or of its
    top pcs principal components (sklearn), over the rms radius with rms;
    the radius (scale), the filtration's end (numpy) and the H1 count."""
    x = x.astype(np.float64)
    if pcs:
        x = PCA(n_components=pcs, svd_solver="full").fit_transform(x)
    scale = np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean())
    dist = np.linalg.norm(x[:, None] - x[None], axis=2) / (scale if rms else 1)
    end = max_length or dist.max(1).min()
    rc = gudhi.RipsComplex(distance_matrix=dist, max_edge_length=end)
    tree = rc.create_simplex_tree(max_dimension=2)
    pairs = tree.persistence(homology_coeff_field=2, min_persistence=-1)
    h0 = sorted(p for dim, p in pairs if dim == 0)
    h1 = sorted(p for dim, p in pairs if dim == 1 and p[1] > p[0])
    return {"h0": np.array(h0).ravel(), "h1": np.array(h1).ravel(),
            "h1_count": len(h1), "scale": scale, "end": end}


def add_persistence(meta, tensors, rng):
    """A noisy circle, a 3D Gaussian cloud, a 4 x 4 lattice with a doubled
    point (ties everywhere, a zero-length H0 bar, nine squares each born at
    1 and dying at sqrt 2), the circle cut at max_length (an essential
    H1 bar), and a flat torus in 4 of 12 dims through pca = 4 and
    normalize = rms. gudhi runs to bd's end (the enclosing radius, where
    everything but one H0 bar has died), or max_length."""
    t = np.linspace(0, 2 * np.pi, 30, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], 1) + 0.08 * rng.normal(size=(30, 2))
    lattice = grid_labels(4, 4)
    lattice = np.concatenate([lattice, lattice[5:6]], 0)
    a, b = rng.uniform(0, 2 * np.pi, size=(2, 60))
    torus = np.concatenate([np.stack([np.cos(a), np.sin(a), np.cos(b), np.sin(b)], 1),
                            0.05 * rng.normal(size=(60, 8))], 1)
    cases = {"circle": (circle, ""), "gauss": (rng.normal(size=(40, 3)), ""),
             "lattice": (lattice, ""), "circle_cut": (circle, "max_length=0.9"),
             "torus_rms": (torus, "pca=4 normalize=rms")}
    for name, (x, config) in cases.items():
        x = x.astype(np.float32)
        want = rips_bars(x, 0.9 if "max_length" in config else 0,
                         4 if "pca" in config else 0, "rms" in config)
        add_case(meta, tensors, "persistence_" + name, x, np.zeros((len(x), 2)),
                 "persistence", config, want)


# ---- factorization ---------------------------------------------------------

def grid_steps(v, periodic):
    """Unit x-steps and y-steps of cell means v (gy, gx, d), with the start
    index along their axis; zero steps left out. periodic: the last value
    of each axis (of 3 or more) steps to the first."""
    def unit(s, tags):
        norm = np.linalg.norm(s, axis=1)
        return s[norm > 0] / norm[norm > 0, None], tags[norm > 0]
    gy, gx, d = v.shape
    wx, wy = int(periodic and gx >= 3), int(periodic and gy >= 3)
    sx = (np.roll(v, -1, axis=1) - v)[:, :gx - 1 + wx].reshape(-1, d)
    sy = (np.roll(v, -1, axis=0) - v)[:gy - 1 + wy].reshape(-1, d)
    tx = np.tile(np.arange(gx - 1 + wx), gy)
    ty = np.repeat(np.arange(gy - 1 + wy), gx)
    return unit(sx, tx), unit(sy, ty)


def cos_stats(a, ta, b, tb, same, bins):
    """Cosines of pairs (p != q when same): their mean, mean |.|, mean over
    equal tags, numpy histogram as fractions."""
    c = a @ b.T
    keep = ~np.eye(len(a), dtype=bool) if same else np.ones(c.shape, bool)
    tags = (ta[:, None] == tb[None]) & keep
    hist = np.histogram(c[keep], bins=bins, range=(-1, 1))[0] / keep.sum()
    return c[keep].mean(), np.abs(c[keep]).mean(), c[tags].mean(), hist


def factorization_expected(x, lab, bins, periodic):
    gx, gy = int(lab[:, 0].max()) + 1, int(lab[:, 1].max()) + 1
    v = np.zeros((gy, gx, x.shape[1]))
    count = np.zeros((gy, gx))
    for row, (i, j) in zip(x.astype(np.float64), lab.astype(int)):
        v[j, i] += row
        count[j, i] += 1
    (sx, tx), (sy, ty) = grid_steps(v / count[..., None], periodic)
    _, ortho, _, hxy = cos_stats(sx, tx, sy, ty, False, bins)
    px, _, ax, hxx = cos_stats(sx, tx, sx, tx, True, bins)
    py, _, ay, hyy = cos_stats(sy, ty, sy, ty, True, bins)
    return {"orthogonality": ortho, "parallel_x": px, "parallel_y": py,
            "aligned_x": ax, "aligned_y": ay, "hist_xy": hxy, "hist_xx": hxx,
            "hist_yy": hyy}


def add_factorization(meta, tensors, rng):
    """A random code on a 5 x 4 grid, two samples per cell (21 bins); a
    factorized code with exactly orthogonal, parallel and opposite steps, so
    cosines 0, 1 and -1 fall on bin edges (20 bins: 0 is an edge, numpy's
    bins are [a, b) with the last closed); a random code on a periodic 4 x 3
    grid (periodic = 1, 10 bins)."""
    lab = grid_labels(5, 4, repeat=2)
    x = rng.normal(size=(40, 9))
    f = np.array([0, 1, 3, 2, 4], float)  # x-steps +1 +2 -1 +2: cos +-1
    code = np.zeros((20, 6))
    code[:, 0] = f[lab[::2, 0].astype(int)]
    code[:, 3] = lab[::2, 1] ** 2
    cases = {"random": (x, lab, 21, 0), "factorized": (code, lab[::2], 20, 0),
             "periodic": (rng.normal(size=(12, 5)), grid_labels(4, 3), 10, 1)}
    for name, (x, lab, bins, periodic) in cases.items():
        x = x.astype(np.float32)
        add_case(meta, tensors, "factorization_" + name, x, lab, "factorization",
                 "bins=%d periodic=%d" % (bins, periodic),
                 factorization_expected(x, lab, bins, periodic))


# ---- the safetensors file --------------------------------------------------

def add_case(meta, tensors, case, x, labels, metric, config, want):
    tensors[case + ".x"] = np.ascontiguousarray(x.reshape(len(x), 1, 1, -1), np.float32)
    tensors[case + ".labels"] = np.ascontiguousarray(labels, np.float32)
    meta["cases"] = (meta.get("cases", "") + " " + case).strip()
    meta[case + ".metric"] = metric
    meta[case + ".config"] = config
    meta[case + ".stats"] = " ".join(want)
    for stat, value in want.items():
        meta["%s.%s" % (case, stat)] = fmt(value)


# ---- stats.lua ---------------------------------------------------------------

def lua_list(values):
    return "{ " + ", ".join("%.17g" % v for v in values) + " }"


def t_quantile_exact(p, df):
    """Student's t quantile to 30 digits (mpmath): scipy's t.ppf is off by
    up to about 2e-9 relative (t.cdf at it misses p by 3.6e-10 for p = 0.9,
    df = 3), so bd's quantiles are checked against both."""
    mpmath.mp.dps = 30

    def cdf(t):
        tail = mpmath.betainc(df / 2, 0.5, 0, df / (df + t * t), regularized=True) / 2
        return 1 - tail if t >= 0 else tail
    if p == 0.5:
        return 0.0
    return float(mpmath.findroot(lambda t: cdf(t) - mpmath.mpf(p), st.t.ppf(p, df)))


def t_interval(xs, level):
    xs = np.asarray(xs, float)
    sem = xs.std(ddof=1) / np.sqrt(len(xs))
    if sem == 0:
        return xs.mean(), xs.mean()
    return st.t.interval(level, len(xs) - 1, loc=xs.mean(), scale=sem)


def welch(a, b, level):
    """(df, lo, hi); df checked against ttest_ind's p-value."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a list with no spread
        test = st.ttest_ind(a, b, equal_var=False)
    assert abs(2 * st.t.sf(abs(test.statistic), df) - test.pvalue) < 1e-12
    half = st.t.ppf((1 + level) / 2, df) * np.sqrt(va + vb)
    diff = a.mean() - b.mean()
    return df, diff - half, diff + half


def splitmix(seed):
    """stats.lua's integers (splitmix64), so that the bootstrap's resamples
    are bd's own and only the percentile convention is numpy's."""
    mask, state = (1 << 64) - 1, seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        yield z ^ (z >> 31)


def bootstrap(xs, seed, reps, level):
    """The percentile interval of the mean of reps resamples: numpy.quantile
    (method linear, Hyndman and Fan's type 7)."""
    draw, n, means = splitmix(seed), len(xs), []
    for _ in range(reps):
        total = 0.0
        for _ in range(n):
            total += xs[(next(draw) >> 11) % n]
        means.append(total / n)
    return np.quantile(means, [(1 - level) / 2, (1 + level) / 2], method="linear")


def stats_lua(rng):
    ps = [0.5, 0.6, 0.9, 0.95, 0.975, 0.995, 0.9995, 0.025, 1e-6]
    dfs = [1, 2, 2.5, 3, 4.7, 10, 30, 1000]
    lists = [[1, 2, 3], [0.1, 0.3, 0.2, 0.25], [4, 4, 4, 5],
             list(rng.normal(3, 2, 12)), [7, 7, 7]]
    pairs = [([1, 2, 3], [4, 6, 8]), (list(rng.normal(0, 1, 5)), list(rng.normal(1, 3, 9))),
             ([0.5, 0.5, 0.6], [0.1, 0.9, 0.4, 0.7]), ([2, 2, 2], [1, 3, 5, 7])]
    counts = [(8, 10), (0, 20), (20, 20), (1, 3), (52, 64), (317, 1000), (1, 1)]
    lines = ["-- Written by tests/reference/make_stats_reference.py: scipy.stats "
             "values for scripts/lib/stats.lua.",
             "-- " + ", ".join("%s %s" % kv for kv in VERSIONS.items()),
             "return {", "  normal = {"]
    zs = [-3, -1.5, 0, 0.3, 1.959964, 4]
    lines += ["    { p = %.17g, quantile = %.17g }," % (p, st.norm.ppf(p)) for p in ps]
    lines += ["  },", "  normal_cdf = {"]
    lines += ["    { z = %.17g, cdf = %.17g }," % (z, st.norm.cdf(z)) for z in zs]
    lines += ["  },", "  t = {"]
    lines += ["    { p = %.17g, df = %.17g, quantile = %.17g, cdf = %.17g, exact = %.17g },"
              % (p, df, st.t.ppf(p, df), st.t.cdf(st.t.ppf(p, df), df), t_quantile_exact(p, df))
              for p in ps for df in dfs]
    lines += ["  },", "  t_interval = {"]
    for xs in lists:
        for level in (0.95, 0.9):
            lo, hi = t_interval(xs, level)
            lines.append("    { values = %s, level = %g, lo = %.17g, hi = %.17g },"
                         % (lua_list(xs), level, lo, hi))
    lines += ["  },", "  welch = {"]
    for a, b in pairs:
        for level in (0.95, 0.99):
            df, lo, hi = welch(a, b, level)
            lines.append("    { a = %s, b = %s, level = %g, df = %.17g, lo = %.17g,"
                         " hi = %.17g }," % (lua_list(a), lua_list(b), level, df, lo, hi))
    lines += ["  },", "  wilson = {"]
    for k, n in counts:
        for level in (0.95, 0.99):
            ci = st.binomtest(k, n).proportion_ci(level, method="wilson")
            lines.append("    { k = %d, n = %d, level = %g, lo = %.17g, hi = %.17g },"
                         % (k, n, level, ci.low, ci.high))
    lines += ["  },", "  bootstrap = {"]
    for xs in lists[:4]:
        for seed, reps, level in ((1, 2000, 0.95), (7, 999, 0.9)):
            lo, hi = bootstrap(xs, seed, reps, level)
            lines.append("    { values = %s, seed = %d, reps = %d, level = %g, lo = %.17g,"
                         " hi = %.17g }," % (lua_list(xs), seed, reps, level, lo, hi))
    lines += ["  },", "}"]
    return "\n".join(lines) + "\n"


def main():
    rng = np.random.default_rng(20261207)
    meta, tensors = dict(VERSIONS, script="tests/reference/make_stats_reference.py"), {}
    add_manifold(meta, tensors, rng)
    add_persistence(meta, tensors, rng)
    add_factorization(meta, tensors, rng)
    save_safetensors(os.path.join(HERE, "stats_reference.safetensors"), tensors, meta)
    with open(os.path.join(HERE, "stats_scipy.lua"), "w") as f:
        f.write(stats_lua(rng))


if __name__ == "__main__":
    main()
