"""Weight initializers with Keras 3 semantics: fan_in / fan_out / fan_avg scaling, the
truncated normal's 0.8796 correction, Glorot/Xavier, He and LeCun families."""
import math

import numpy as np

from . import backend


def _fans(shape):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``init(shape, dtype=None)`` returns a new array."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _seeded(seed):
    if seed is None:
        return backend.rng()
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"initializer seed must be a non-negative integer or None, got {seed!r}")
    return np.random.default_rng(seed)


class Zeros(Initializer):
    """Zeros(): all zeros."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype or backend.floatx())


class Ones(Initializer):
    """Ones(): all ones."""

    def __call__(self, shape, dtype=None):
        return np.ones(shape, dtype or backend.floatx())


class Constant(Initializer):
    """Constant(value=0.0)."""

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(shape, self.value, dtype or backend.floatx())

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    """RandomNormal(mean=0.0, stddev=0.05, seed=None)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        r = _seeded(self.seed).normal(self.mean, self.stddev, size=shape)
        return r.astype(dtype or backend.floatx())

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    """RandomUniform(minval=-0.05, maxval=0.05, seed=None)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype=None):
        r = _seeded(self.seed).uniform(self.minval, self.maxval, size=shape)
        return r.astype(dtype or backend.floatx())

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(rng, mean, stddev, shape):
    """Normal samples redrawn until within two standard deviations (as Keras)."""
    out = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2
    return mean + stddev * out


class TruncatedNormal(Initializer):
    """TruncatedNormal(mean=0.0, stddev=0.05, seed=None): values beyond 2 stddev redrawn."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        r = _truncated_normal(_seeded(self.seed), self.mean, self.stddev, shape)
        return r.astype(dtype or backend.floatx())

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    """VarianceScaling(scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None).

    Variance scale / n with n the fan_in, fan_out or their average. "truncated_normal" uses
    stddev sqrt(scale / n) / 0.87962566 so the truncated distribution has that variance;
    "uniform" draws from [-sqrt(3 scale / n), +sqrt(3 scale / n)].
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: unknown distribution {distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        var = self.scale / max(1.0, n)
        rng = _seeded(self.seed)
        if self.distribution == "truncated_normal":
            r = _truncated_normal(rng, 0.0, math.sqrt(var) / 0.87962566103423978, shape)
        elif self.distribution == "untruncated_normal":
            r = rng.normal(0.0, math.sqrt(var), size=shape)
        else:
            limit = math.sqrt(3.0 * var)
            r = rng.uniform(-limit, limit, size=shape)
        return r.astype(dtype or backend.floatx())

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


def _family(name, scale, mode, distribution, doc):
    class _Init(VarianceScaling):
        def __init__(self, seed=None):
            super().__init__(scale, mode, distribution, seed)

        def get_config(self):
            return {"seed": self.seed}
    _Init.__name__ = _Init.__qualname__ = name
    _Init.__doc__ = doc
    return _Init


GlorotNormal = _family("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "GlorotNormal(seed=None): Xavier normal, variance 2 / (fan_in + fan_out).")
GlorotUniform = _family("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "GlorotUniform(seed=None): Xavier uniform, limit sqrt(6 / (fan_in + fan_out)).")
HeNormal = _family("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "HeNormal(seed=None): variance 2 / fan_in (for ReLU nets).")
HeUniform = _family("HeUniform", 2.0, "fan_in", "uniform",
                    "HeUniform(seed=None): limit sqrt(6 / fan_in).")
LecunNormal = _family("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "LecunNormal(seed=None): variance 1 / fan_in (for SELU nets).")
LecunUniform = _family("LecunUniform", 1.0, "fan_in", "uniform",
                       "LecunUniform(seed=None): limit sqrt(3 / fan_in).")


class Orthogonal(Initializer):
    """Orthogonal(gain=1.0, seed=None): a (semi-)orthogonal matrix from a QR decomposition."""

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype=None):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got {shape}")
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        a = _seeded(self.seed).normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype or backend.floatx())

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
    "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "glorot_normal": GlorotNormal, "glorot_uniform": GlorotUniform, "he_normal": HeNormal,
    "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal, "variance_scaling": VarianceScaling,
}
# Keras' short names (Embedding's default "uniform" is RandomUniform(-0.05, 0.05)); kept out
# of _BY_NAME so that serialize still writes the full names.
_ALIASES = {"uniform": "random_uniform", "normal": "random_normal", "one": "ones", "zero": "zeros"}
# Keras' lower-case function-style aliases: fastnn.initializers.he_normal() works too.
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
glorot_normal, glorot_uniform = GlorotNormal, GlorotUniform
he_normal, he_uniform, lecun_normal, lecun_uniform = HeNormal, HeUniform, LecunNormal, LecunUniform
orthogonal = Orthogonal


def get(identifier):
    """Resolve a name, a class, an Initializer, a {"class_name", "config"} dict or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        key = identifier if identifier in _BY_NAME else _snake(identifier)
        key = _ALIASES.get(key, key)
        if key not in _BY_NAME:
            raise ValueError(f"Unknown initializer {identifier!r}. Known: {sorted(_BY_NAME)}")
        return _BY_NAME[key]()
    if isinstance(identifier, dict):
        cls = get(identifier["class_name"]).__class__
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret initializer {identifier!r}")


def _snake(name):
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out.replace("he_", "he_").replace("le_cun", "lecun")


def serialize(init):
    name = next((k for k, v in _BY_NAME.items() if type(init) is v), type(init).__name__)
    return {"class_name": name, "config": init.get_config()}
