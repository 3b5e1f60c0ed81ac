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
"""
import copy

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


class _SKLBase(BaseEstimator):
    def __init__(self, model, warm_start=False, model_kwargs=None, fit_kwargs=None):
        if not _HAVE_SKLEARN:
            raise ImportError(f"{type(self).__name__} needs scikit-learn: pip install scikit-learn")
        self.model = model
        self.warm_start = warm_start
        self.model_kwargs = model_kwargs
        self.fit_kwargs = fit_kwargs

    def __sklearn_clone__(self):
        # a model instance is copied by cloning its architecture, not deep-copied with state
        return type(self)(model=self.model, warm_start=self.warm_start,
                          model_kwargs=self.model_kwargs, fit_kwargs=self.fit_kwargs)

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
        go to the model's ``fit`` and override ``fit_kwargs``. Returns self."""
        X = self._check_X(X, reset=True)
        target = self._encode_target(np.asarray(y), reset=True)
        model = self._build(X, target)
        args = dict(self.fit_kwargs or {})
        args.update(kwargs)
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
    """SKLearnClassifier(model, warm_start=False, model_kwargs=None, fit_kwargs=None)

    A scikit-learn classifier around a fastnn model (Keras 3: ``keras.wrappers``). Labels of
    any kind (ints, strings) are one-hot encoded for the model; ``predict`` returns labels,
    ``predict_proba`` the model's outputs, ``classes_`` the sorted labels, ``score`` the
    accuracy. Binary and multiclass targets only. Attributes after fit: ``model_``,
    ``history_`` (the History dict), ``classes_``, ``n_features_in_``.
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
    """SKLearnRegressor(model, warm_start=False, model_kwargs=None, fit_kwargs=None)

    A scikit-learn regressor around a fastnn model (Keras 3: ``keras.wrappers``). The model
    trains on a 2-D target (a 1-D ``y`` becomes one column); ``predict`` returns the shape of
    the fitted ``y``; ``score`` is R^2. Attributes after fit: ``model_``, ``history_``,
    ``n_features_in_``.
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
    """SKLearnTransformer(model, warm_start=False, model_kwargs=None, fit_kwargs=None)

    A scikit-learn transformer around a fastnn model (Keras 3: ``keras.wrappers``):
    ``transform(X)`` returns the model's outputs, e.g. an autoencoder's codes in a Pipeline.
    The target is passed to the model unchanged.
    """

    def _encode_target(self, y, reset):
        return y

    def _decode_target(self, out):
        return out

    def transform(self, X):
        """The fitted model's outputs for X."""
        return self.predict(X)
