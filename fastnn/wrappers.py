"""scikit-learn wrappers, as Keras 3's ``keras.wrappers``: a fastnn model becomes a
scikit-learn estimator, so ``GridSearchCV`` / ``RandomizedSearchCV`` / ``cross_val_score`` /
``Pipeline`` do the hyperparameter search and the data plumbing.

    def build(X, y, n_hidden=1, units=32, learning_rate=1e-3):
        model = fastnn.Sequential([fastnn.layers.Input(shape=(X.shape[1],))])
        for _ in range(n_hidden):
            model.add(fastnn.layers.Dense(units, activation="relu"))
        model.add(fastnn.layers.Dense(y.shape[1], activation="softmax"))
        model.compile(optimizer=fastnn.optimizers.Adam(learning_rate),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    search = RandomizedSearchCV(
        SKLearnClassifier(build, fit_kwargs={"epochs": 10, "verbose": 0}),
        {"model_kwargs": [{"n_hidden": h, "units": u} for h in (1, 2) for u in (32, 64)]},
        n_iter=4, cv=3)
    search.fit(X, y)

As in Keras: ``model`` is a compiled model (cloned, with fresh weights, for each fit unless
``warm_start=True``) or a callable ``model(X=..., y=..., **model_kwargs)`` returning one. The
classifier one-hot encodes the labels (so the model ends in ``Dense(n_classes,
activation="softmax")`` with ``categorical_crossentropy``; ``y`` as the callable sees it is
already one-hot) and maps predictions back to the original labels; the regressor trains on a
2-D target and returns predictions in the shape of the ``y`` it was fitted on.
scikit-learn is needed only when these classes are used.

Keras 2's ``KerasClassifier`` / ``KerasRegressor`` are importable from
``fastnn.wrappers.scikit_learn`` (as from ``keras.wrappers.scikit_learn``): the classes
above under their old names, with ``build_fn=`` and Keras 2's ``sk_params``, and a
DeprecationWarning.

``random_state`` (a fastnn extra, as scikit-learn's MLPClassifier has it) decides the random
choices of each fit: the model's initial weights, the shuffling and the dropout masks.

- ``None`` (default): no seeding; the fit draws from fastnn's global generator as it stands
  (seed it with ``fastnn.set_seed`` yourself). Results then depend on what ran before in the
  process, so a search with ``n_jobs=2`` can score differently from one with ``n_jobs=1``.
- an int: every fit seeds fastnn with it, so every fit starts from the same weights and
  shuffles alike, in whichever process or thread joblib runs it: a search gives the same
  scores for any ``n_jobs`` and joblib backend.
- a ``np.random.RandomState``: each fit draws its seed from it, so successive fits differ
  in a reproducible sequence. As scikit-learn's ``clone`` does, a clone gets a copy of it, so
  the clones of a search all draw the same seed.

A seeded fit runs under ``fastnn.set_seed``, which is process-wide: the wrapper saves fastnn's
global generator (and numpy's legacy global state, which ``set_seed`` also seeds) before the
fit and puts them back after it, so the fit neither reseeds nor advances the caller's random
stream. For the same reason seeded fits in one process run one at a time: under joblib's
threading backend they take turns instead of running in parallel.
"""
import contextlib
import copy
import inspect
import numbers
import sys
import threading
import types
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin
except ImportError:  # the classes say so when instantiated
    BaseEstimator = ClassifierMixin = RegressorMixin = TransformerMixin = object
    _HAVE_SKLEARN = False
else:
    _HAVE_SKLEARN = True


def _compiled_clone(model):
    """A model of the same architecture with fresh weights, compiled as ``model`` is (its own
    optimizer from the same config, its own metric objects)."""
    from .models import clone_model
    if not getattr(model, "compiled", False):
        raise ValueError("the model given to the scikit-learn wrapper must be compiled (or pass a "
                         "function that builds and compiles one)")
    clone = clone_model(model)
    opt = model.optimizer
    clone.compile(optimizer=type(opt).from_config(opt.get_config()), loss=copy.deepcopy(model.loss),
                  metrics=[copy.deepcopy(m) for m in model.get_compile_config()["metrics"]])
    return clone


