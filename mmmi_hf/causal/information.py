"""Exact mutual information of the latent Gaussian, from its structure. All values in nats.

Blocks are ``theta`` (the scalar z_theta) and ``x1..xN`` (the d-dimensional z_i). The joint
covariance of the modality blocks is

    Sigma = M (x) I_d + L L^T,    M = rho_private rho_private^T  (N x N),
    L_i = [rho_common[i, k] T[i, k]]_k                            (d x K per block),

and ``theta = eta^T u_common``. For a set S of modality blocks, with
``P_S = L_S^T (M_S^-1 (x) I_d) L_S`` (K x K, built from template inner products only):

    log|Sigma_S|         = d log|M_S| + log|I + P_S|                (determinant lemma)
    log|Sigma_{theta,S}| = log|Sigma_S| + log(eta^T (I + P_S)^-1 eta)   (Schur complement)

The second factor is the posterior variance of theta given z_S. Nothing larger than
max(N, K) x max(N, K) is ever factorised, and no d x d matrix is formed.

Every MI-like query is a signed sum of log-determinants, ``I = 1/2 sum_S c_S log|Sigma_S|``,
and its pointwise version (PMI) is ``-sum_S c_S log p(z_S)``, whose mean is that MI. Invertible
per-block maps x_i = f_i(z_i) change neither: their Jacobians cancel between the terms.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve
from scipy.optimize import brentq

from mmmi_hf.causal.spec import CausalSpec
from mmmi_hf.causal.templates import build_templates

__all__ = [
    "LatentInformation",
    "Query",
    "format_group",
    "parse_query",
    "resolve",
    "solve_target",
    "standard_queries",
]

THETA = 0  # block index of theta; modality x_i has block index i (1-based)


@dataclass(frozen=True)
class Query:
    """A parsed information query.

    ``kind`` is ``"mi"`` (A;B), ``"cmi"`` (A;B|C) or ``"coinformation"`` (A;B;C, optionally |D).
    ``terms`` maps block sets to integer coefficients c_S with I = 1/2 sum c_S log|Sigma_S|.
    """

    text: str
    kind: str
    groups: tuple[frozenset[int], ...]
    given: frozenset[int]
    terms: tuple[tuple[frozenset[int], int], ...]


def _parse_group(text: str, modalities: int, query: str) -> frozenset[int]:
    blocks: list[int] = []
    expected = f"theta, x1..x{modalities} or a range such as x1..x{modalities}"
    for token in (t.strip() for t in text.split(",")):
        if token == "theta":
            blocks.append(THETA)
            continue
        match = re.fullmatch(r"x(\d+)(?:\.\.x(\d+))?", token)
        lo, hi = (int(match.group(1)), int(match.group(2) or match.group(1))) if match else (0, 0)
        if not match or not 1 <= lo <= hi <= modalities:
            raise ValueError(f"query {query!r}: unknown block {token!r} (expected {expected})")
        blocks.extend(range(lo, hi + 1))
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"query {query!r}: group {text.strip()!r} names a block twice")
    return frozenset(blocks)


def _mi_terms(a: frozenset[int], b: frozenset[int], c: frozenset[int]) -> dict[frozenset[int], int]:
    return {a | c: 1, b | c: 1, a | b | c: -1, c: -1}


def _add(total: dict[frozenset[int], int], terms: dict[frozenset[int], int], sign: int) -> None:
    for blocks, coef in terms.items():
        total[blocks] = total.get(blocks, 0) + sign * coef


def parse_query(text: str, modalities: int) -> Query:
    """Parse ``A;B``, ``A;B|C`` or ``A;B;C`` (co-information, optionally ``|D``).

    Each group is a comma list of ``theta``, ``x1``..``xN`` and ranges ``xI..xJ``. Groups must
    not share a block (the MI between overlapping continuous groups is infinite).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"query: expected 'A;B', 'A;B|C' or 'A;B;C', got {text!r}")
    left, _, right = text.partition("|")
    parts = left.split(";")
    if len(parts) not in (2, 3) or text.count("|") > 1:
        raise ValueError(f"query {text!r}: expected 'A;B', 'A;B|C' or 'A;B;C' (groups separated by ';')")
    groups = tuple(_parse_group(p, modalities, text) for p in parts)
    given = _parse_group(right, modalities, text) if right.strip() else frozenset()
    seen: set[int] = set()
    for group in (*groups, given):
        if seen & group:
            name = format_group(seen & group)
            raise ValueError(f"query {text!r}: {name} appears in two groups; groups must be disjoint")
        seen |= group
    if "|" in text and not given:
        raise ValueError(f"query {text!r}: empty condition after '|'")
    total: dict[frozenset[int], int] = {}
    if len(groups) == 2:
        kind = "cmi" if given else "mi"
        _add(total, _mi_terms(groups[0], groups[1], given), 1)
    else:
        kind = "coinformation"
        _add(total, _mi_terms(groups[0], groups[1], given), 1)
        _add(total, _mi_terms(groups[0], groups[1], given | groups[2]), -1)
    terms = tuple(sorted(((s, c) for s, c in total.items() if c and s), key=lambda t: sorted(t[0])))
    return Query(text=text.strip(), kind=kind, groups=groups, given=given, terms=terms)


