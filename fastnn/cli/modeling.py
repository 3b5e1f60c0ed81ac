"""The model ``fastnn train`` builds from a table, and its one-file save.

:class:`TabularModel` holds a model on raw columns, as in Keras' structured-data guide: the
FeatureSpace adapted on the training rows encodes a dict of columns (``fs.get_inputs()`` are
the model's inputs), and an MLP (``hidden`` widths, He-initialized) on its encoded features
outputs class probabilities (softmax) or a value. The model file keeps the FeatureSpace;
what the command line inferred (the target, the task, the class names in output order, the
feature columns and their kinds) goes in the model's ``_user_metadata``, so ``model.save``
writes model, preprocessing and class names into one fastnn file, and ``fastnn.load_model``
gives back a model that predicts from raw columns.
"""

__all__ = ["TabularModel", "CLI_FORMAT", "CLI_FORMAT_VERSION"]

CLI_FORMAT = "fastnn-table-model"
CLI_FORMAT_VERSION = 1


class TabularModel:
    """A trained network with the FeatureSpace that encodes its input columns and the
    ``info`` dict (target, task, classes, features) the command line inferred."""

    def __init__(self, model, feature_space, info):
        self.model, self.feature_space, self.info = model, feature_space, info

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, feature_space, info, hidden=(128, 64), activation="relu"):
        """A new, compiled-later model over the adapted ``feature_space``."""
        import fastnn
        from fastnn import layers
        h = feature_space.get_encoded_features()
        for width in hidden:
            h = layers.Dense(width, activation=activation, kernel_initializer="he_normal")(h)
        if info["task"] == "classification":
            out = layers.Dense(len(info["classes"]), activation="softmax")(h)
        else:
            out = layers.Dense(1)(h)
        model = fastnn.Model(inputs=feature_space.get_inputs(), outputs=out)
        return cls(model, feature_space, info)

    def compile(self, optimizer):
        """Sparse categorical cross-entropy and accuracy, or MSE and MAE, with ``optimizer``."""
        if self.info["task"] == "classification":
            loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        else:
            loss, metrics = "mse", ["mae"]
        self.model.compile(optimizer=optimizer, loss=loss, metrics=metrics)

    # ------------------------------------------------------------------ using
    @property
    def feature_names(self):
        """The columns the model reads, in the order ``fastnn train`` listed them."""
        return [f["name"] for f in self.info["features"]]

    def inputs(self, columns):
        """The model's columns among ``columns`` (a dict of arrays; others are left out)."""
        return {k: columns[k] for k in self.feature_names}

    def fit(self, columns, y, validation=None, **kwargs):
        """``model.fit`` on raw columns; ``validation``: (columns, y) or None."""
        val = None if validation is None else (self.inputs(validation[0]), validation[1])
        return self.model.fit(self.inputs(columns), y, validation_data=val, **kwargs)

    def predict(self, columns, batch_size=32, verbose=0):
        """Class probabilities (float32, one column per class) or values (one column)."""
        return self.model.predict(self.inputs(columns), batch_size=batch_size, verbose=verbose)

    def evaluate(self, columns, y, batch_size=32, verbose=0):
        """{"loss": ..., metric: ...} on raw columns and class indices (or values)."""
        return self.model.evaluate(self.inputs(columns), y, batch_size=batch_size,
                                   verbose=verbose, return_dict=True)

    # ------------------------------------------------------------------ saving
    def save(self, path):
        """Model, preprocessing and ``info`` into the one fastnn file ``path``."""
        self.model._user_metadata = {"format": CLI_FORMAT, "format_version": CLI_FORMAT_VERSION,
                                     "info": self.info}
        self.model.save(path)

    @classmethod
    def load(cls, path):
        """The TabularModel saved in ``path``; ValueError if the file is a fastnn model that
        ``fastnn train`` did not write."""
        import fastnn
        model = fastnn.load_model(path)
        meta = getattr(model, "_user_metadata", None)
        if not isinstance(meta, dict) or meta.get("format") != CLI_FORMAT:
            raise ValueError(f"{path} is a fastnn model but not one `fastnn train` wrote from a "
                             "table (it has no feature columns or class names)")
        if meta.get("format_version") != CLI_FORMAT_VERSION:
            raise ValueError(f"{path}: table-model format version {meta.get('format_version')!r} "
                             f"is not supported (this fastnn reads {CLI_FORMAT_VERSION})")
        info = meta.get("info")
        if not isinstance(info, dict) or not isinstance(info.get("features"), list):
            raise ValueError(f"{path}: the table-model information is malformed")
        if getattr(model, "feature_space", None) is None:
            raise ValueError(f"{path}: the model has no FeatureSpace")
        return cls(model, model.feature_space, info)