def _seed_from(random_state):
    """The seed a fit runs under: None (no seeding), the int itself, or one drawn from a
    RandomState."""
    if random_state is None:
        return None
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(np.iinfo(np.int32).max))  # as scikit-learn draws seeds
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) \
            and random_state >= 0:
        return int(random_state)
    raise ValueError(f"random_state must be None, a non-negative int or a "
                     f"np.random.RandomState, got {random_state!r}")


# fastnn's generator is process-wide, so two threads seeding it at once would draw from each
# other's streams; reentrant for a build function that itself fits a seeded wrapper
_SEED_LOCK = threading.RLock()


@contextlib.contextmanager
def _seeded(seed):
    """fastnn seeded with ``seed`` inside the block, and its random state as it was outside."""
    if seed is None:
        yield
        return
    from . import backend
    with _SEED_LOCK:
        # set_seed replaces the generator object, so keeping the old object keeps its state
        # (and anyone's reference to it) intact
        saved = backend._rng, backend._seed, np.random.get_state()
        backend.set_seed(seed)
        try:
            yield
        finally:
            backend._rng, backend._seed = saved[0], saved[1]
            np.random.set_state(saved[2])


class _SKLBase(BaseEstimator):
    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None,
                 random_state=None):
        if not _HAVE_SKLEARN:
            raise ImportError(f"{type(self).__name__} needs scikit-learn: pip install scikit-learn")
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs
        self.random_state = random_state

    def __sklearn_clone__(self):
        # a model instance is copied by cloning its architecture, not deep-copied with state;
        # random_state is deep-copied as scikit-learn's clone does, so a RandomState is not
        # shared (and advanced) by all the clones of a search
        return type(self)(model=self.model, warm_start=self.warm_start,
                          model_kwargs=self.model_kwargs, fit_kwargs=self.fit_kwargs,
                          random_state=copy.deepcopy(self.random_state))

    def _build(self, X, y):
        from .models import Sequential
        if self.warm_start and getattr(self, "model_", None) is not None:
            return self.model_
        if isinstance(self.model, Sequential):
            if self.model_kwargs:
                raise ValueError("model_kwargs apply to a model-building function, but the "
                                 "wrapper was given a model instance")
            return _compiled_clone(self.model)
        if not callable(self.model):
            raise TypeError(f"model must be a compiled fastnn model or a function building one, "
                            f"got {type(self.model).__name__}")
        built = self.model(X=X, y=y, **(self.model_kwargs or {}))
        if not isinstance(built, Sequential) or not getattr(built, "compiled", False):
            raise TypeError(f"the model function must return a compiled fastnn model, got "
                            f"{type(built).__name__}"
                            + ("" if not isinstance(built, Sequential) else " that is not compiled"))
        return built

    def _check_X(self, X, reset):
        from sklearn.utils.validation import check_array
        X = check_array(X, dtype=(np.float32, np.float64), ensure_2d=True)
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} was fitted "
                             f"with {self.n_features_in_}")
        return X

    def fit(self, X, y, **kwargs):
        """Build (or reuse, with warm_start) the model and fit it on (X, y); keyword arguments
        go to the model's ``fit`` and override ``fit_kwargs``. Both the build and the fit run
        under the seed ``random_state`` gives (see the module docstring). Returns self."""
        X = self._check_X(X, reset=True)
        target = self._encode_target(np.asarray(y), reset=True)
        args = dict(self.fit_kwargs or {})
        args.update(kwargs)
        with _seeded(_seed_from(self.random_state)):
            model = self._build(X, target)
            self.history_ = model.fit(X, target, **args).history
        self.model_ = model
        return self

    def _fitted(self, X):
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(self, "model_")
        return self._check_X(X, reset=False)

    def predict(self, X):
        """Predictions for X, in the form of the targets the estimator was fitted on."""
        X = self._fitted(X)
        return self._decode_target(self.model_.predict(X, verbose=0))