def format_group(blocks: Iterable[int]) -> str:
    """Text of a block set: ``theta`` first, runs of three or more modalities as ``xI..xJ``."""
    ordered = sorted(blocks)
    names = ["theta"] if ordered and ordered[0] == THETA else []
    mods = [b for b in ordered if b != THETA]
    start = 0
    while start < len(mods):
        end = start
        while end + 1 < len(mods) and mods[end + 1] == mods[end] + 1:
            end += 1
        if end - start >= 2:
            names.append(f"x{mods[start]}..x{mods[end]}")
        else:
            names.extend(f"x{m}" for m in mods[start : end + 1])
        start = end + 1
    return ",".join(names)


def standard_queries(modalities: int) -> list[str]:
    """The default table: I(theta;xi), I(xi;xj), I(xi;xj|theta), I(theta;x1..xN) and, for
    N >= 2, the co-information I(theta;x1;x2)."""
    n = modalities
    pairs = [(i, j) for i in range(1, n + 1) for j in range(i + 1, n + 1)]
    queries = [f"theta;x{i}" for i in range(1, n + 1)]
    queries += [f"x{i};x{j}" for i, j in pairs]
    queries += [f"x{i};x{j}|theta" for i, j in pairs]
    if n >= 2:
        queries.append(f"theta;{format_group(range(1, n + 1))}")
        queries.append("theta;x1;x2")
    return queries


