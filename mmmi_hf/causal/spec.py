"""The causal spec: one YAML file per dataset configuration, validated into a dataclass.

The structural equations (paper Eq. 12, with the decay factors of Eq. 11) are

    z_theta = sum_k eta[k] * u_common[k]
    z_i     = sum_k rho_common[i][k] * beta**-i * u_common[k] * T[i][k]
            + sum_j rho_private[i][j] * alpha**-|i-j| * u_private[j]

with ``u_common`` in R^K, each ``u_private[j]`` in R^d, ``d = C*H*W``, modalities counted from 0
(``x1`` is ``i = 0``) and every proto-latent i.i.d. standard normal.

Every bad value raises ``ValueError`` naming the key, the value given and what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mmmi_hf.atomic import atomic_write_text

__all__ = [
    "CausalSpec",
    "builtin_config_dir",
    "dump_spec",
    "list_builtin_configs",
    "load_spec",
    "modality_names",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_SOLVABLE = ("eta", "rho_common", "rho_private", "alpha", "beta")
_SOLVE_FOR = re.compile(r"^(eta|rho_common|rho_private|alpha|beta)((?:\[\d+\])*)$")


def modality_names(n: int) -> list[str]:
    """Names of ``n`` modalities: ``["x1", ..., "xn"]``."""
    return [f"x{i + 1}" for i in range(n)]


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{key}: expected a finite number, got {value!r}")
    return float(value)


def _integer(key: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}: expected an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{key}: expected an integer >= {minimum}, got {value}")
    return value


def _vector(key: str, value: Any, length: int, what: str) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{key}: expected a list of {length} numbers ({what}), got {value!r}")
    if len(value) != length:
        raise ValueError(f"{key}: expected {length} entries ({what}), got {len(value)}")
    return tuple(_number(f"{key}[{i}]", v) for i, v in enumerate(value))


def _matrix(key: str, value: Any, rows: int, cols: int, what: str) -> tuple[tuple[float, ...], ...]:
    expected = f"a {rows}x{cols} matrix ({what})"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{key}: expected {expected}, got {value!r}")
    if len(value) != rows or any(
        isinstance(r, (str, bytes)) or not isinstance(r, Sequence) or len(r) != cols for r in value
    ):
        got = [len(r) if isinstance(r, Sequence) and not isinstance(r, str) else r for r in value]
        raise ValueError(f"{key}: expected {expected}, got {len(value)} rows of lengths {got}")
    return tuple(
        tuple(_number(f"{key}[{i}][{j}]", v) for j, v in enumerate(row)) for i, row in enumerate(value)
    )


def _scaling(value: Any) -> str:
    expected = "'whiten', 'none' or 'percentile:Q' with 0 < Q < 1"
    if not isinstance(value, str):
        raise ValueError(f"latent_scaling: expected {expected}, got {value!r}")
    if value in ("whiten", "none"):
        return value
    if value.startswith("percentile:"):
        try:
            q = float(value.split(":", 1)[1])
        except ValueError:
            q = math.nan
        if 0.0 < q < 1.0:
            return value
    raise ValueError(f"latent_scaling: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class CausalSpec:
    """A validated causal spec (the YAML schema). Construct with :func:`load_spec` or
    :meth:`CausalSpec.from_dict`; direct construction validates too.

    Fields hold the coefficients as written; :meth:`coefficients` applies ``alpha`` and ``beta``.
    ``base_dir`` is where template file paths resolve (the YAML file's folder).
    """

    name: str
    shape: tuple[int, int, int]
    modalities: int
    common_causes: int
    eta: tuple[float, ...]
    rho_common: tuple[tuple[float, ...], ...]
    rho_private: tuple[tuple[float, ...], ...] | None = None
    private_latents: int | None = None
    description: str = ""
    alpha: float = 1.0
    beta: float = 1.0
    templates: str | Mapping[str, Any] = "ones"
    latent_scaling: str = "whiten"
    labels: tuple[int, ...] | None = None
    seed: int = 0
    mi_targets: Mapping[str, float] = field(default_factory=dict)
    solve_for: str | None = None
    solved: Mapping[str, Any] | None = None
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        put = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731  (frozen)
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"name: expected lowercase letters, digits, '-' and '.' (starting with a letter "
                f"or digit), got {self.name!r}"
            )
        if not isinstance(self.description, str):
            raise ValueError(f"description: expected a string, got {self.description!r}")
        shape = self.shape
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 3:
            raise ValueError(f"shape: expected [C, H, W] (three positive integers), got {shape!r}")
        put("shape", tuple(_integer(f"shape[{i}]", s, minimum=1) for i, s in enumerate(shape)))
        n = _integer("modalities", self.modalities, minimum=1)
        k = _integer("common_causes", self.common_causes, minimum=1)
        j = n if self.private_latents is None else _integer("private_latents", self.private_latents, minimum=1)
        put("private_latents", j)
        put("eta", _vector("eta", self.eta, k, "one per common cause"))
        if not any(self.eta):
            raise ValueError(
                f"eta: all entries are zero ({list(self.eta)}), so theta is constant and every MI "
                "with theta is undefined; expected at least one nonzero entry"
            )
        put("rho_common", _matrix("rho_common", self.rho_common, n, k, "modalities x common_causes"))
        if self.rho_private is None:
            if j != n:
                raise ValueError(
                    f"rho_private: required when private_latents ({j}) differs from modalities ({n})"
                )
            put("rho_private", tuple(tuple(float(a == b) for b in range(n)) for a in range(n)))
        else:
            put("rho_private", _matrix("rho_private", self.rho_private, n, j, "modalities x private_latents"))
        for i, row in enumerate(self.rho_private):
            if not any(row):
                raise ValueError(
                    f"rho_private[{i}]: x{i + 1} has no private noise (row is all zero), so its "
                    "covariance is singular and every MI with it is infinite; expected a nonzero row"
                )
        for key in ("alpha", "beta"):
            value = _number(key, getattr(self, key))
            if value <= 0:
                raise ValueError(f"{key}: expected a positive number, got {value}")
            put(key, value)
        if not isinstance(self.templates, (str, Mapping)):
            raise ValueError(
                f"templates: expected one template or a mapping {{x1: [T_11, ...], ...}}, got {self.templates!r}"
            )
        put("latent_scaling", _scaling(self.latent_scaling))
        labels = tuple(range(n)) if self.labels is None else self.labels
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence) or len(labels) != n:
            raise ValueError(f"labels: expected {n} class labels (one per modality), got {labels!r}")
        put("labels", tuple(_integer(f"labels[{i}]", v, minimum=0) for i, v in enumerate(labels)))
        put("seed", _integer("seed", self.seed, minimum=0))
        self._check_targets()

    def _check_targets(self) -> None:
        from mmmi_hf.causal.information import parse_query  # local: information imports nothing of ours

        if not isinstance(self.mi_targets, Mapping):
            raise ValueError(f"mi_targets: expected a mapping {{'theta;x1': nats}}, got {self.mi_targets!r}")
        targets = {}
        for query, value in self.mi_targets.items():
            parse_query(str(query), self.modalities)
            value = _number(f"mi_targets[{query!r}]", value)
            if value < 0:
                raise ValueError(f"mi_targets[{query!r}]: expected a nonnegative MI in nats, got {value}")
            targets[str(query)] = value
        object.__setattr__(self, "mi_targets", targets)
        if self.solved is not None and not targets:
            raise ValueError("solved: is recorded by inverse design and is only valid together with mi_targets")
        if targets and self.solve_for is None:
            raise ValueError(
                f"solve_for: required with mi_targets; expected one of {', '.join(_SOLVABLE)} "
                "or one entry such as rho_common[0][0]"
            )
        if self.solve_for is not None:
            if len(targets) != 1:
                raise ValueError(
                    f"mi_targets: solve_for solves one coefficient, so expected exactly one target, got {len(targets)}"
                )
            self.solve_path()

    def solve_path(self) -> tuple[str, tuple[int, ...]]:
        """``solve_for`` parsed into (coefficient name, entry index); the index is empty for a
        whole coefficient."""
        match = _SOLVE_FOR.match(str(self.solve_for))
        if not match:
            raise ValueError(
                f"solve_for: expected one of {', '.join(_SOLVABLE)} or one entry such as "
                f"rho_common[0][0], got {self.solve_for!r}"
            )
        name, index_text = match.groups()
        index = tuple(int(i) for i in re.findall(r"\d+", index_text))
        value = np.asarray(getattr(self, name))
        if len(index) not in (0, value.ndim) or any(i >= s for i, s in zip(index, value.shape)):
            raise ValueError(
                f"solve_for: {self.solve_for!r} does not name an entry of {name} (shape {list(value.shape)})"
            )
        if not np.any(value[index] if index else value):
            raise ValueError(f"solve_for: {self.solve_for!r} is zero, so scaling it cannot meet a target")
        return name, index

    @property
    def d(self) -> int:
        """Dimension of each modality: C*H*W."""
        c, h, w = self.shape
        return c * h * w

    @property
    def names(self) -> list[str]:
        """Modality names ``x1..xN``."""
        return modality_names(self.modalities)

    def coefficients(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Effective coefficients with the decay factors applied.

        Returns:
            eta: (K,); rho_common: (N, K), row i times ``beta**-i``;
            rho_private: (N, J), entry (i, j) times ``alpha**-|i-j|``.
        """
        n, j = self.modalities, self.private_latents
        i_idx = np.arange(n)[:, None]
        rho_common = np.asarray(self.rho_common, dtype=np.float64) * self.beta ** -i_idx
        decay = self.alpha ** -np.abs(i_idx - np.arange(j)[None, :])
        rho_private = np.asarray(self.rho_private, dtype=np.float64) * decay
        return np.asarray(self.eta, dtype=np.float64), rho_common, rho_private

    def scaled(self, factor: float) -> CausalSpec:
        """A copy with the ``solve_for`` coefficient multiplied by ``factor``."""
        name, index = self.solve_path()
        value = np.array(getattr(self, name), dtype=np.float64)
        if index:
            value[index] *= factor
        else:
            value = value * factor
        return dataclasses.replace(self, **{name: value.tolist()})

    @classmethod
    def from_dict(cls, data: Any, *, base_dir: Path | None = None, source: str = "spec") -> CausalSpec:
        """Validate a mapping read from YAML. Unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a mapping of spec keys, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls) if f.name != "base_dir"]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown key in {source} (expected one of: {', '.join(known)})")
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in data
        ]
        if missing:
            raise ValueError(f"{missing[0]}: required key missing from {source}")
        return cls(**data, base_dir=base_dir)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready mapping of every key (``base_dir`` excluded)."""

        def plain(value: Any) -> Any:
            if isinstance(value, Mapping):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            return value

        out = {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "base_dir"}
        return {k: v for k, v in out.items() if v is not None and v != {}}


def builtin_config_dir() -> Path:
    """Folder of the built-in configurations (``builders/configs``, shipped as ``mmmi_hf.builders``)."""
    return Path(str(resources.files("mmmi_hf.builders") / "configs"))


def list_builtin_configs() -> list[str]:
    """Names of the built-in configurations, sorted."""
    return sorted(p.stem for p in builtin_config_dir().glob("*.yaml"))


def load_spec(spec: str | os.PathLike[str]) -> CausalSpec:
    """Load a spec from a built-in name (``"dag1"``) or a YAML path. Template paths resolve
    relative to the YAML file."""
    text = str(spec)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.exists()):
        builtin = builtin_config_dir() / f"{text}.yaml"
        if not builtin.exists():
            raise ValueError(
                f"spec: {text!r} is neither a YAML file nor a built-in configuration "
                f"(built-in: {', '.join(list_builtin_configs())})"
            )
        path = builtin
    if not path.is_file():
        raise ValueError(f"spec: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"spec: {path} is not valid YAML{where}: {problem}") from None
    return CausalSpec.from_dict(data, base_dir=path.resolve().parent, source=str(path))


def dump_spec(spec: CausalSpec, path: str | os.PathLike[str]) -> None:
    """Write ``spec`` as YAML, atomically. Template paths are written as given, so relative
    ones resolve against the folder ``path`` is in."""
    atomic_write_text(path, yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True))