class SKLearnClassifier(ClassifierMixin, _SKLBase):
    """SKLearnClassifier(model, warm_start=False, model_kwargs=None, fit_kwargs=None,
                     random_state=None)

    A scikit-learn classifier around a fastnn model (Keras 3: ``keras.wrappers``). Labels of
    any kind (ints, strings) are one-hot encoded for the model; ``predict`` returns labels,
    ``predict_proba`` the model's outputs, ``classes_`` the sorted labels, ``score`` the
    accuracy. Binary and multiclass targets only. Attributes after fit: ``model_``,
    ``history_`` (the History dict), ``classes_``, ``n_features_in_``.

    fastnn extra: ``random_state`` (None, an int or a ``np.random.RandomState``) seeds each
    fit, e.g. for a search that scores the same for any ``n_jobs``; see the module docstring.
    """

    def _encode_target(self, y, reset):
        from sklearn.utils.multiclass import type_of_target
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        kind = type_of_target(y)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"SKLearnClassifier: only binary and multiclass targets are "
                             f"supported, got a {kind} target of shape {y.shape}")
        if reset:
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError(f"SKLearnClassifier: the target has one class only "
                                 f"({self.classes_[0]!r}): nothing to learn")
        index = np.searchsorted(self.classes_, y)
        onehot = np.zeros((len(y), len(self.classes_)), np.float32)
        onehot[np.arange(len(y)), index] = 1.0
        return onehot

    def _decode_target(self, out):
        out = np.asarray(out)
        if out.ndim != 2 or out.shape[1] != len(self.classes_):
            raise ValueError(f"SKLearnClassifier: the model outputs shape {out.shape}, expected "
                             f"(n, {len(self.classes_)}): one column per class")
        return self.classes_[np.argmax(out, axis=1)]

    def predict_proba(self, X):
        """The model's outputs for X: one column per class of ``classes_``."""
        X = self._fitted(X)
        return self.model_.predict(X, verbose=0)


class SKLearnRegressor(RegressorMixin, _SKLBase):
    """SKLearnRegressor(model, warm_start=False, model_kwargs=None, fit_kwargs=None,
                    random_state=None)

    A scikit-learn regressor around a fastnn model (Keras 3: ``keras.wrappers``). The model
    trains on a 2-D target (a 1-D ``y`` becomes one column); ``predict`` returns the shape of
    the fitted ``y``; ``score`` is R^2. Attributes after fit: ``model_``, ``history_``,
    ``n_features_in_``.

    fastnn extra: ``random_state`` seeds each fit, as for SKLearnClassifier.
    """

    def _encode_target(self, y, reset):
        if y.ndim not in (1, 2):
            raise ValueError(f"SKLearnRegressor: y must be 1-D or 2-D, got shape {y.shape}")
        if reset:
            self._y_ndim = y.ndim
        return (y.reshape(-1, 1) if y.ndim == 1 else y).astype(np.float32)

    def _decode_target(self, out):
        out = np.asarray(out)
        return out[:, 0] if self._y_ndim == 1 and out.ndim == 2 and out.shape[1] == 1 else out


class SKLearnTransformer(TransformerMixin, _SKLBase):
    """SKLearnTransformer(model, warm_start=False, model_kwargs=None, fit_kwargs=None,
                      random_state=None)

    A scikit-learn transformer around a fastnn model (Keras 3: ``keras.wrappers``):
    ``transform(X)`` returns the model's outputs, e.g. an autoencoder's codes in a Pipeline.
    The target is passed to the model unchanged.

    fastnn extra: ``random_state`` seeds each fit, as for SKLearnClassifier.
    """

    def _encode_target(self, y, reset):
        return y

    def _decode_target(self, out):
        return out

    def transform(self, X):
        """The fitted model's outputs for X."""
        return self.predict(X)