class LatentInformation:
    """Exact log-determinants, MI and PMI of the latent Gaussian (theta, z_1..z_N).

    Args (keyword-only):
        eta: (K,) weights of the common causes in theta.
        rho_common: (N, K) effective weights of the common causes in each modality.
        rho_private: (N, J) effective weights of the private latents in each modality.
        templates: (N, K, d) templates T[i, k].
    """

    def __init__(
        self,
        *,
        eta: np.ndarray,
        rho_common: np.ndarray,
        rho_private: np.ndarray,
        templates: np.ndarray,
        _template_gram: np.ndarray | None = None,
    ) -> None:
        self.eta = np.asarray(eta, dtype=np.float64)
        self.rho_common = np.asarray(rho_common, dtype=np.float64)
        self.rho_private = np.asarray(rho_private, dtype=np.float64)
        self.templates = np.asarray(templates, dtype=np.float64)
        n, k, d = self.templates.shape
        if self.rho_common.shape != (n, k) or self.eta.shape != (k,) or self.rho_private.shape[0] != n:
            raise ValueError(
                f"coefficients: eta {self.eta.shape}, rho_common {self.rho_common.shape} and "
                f"rho_private {self.rho_private.shape} do not fit templates of shape {self.templates.shape}"
            )
        self.modalities, self.common_causes, self.d = n, k, d
        gram = (
            np.einsum("ikd,jld->ikjl", self.templates, self.templates)
            if _template_gram is None
            else _template_gram
        )
        self._template_gram = gram
        #: cross[i, k, j, l] = (L_i^T L_j)[k, l] = rho_common[i,k] rho_common[j,l] <T_ik, T_jl>
        self.cross = self.rho_common[:, :, None, None] * self.rho_common[None, None, :, :] * gram
        self.m = self.rho_private @ self.rho_private.T
        self._factors: dict[tuple[int, ...], tuple[np.ndarray, float, np.ndarray, float]] = {}

    def with_coefficients(self, *, eta: np.ndarray, rho_common: np.ndarray, rho_private: np.ndarray) -> LatentInformation:
        """The same templates with other coefficients (reuses the template inner products)."""
        return LatentInformation(
            eta=eta,
            rho_common=rho_common,
            rho_private=rho_private,
            templates=self.templates,
            _template_gram=self._template_gram,
        )

    # -- structure -------------------------------------------------------------------------
    def _factor(self, mods: tuple[int, ...]) -> tuple[np.ndarray, float, np.ndarray, float]:
        """For 0-based modality indices ``mods``: (M_S^-1, log|M_S|, cholesky(I + P_S), log|I + P_S|)."""
        cached = self._factors.get(mods)
        if cached is not None:
            return cached
        idx = np.asarray(mods)
        m_s = self.m[np.ix_(idx, idx)]
        eig = np.linalg.eigvalsh(m_s)
        if eig[0] <= 1e-12 * max(eig[-1], 1e-300):
            names = format_group(i + 1 for i in mods)
            raise ValueError(
                f"rho_private: the private mixing rho_private rho_private^T is singular over {names}, "
                "so their joint covariance is singular and the MI is infinite; expected linearly "
                "independent rows of rho_private for the modalities queried"
            )
        m_inv = np.linalg.inv(m_s)
        p = np.einsum("ab,akbl->kl", m_inv, self.cross[np.ix_(idx, range(self.common_causes), idx)])
        chol = np.linalg.cholesky(np.eye(self.common_causes) + 0.5 * (p + p.T))
        out = (m_inv, float(np.sum(np.log(eig))), chol, 2.0 * float(np.sum(np.log(np.diag(chol)))))
        self._factors[mods] = out
        return out

    def _posterior_solve(self, chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """(I + P_S)^-1 rhs for rhs of shape (K,) or (K, n)."""
        return cho_solve((chol, True), rhs)

    def _logdet_parts(self, blocks: frozenset[int]) -> tuple[float, ...]:
        """The summands of :meth:`logdet`: d log|M_S|, log|I + P_S| and, with theta, the log
        posterior variance of theta."""
        mods = tuple(sorted(b - 1 for b in blocks if b != THETA))
        has_theta = THETA in blocks
        if not mods:
            return (math.log(float(self.eta @ self.eta)),) if has_theta else ()
        _, ld_m, chol, ld_ip = self._factor(mods)
        if not has_theta:
            return (self.d * ld_m, ld_ip)
        return (self.d * ld_m, ld_ip, math.log(float(self.eta @ self._posterior_solve(chol, self.eta))))

    def logdet(self, blocks: Iterable[int]) -> float:
        """log-determinant of the covariance of ``blocks`` (0 = theta, i = x_i); 0 for the
        empty set."""
        return float(sum(self._logdet_parts(frozenset(blocks))))

    # -- information ------------------------------------------------------------------------
    def _query(self, query: str | Query) -> Query:
        return query if isinstance(query, Query) else parse_query(query, self.modalities)

    def mutual_information(self, query: str | Query) -> float:
        """Exact value of an MI query (``A;B``, ``A;B|C``, ``A;B;C``), in nats.

        A value within the rounding error of the sum it comes from (64 eps times the summed
        magnitudes of its log-determinant parts) is returned as exactly 0; MI and conditional MI are never negative,
        co-information may be.
        """
        q = self._query(query)
        parts = [c * part for s, c in q.terms for part in self._logdet_parts(s)]
        value = 0.5 * sum(parts)
        if abs(value) <= 64 * np.finfo(float).eps * sum(abs(p) for p in parts):
            return 0.0
        return value if q.kind == "coinformation" else max(value, 0.0)

    def total_correlation(self, groups: Sequence[Iterable[int]]) -> float:
        """Total correlation sum_g H(g) - H(all) of disjoint block groups, in nats."""
        sets = [frozenset(g) for g in groups]
        union = frozenset().union(*sets)
        if sum(len(s) for s in sets) != len(union):
            raise ValueError("total_correlation: groups must be disjoint")
        return max(0.5 * (sum(self.logdet(s) for s in sets) - self.logdet(union)), 0.0)

    def table(self, queries: Sequence[str] | None = None) -> dict[str, float]:
        """{query: nats} for ``queries`` (default: :func:`standard_queries`)."""
        queries = standard_queries(self.modalities) if queries is None else queries
        return {q: self.mutual_information(q) for q in queries}

    # -- pointwise ----------------------------------------------------------------------------
    def log_density(self, blocks: Iterable[int], theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        """log p of the blocks at given latents, without the (2 pi) constant, which cancels in
        every PMI.

        Args:
            blocks: block indices (0 = theta, i = x_i).
            theta: (n,) values of z_theta.
            z: (n, N, d) unscaled latents z_1..z_N.

        Returns:
            (n,) float64: ``-1/2 (log|Sigma_S| + v^T Sigma_S^-1 v)``.
        """
        blocks = frozenset(blocks)
        mods = tuple(sorted(b - 1 for b in blocks if b != THETA))
        theta = np.asarray(theta, dtype=np.float64)
        if not mods:
            a = float(self.eta @ self.eta)
            return -0.5 * (math.log(a) + theta**2 / a)
        m_inv, ld_m, chol, ld_ip = self._factor(mods)
        idx = np.asarray(mods)
        z_s = np.asarray(z, dtype=np.float64)[:, idx]
        y = np.einsum("ab,nbd->nad", m_inv, z_s)  # (M_S^-1 (x) I) z_S
        w = np.einsum("nad,akd->nk", y, self.templates[idx] * self.rho_common[idx, :, None])  # L_S^T y
        post = self._posterior_solve(chol, w.T).T  # E[u_common | z_S] = (I + P)^-1 w
        quad = np.einsum("nad,nad->n", z_s, y) - np.einsum("nk,nk->n", w, post)
        out = -0.5 * (self.d * ld_m + ld_ip + quad)
        if THETA in blocks:
            var = float(self.eta @ self._posterior_solve(chol, self.eta))
            out -= 0.5 * (math.log(var) + (theta - post @ self.eta) ** 2 / var)
        return out

    def pmi(self, query: str | Query, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Pointwise version of an MI query at given latents; its mean over the model is
        :meth:`mutual_information`.

        Args:
            query: ``A;B``, ``A;B|C`` or ``A;B;C``.
            theta: (n,) values of z_theta.
            z: (n, N, d) unscaled latents.

        Returns:
            (n,) float64, in nats.
        """
        q = self._query(query)
        z = np.asarray(z, dtype=np.float64).reshape(len(np.atleast_1d(theta)), self.modalities, -1)
        if z.shape[-1] != self.d:
            raise ValueError(f"z: expected (n, {self.modalities}, {self.d}) latents, got trailing size {z.shape[-1]}")
        return -sum(c * self.log_density(s, theta, z) for s, c in q.terms)


def solve_target(mi_of: Callable[[float], float], target: float, *, what: str) -> float:
    """Solve ``mi_of(c) = target`` for a factor c > 0, where ``mi_of`` is monotone in c.

    Scans c over 1e-6..1e6 (log grid), checks monotonicity, then refines with Brent's method.

    Args:
        mi_of: MI in nats as a function of the factor.
        target: wanted MI in nats.
        what: description used in errors, e.g. ``"mi_targets['theta;x1'] by scaling rho_common"``.

    Returns:
        the factor c.
    """
    log_c = np.linspace(math.log(1e-6), math.log(1e6), 121)
    values = np.array([mi_of(math.exp(x)) for x in log_c])
    steps = np.diff(values)
    tol = 1e-9 * max(1.0, float(np.max(np.abs(values))))
    if np.all(np.abs(steps) <= tol):
        raise ValueError(f"{what}: the MI does not depend on this coefficient (it stays {values[0]:.6g} nats)")
    if np.any(steps > tol) and np.any(steps < -tol):
        raise ValueError(f"{what}: the MI is not monotone in the factor, so the 1-D solve is ambiguous")
    residual = values - target
    if np.any(residual == 0.0):
        return math.exp(float(log_c[np.flatnonzero(residual == 0.0)[0]]))
    change = np.flatnonzero(np.sign(residual[:-1]) != np.sign(residual[1:]))
    if change.size == 0:
        raise ValueError(
            f"{what}: target {target:g} nats is out of reach; factors 1e-6..1e6 give "
            f"{values.min():.6g}..{values.max():.6g} nats"
        )
    i = int(change[0])
    root = brentq(lambda x: mi_of(math.exp(x)) - target, log_c[i], log_c[i + 1], xtol=1e-14, rtol=4 * np.finfo(float).eps)
    return math.exp(root)


def _solve_spec(spec: CausalSpec, information: LatentInformation) -> tuple[CausalSpec, LatentInformation]:
    """Inverse design: scale ``spec.solve_for`` until the single ``mi_targets`` entry holds."""
    ((text, target),) = spec.mi_targets.items()
    query = parse_query(text, spec.modalities)
    name, _ = spec.solve_path()

    def info_at(factor: float) -> LatentInformation:
        eta, rho_common, rho_private = spec.scaled(factor).coefficients()
        return information.with_coefficients(eta=eta, rho_common=rho_common, rho_private=rho_private)

    if abs(information.mutual_information(query) - target) <= 1e-12 * max(1.0, target):
        factor, solved, info = 1.0, spec, information  # a resolved spec read back: keep it bit for bit
    else:
        factor = solve_target(
            lambda c: info_at(c).mutual_information(query),
            target,
            what=f"mi_targets[{text!r}] by scaling {spec.solve_for}",
        )
        solved, info = spec.scaled(factor), info_at(factor)
    record = {
        "coefficient": spec.solve_for,
        "factor": factor,
        "value": solved.to_dict()[name],
        "achieved": {text: info.mutual_information(query)},
    }
    return dataclasses.replace(solved, solved=record), info


def resolve(spec: CausalSpec) -> tuple[CausalSpec, LatentInformation]:
    """The information engine of a spec, after solving its ``mi_targets`` (if any).

    Returns:
        the resolved spec (solved coefficient in place, ``solved`` recorded) and its engine.
    """
    eta, rho_common, rho_private = spec.coefficients()
    info = LatentInformation(eta=eta, rho_common=rho_common, rho_private=rho_private, templates=build_templates(spec))
    return _solve_spec(spec, info) if spec.mi_targets else (spec, info)