# ---- Keras 2's keras.wrappers.scikit_learn ---------------------------------------------------
# Keras 2's names for the classifier and regressor, as fastnn.wrappers.scikit_learn: build_fn=
# is accepted as the name of ``model``, a build function need not take X and y, and further
# keyword arguments (Keras 2's ``sk_params``) go to the model's fit when fit takes them
# (epochs, batch_size, verbose, ...) and to the build function otherwise. Unlike Keras 2's
# classifier, the labels are one-hot encoded for the model (Keras 3's rule): the model ends in
# Dense(n_classes, activation="softmax") with categorical_crossentropy.

class _Keras2BuildFn:
    """A Keras 2 build function (no X, y arguments) called as Keras 3's are; a class, not a
    closure, so that joblib's worker processes can unpickle it."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, X=None, y=None, **kwargs):
        return self.fn(**kwargs)


def _takes_data(fn):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return "X" in params or "y" in params or any(p.kind is p.VAR_KEYWORD
                                                 for p in params.values())


class _Keras2Arguments:
    """Keras 2's constructor on top of a Keras 3 wrapper class."""

    def __init__(self, model=None, warm_start=False, model_kwargs=None, fit_kwargs=None,
                 random_state=None, build_fn=None, **sk_params):
        cls_name = type(self).__name__
        warnings.warn(f"{cls_name} (keras.wrappers.scikit_learn) is Keras 2's name and is "
                      f"deprecated: use fastnn.wrappers.SKLearn{cls_name[len('Keras'):]}",
                      DeprecationWarning, stacklevel=2)
        if build_fn is not None:
            if model is not None:
                raise ValueError(f"{cls_name}: pass the model or the function building it as "
                                 "`model` or as `build_fn` (Keras 2's name), not both")
            model = build_fn
        if callable(model) and not hasattr(model, "compiled") and not _takes_data(model):
            model = _Keras2BuildFn(model)
        if sk_params:  # those fit takes go to fit, the rest to the build function
            from .training.trainer import Trainer
            fit_args = inspect.signature(Trainer.fit).parameters
            model_kwargs, fit_kwargs = dict(model_kwargs or {}), dict(fit_kwargs or {})
            for key, value in sk_params.items():
                (fit_kwargs if key in fit_args and key not in ("self", "x", "y")
                 else model_kwargs)[key] = value
        super().__init__(model, warm_start, model_kwargs or None, fit_kwargs or None,
                         random_state)
        self.build_fn = None  # now in ``model``; scikit-learn's get_params reads it


class KerasClassifier(_Keras2Arguments, SKLearnClassifier):
    """KerasClassifier(model=None, warm_start=False, model_kwargs=None, fit_kwargs=None,
                   random_state=None, build_fn=None, **sk_params)

    Keras 2's name for ``SKLearnClassifier`` (deprecated, with a DeprecationWarning);
    ``build_fn`` is ``model``'s old name and ``sk_params`` are split between the model's
    fit and the build function (see the comment above these classes)."""


class KerasRegressor(_Keras2Arguments, SKLearnRegressor):
    """KerasRegressor(model=None, warm_start=False, model_kwargs=None, fit_kwargs=None,
                  random_state=None, build_fn=None, **sk_params)

    Keras 2's name for ``SKLearnRegressor`` (deprecated, with a DeprecationWarning);
    ``build_fn`` and ``sk_params`` as for KerasClassifier."""


# A module object of its own, registered under its dotted name, makes
# ``import fastnn.wrappers.scikit_learn`` work without turning this module into a package.
scikit_learn = types.ModuleType(__name__ + ".scikit_learn",
                                "Keras 2's keras.wrappers.scikit_learn names (deprecated).")
scikit_learn.KerasClassifier, scikit_learn.KerasRegressor = KerasClassifier, KerasRegressor
sys.modules[scikit_learn.__name__] = scikit_learn
