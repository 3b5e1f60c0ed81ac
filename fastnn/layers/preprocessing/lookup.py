"""StringLookup and IntegerLookup: a vocabulary of tokens mapped to integer indices (Keras 3's
``IndexLookup`` semantics, in NumPy).

Index layout, as Keras: ``[mask token (if mask_token is set)] [num_oov_indices OOV indices]
[vocabulary, most frequent first]``. adapt() orders tokens by count, descending, and breaks
ties by the tokens themselves in descending order (Keras' ``lexsort(...)[::-1]``).

fastnn extras: a missing value (None, NaN, an empty string) is never learned by adapt() and
maps to the first OOV index when called (Keras has no notion of missing values); calling a
layer that has neither a vocabulary nor been adapted is an error rather than "everything is
OOV"."""
import math

import numpy as np

from .base import (PreprocessingLayer, check_output_mode, check_positive_int, encode_categorical,
                   encoded_shape, missing_mask)
from .hashes import fingerprint64, siphash64

_LOOKUP_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _salt_pair(owner, salt):
    if salt is None:
        return None
    if isinstance(salt, (list, tuple)) and len(salt) == 2 \
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in salt):
        return [int(salt[0]), int(salt[1])]
    if isinstance(salt, (int, np.integer)) and not isinstance(salt, bool):
        return [int(salt), int(salt)]
    raise ValueError(f"{owner}: salt must be an integer or a pair of integers, got {salt!r}")


def hash_bucket(tokens, num_buckets, salt=None):
    """Keras' ``to_hash_bucket_fast`` (FarmHash Fingerprint64) or, with a salt,
    ``to_hash_bucket_strong`` (SipHash-2-4), of each string in ``tokens`` (a sequence),
    modulo ``num_buckets``: an int64 array."""
    if salt is None:
        return np.array([fingerprint64(t.encode("utf-8")) % num_buckets for t in tokens], np.int64)
    return np.array([siphash64(t.encode("utf-8"), salt) % num_buckets for t in tokens], np.int64)


class IndexLookup(PreprocessingLayer):
    """The shared machinery of StringLookup and IntegerLookup (not used directly)."""

    _vocab_kind = None  # "string" or "int"

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=None,
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, oov_method="farmhash", salt=None,
                 name=None, **kwargs):
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_size", None)  # Keras writes it in configs; derived here
        super().__init__(name=name, **kwargs)
        owner = f"{type(self).__name__} {self.name!r}"
        self.max_tokens = check_positive_int(owner, "max_tokens", max_tokens, allow_none=True)
        self.num_oov_indices = check_positive_int(owner, "num_oov_indices", num_oov_indices,
                                                  minimum=0)
        self.output_mode = check_output_mode(owner, output_mode, _LOOKUP_MODES)
        if output_mode == "tf-idf":
            self.output_mode = "tf_idf"
        if invert and self.output_mode != "int":
            raise ValueError(f"{owner}: output_mode must be 'int' when invert=True, got "
                             f"{output_mode!r}")
        if sparse:
            raise ValueError(f"{owner}: sparse=True is not supported (fastnn returns dense "
                             "NumPy arrays)")
        if idf_weights is not None and self.output_mode != "tf_idf":
            raise ValueError(f"{owner}: idf_weights should only be set if output_mode is "
                             f"'tf_idf', got output_mode={output_mode!r}")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"{owner}: oov_method must be 'floormod' or 'farmhash', got "
                             f"{oov_method!r}")
        self.mask_token = mask_token
        self.oov_token = oov_token
        if self.max_tokens is not None and self.max_tokens <= self._token_start():
            raise ValueError(f"{owner}: max_tokens={max_tokens} leaves no room for tokens after "
                             f"the mask and {self.num_oov_indices} OOV index(es)")
        self.invert = bool(invert)
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.sparse = False
        self.oov_method = oov_method
        self.salt = _salt_pair(owner, salt)
        self._vocab = None  # learned or given tokens, special tokens excluded
        self._index = {}
        self.idf_weights = None
        self._has_input_vocabulary = bool(has_input_vocabulary)
        if self.pad_to_max_tokens and self.max_tokens is None and self.output_mode != "int":
            raise ValueError(f"{owner}: pad_to_max_tokens=True needs max_tokens")
        if self.output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError(f"{owner}: in 'tf_idf' mode, idf_weights must be given with the "
                             "vocabulary")
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
            self._has_input_vocabulary = bool(has_input_vocabulary)

    # ---- vocabulary ----------------------------------------------------------------------
    def _oov_start(self):
        return 1 if self.mask_token is not None else 0

    def _token_start(self):
        return self._oov_start() + self.num_oov_indices

    def _owner(self):
        return f"{type(self).__name__} {self.name!r}"

    def vocabulary_size(self):
        """The number of indices: learned tokens plus the mask and OOV indices (Keras)."""
        return (len(self._vocab) if self._vocab is not None else 0) + self._token_start()

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary, index by index: with ``include_special_tokens`` (the default)
        position i holds what index i means (the mask token in "int" mode, the OOV token at
        each OOV index), else only the learned tokens."""
        tokens = list(self._vocab or [])
        if not include_special_tokens:
            return tokens
        first = []
        if self.mask_token is not None:
            first.append(self.mask_token if self.output_mode == "int" else self.oov_token)
        return first + [self.oov_token] * self.num_oov_indices + tokens

    def _tokens(self, values, what):
        """A 1-D sequence of tokens as a list of Python str / int (subclasses)."""
        raise NotImplementedError

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """set_vocabulary(vocabulary, idf_weights=None): replace the vocabulary (a list or
        1-D array of tokens; it may start with the special tokens, as ``get_vocabulary()``
        returns them). ``idf_weights`` is required in "tf_idf" mode."""
        owner = self._owner()
        if isinstance(vocabulary, str):
            raise ValueError(f"{owner}: vocabulary files are not supported; pass a list of "
                             "tokens")
        vocab = list(np.asarray(vocabulary, dtype=object).reshape(-1)) \
            if not isinstance(vocabulary, (list, tuple)) else list(vocabulary)
        if not vocab:
            raise ValueError(f"{owner}: the vocabulary must contain at least one token")
        vocab = self._tokens(vocab, "vocabulary")
        start = self._token_start()
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        found_special = vocab[:start] == special
        tokens = vocab[start:] if found_special else vocab
        seen, repeated = set(), []
        for t in tokens:
            if t in seen:
                repeated.append(t)
            seen.add(t)
        if repeated:
            raise ValueError(f"{owner}: the vocabulary holds repeated tokens: {repeated[:10]}")
        if self.mask_token is not None and self.mask_token in seen:
            raise ValueError(f"{owner}: the mask token {self.mask_token!r} is in the vocabulary; "
                             f"special tokens must come first, in this order: {special}")
        if self.invert and self.oov_token is not None and self.oov_token in seen:
            raise ValueError(f"{owner}: the OOV token {self.oov_token!r} is in the vocabulary; "
                             f"special tokens must come first, in this order: {special}")
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError(f"{owner}: a vocabulary of {start + len(tokens)} indices exceeds "
                             f"max_tokens={self.max_tokens}")
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError(f"{owner}: idf_weights must be set in 'tf_idf' mode")
            w = np.asarray(idf_weights, np.float64).reshape(-1)
            # the weights of every index (get_config writes them so) or of the given tokens
            with_special = not found_special and w.size == len(vocab) + start
            if w.size != len(vocab) and not with_special:
                raise ValueError(f"{owner}: idf_weights has {w.size} values for a vocabulary "
                                 f"of {len(vocab)} tokens")
            if not found_special and not with_special:  # the special indices get the mean
                w = np.concatenate([np.full(start, w.mean()), w])
            if self.pad_to_max_tokens and self.max_tokens is not None:
                w = np.concatenate([w, np.zeros(self.max_tokens - w.size)])
            self.idf_weights = w.astype(self.dtype)
        elif idf_weights is not None:
            raise ValueError(f"{owner}: idf_weights should only be set in 'tf_idf' mode")
        self._set_tokens(tokens)
        self._has_input_vocabulary = True

    def _set_tokens(self, tokens):
        self._vocab = list(tokens)
        start = self._token_start()
        self._index = {t: i + start for i, t in enumerate(self._vocab)}

    def adapt(self, data, batch_size=None, steps=None):
        """adapt(data, batch_size=None, steps=None): learn the vocabulary from ``data`` (an
        array or list, or an iterable of batches): tokens by count, most frequent first,
        ties broken by descending token; at most ``max_tokens`` indices in all. Missing values
        (None, NaN, empty strings), the mask and the OOV token are not learned. In "tf_idf"
        mode each row is a document."""
        owner = self._owner()
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt {owner} after setting a vocabulary with the "
                             "vocabulary argument or set_vocabulary()")
        counts, doc_counts, n_docs = {}, {}, 0
        for batch in _batches(data, steps, owner):
            if batch.ndim == 0:
                batch = batch.reshape(1, 1)
            elif batch.ndim == 1:
                batch = batch.reshape(-1, 1)
            keep = ~missing_mask(batch)
            rows = batch.reshape(batch.shape[0], -1)
            keep = keep.reshape(rows.shape)
            tokens = self._tokens(rows[keep], "adapt data")
            uniq, cnt = _unique_counts(tokens)
            for t, c in zip(uniq, cnt):
                counts[t] = counts.get(t, 0) + c
            if self.output_mode == "tf_idf":
                n_docs += rows.shape[0]
                pos = 0
                per_row = keep.sum(axis=1)
                for n in per_row:
                    for t in set(tokens[pos:pos + n]):
                        doc_counts[t] = doc_counts.get(t, 0) + 1
                    pos += n
        for special in (self.mask_token, self.oov_token):
            if special is not None:
                counts.pop(special, None)
        ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        if self.max_tokens is not None:
            ordered = ordered[:self.max_tokens - self._token_start()]
        tokens = [t for t, _ in ordered]
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            idf = np.array([math.log(1 + n_docs / (1 + doc_counts.get(t, 0))) for t in tokens])
            mean = idf.mean() if idf.size else 0.0
            idf = np.concatenate([np.full(self._token_start(), mean), idf])
            if self.pad_to_max_tokens and self.max_tokens is not None:
                idf = np.concatenate([idf, np.zeros(self.max_tokens - idf.size)])
            self.idf_weights = idf.astype(self.dtype)

    # ---- calling -------------------------------------------------------------------------
    def _depth(self):
        return self.max_tokens if self.pad_to_max_tokens and self.max_tokens else \
            self.vocabulary_size()

    def _check_ready(self):
        if self._vocab is None:
            raise ValueError(f"{self._owner()} has no vocabulary: call adapt(data) or pass "
                             "vocabulary= before using it")

    def _output_shape(self, shape):
        if self.output_mode == "tf_idf":
            return encoded_shape(shape, "count", self._depth())
        return encoded_shape(shape, self.output_mode, self._depth())

    def lookup_indices(self, values):
        """The int64 index of every element of ``values`` (an array) under Keras' rules,
        with -1 where the mask token is (outside "int" mode, masked values are dropped)."""
        self._check_ready()
        owner = self._owner()
        shape = values.shape
        flat = values.reshape(-1)
        out = np.empty(flat.size, np.int64)
        missing = missing_mask(flat)
        tokens = self._tokens(flat[~missing], "the input")
        is_mask = np.zeros(flat.size, bool)
        if self.mask_token is not None:
            hit = np.fromiter((t == self.mask_token for t in tokens), bool, count=len(tokens))
            is_mask[np.nonzero(~missing)[0][hit]] = True
            if missing.any():  # a mask token that reads as missing (""): the mask wins
                where = np.nonzero(missing)[0]
                is_mask[where] = [isinstance(v, str) and v == self.mask_token
                                  for v in flat[where].tolist()]
                missing &= ~is_mask
            tokens = [t for t, h in zip(tokens, hit) if not h]
        present = ~missing & ~is_mask
        uniq, inverse = _unique_inverse(tokens)
        idx = np.array([self._index.get(t, -1) for t in uniq], np.int64)
        oov = idx < 0
        if oov.any():
            if self.num_oov_indices == 0:
                bad = [uniq[i] for i in np.nonzero(oov)[0][:10]]
                raise ValueError(f"{owner}: with num_oov_indices=0 every input must be in the "
                                 f"vocabulary; found out-of-vocabulary values {bad}; consider "
                                 "num_oov_indices=1")
            if self.num_oov_indices == 1:
                idx[oov] = self._oov_start()
            else:
                idx[oov] = self._oov_start() + self._oov_buckets([uniq[i] for i in np.nonzero(oov)[0]])
        out[present] = idx[inverse] if len(tokens) else np.zeros(0, np.int64)
        if missing.any():
            if self.num_oov_indices == 0:
                raise ValueError(f"{owner}: {int(missing.sum())} missing value(s) (None, NaN or "
                                 "empty) but num_oov_indices=0 leaves no index for them")
            out[missing] = self._oov_start()
        out[is_mask] = 0 if self.output_mode == "int" else -1
        return out.reshape(shape)

    def _oov_buckets(self, tokens):
        return hash_bucket([str(t) for t in tokens], self.num_oov_indices, self.salt)

    def _transform(self, values):
        self._check_ready()
        if self.invert:
            return self._invert(values)
        idx = self.lookup_indices(values)
        if self.output_mode == "int":
            return idx.astype(self.output_dtype("int"))
        if self.output_mode == "tf_idf":
            out = encode_categorical(idx, "count", self._depth(), self.dtype)
            return out * self.idf_weights.astype(self.dtype)
        return encode_categorical(idx, self.output_mode, self._depth(), self.dtype)

    def _invert(self, values):
        if values.dtype.kind not in "iu" and not (values.dtype.kind == "f"
                                                    and np.all(values == np.round(values))):
            raise TypeError(f"{self._owner()} (invert=True) takes integer indices, got dtype "
                            f"{values.dtype}")
        idx = values.astype(np.int64)
        vocab = self.get_vocabulary()
        table = np.empty(len(vocab), object)
        table[:] = vocab
        if self.mask_token is not None:
            table[0] = self.mask_token
        inside = (idx >= 0) & (idx < len(vocab))
        out = np.full(idx.shape, self.oov_token, dtype=object)
        out[inside] = table[idx[inside]]
        out[inside & (idx >= self._oov_start()) & (idx < self._token_start())] = self.oov_token
        if self._vocab_kind == "int":
            return out.astype(np.int64)
        return out

    def get_config(self):
        config = super().get_config()
        vocab = self._vocab
        config.update(
            max_tokens=self.max_tokens, num_oov_indices=self.num_oov_indices,
            mask_token=self.mask_token, oov_token=self.oov_token,
            vocabulary=None if vocab is None else [_plain(t) for t in vocab],
            idf_weights=None if self.idf_weights is None else
            [float(w) for w in self.idf_weights[:self.vocabulary_size()]],
            invert=self.invert, output_mode=self.output_mode,
            pad_to_max_tokens=self.pad_to_max_tokens, sparse=False, salt=self.salt,
            has_input_vocabulary=self._has_input_vocabulary)
        return config


def _plain(t):
    return int(t) if isinstance(t, (int, np.integer)) else t


def _unique_counts(tokens):
    counts = {}
    for t in tokens:
        counts[t] = counts.get(t, 0) + 1
    return list(counts), list(counts.values())


def _unique_inverse(tokens):
    """Distinct tokens (first-seen order) and each token's position among them."""
    index = {}
    inverse = np.fromiter((index.setdefault(t, len(index)) for t in tokens), np.int64,
                          count=len(tokens))
    return list(index), inverse


def _batches(data, steps, owner):
    """``data`` as a sequence of NumPy batches: one array (or list), or an iterable of them."""
    from .base import as_array
    if isinstance(data, (list, tuple)) and data and all(isinstance(b, np.ndarray) for b in data):
        data = iter(data)  # a list of arrays is a list of batches (Keras)
    elif isinstance(data, (np.ndarray, list, tuple, str, bytes, int, float)) \
            or hasattr(data, "to_numpy"):
        yield as_array(data, owner)
        return
    if not hasattr(data, "__iter__"):
        raise TypeError(f"{owner}.adapt: expected an array, a list or an iterable of batches, got "
                        f"{type(data).__name__}")
    for i, b in enumerate(data):
        if steps is not None and i >= steps:
            break
        yield as_array(b[0] if isinstance(b, tuple) else b, owner)


class StringLookup(IndexLookup):
    """StringLookup(max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
    vocabulary=None, idf_weights=None, invert=False, output_mode="int",
    pad_to_max_tokens=False, sparse=False, encoding="utf-8", name=None, salt=None)

    Maps strings to integer indices from a vocabulary (given, or learned by ``adapt``).
    ``output_mode``: "int" (indices; int64), "one_hot", "multi_hot", "count", "tf_idf"
    (float arrays of width ``vocabulary_size()``, or ``max_tokens`` with
    ``pad_to_max_tokens``). Unknown strings go to the OOV index (with ``num_oov_indices > 1``
    to one of several, by FarmHash Fingerprint64 of the string modulo their number, or
    SipHash with ``salt``: the same buckets as Keras/TensorFlow). ``invert=True`` maps indices
    back to strings. Inputs: lists, str or object arrays (bytes are decoded with
    ``encoding``; other objects, e.g. numbers in a pandas object column, are converted with
    ``str``). ``sparse=True`` is not supported (dense NumPy outputs).

    fastnn extras: None, NaN and empty strings are missing values: never learned, mapped to
    the (first) OOV index; calling before ``adapt`` or without a vocabulary is an error.
    """

    _vocab_kind = "string"

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token="[UNK]",
                 vocabulary=None, idf_weights=None, invert=False, output_mode="int",
                 pad_to_max_tokens=False, sparse=False, encoding="utf-8", name=None, salt=None,
                 **kwargs):
        self.encoding = encoding or "utf-8"
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode,
                         pad_to_max_tokens=pad_to_max_tokens, sparse=sparse, salt=salt,
                         name=name, **kwargs)

    def _tokens(self, values, what):
        enc = self.encoding
        return [v if type(v) is str else str(v) if isinstance(v, str)
                else v.decode(enc) if isinstance(v, bytes) else str(v)
                for v in (values.tolist() if isinstance(values, np.ndarray) else values)]

    def get_config(self):
        config = super().get_config()
        config["encoding"] = self.encoding
        return config


class IntegerLookup(IndexLookup):
    """IntegerLookup(max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
    vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
    output_mode="int", sparse=False, pad_to_max_tokens=False, oov_method="floormod",
    salt=None, name=None)

    Maps integers to indices from a vocabulary (given, or learned by ``adapt``), with the
    output modes of StringLookup. With ``num_oov_indices > 1`` an unknown value ``v`` goes to
    OOV index ``v mod num_oov_indices`` ("floormod", Keras' default) or to the FarmHash bucket
    of its decimal string ("farmhash"; SipHash with ``salt``). Inputs: integer arrays, float
    arrays holding whole numbers (NaN is missing), object arrays (None/NaN missing; numeric
    strings such as "3" from a CSV are parsed).

    fastnn extras: missing values go to the (first) OOV index; calling before ``adapt`` or
    without a vocabulary is an error.
    """

    _vocab_kind = "int"

    def __init__(self, max_tokens=None, num_oov_indices=1, mask_token=None, oov_token=-1,
                 vocabulary=None, vocabulary_dtype="int64", idf_weights=None, invert=False,
                 output_mode="int", sparse=False, pad_to_max_tokens=False,
                 oov_method="floormod", salt=None, name=None, **kwargs):
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(f"IntegerLookup: vocabulary_dtype must be 'int64' or 'int32', got "
                             f"{vocabulary_dtype!r}")
        self.vocabulary_dtype = vocabulary_dtype
        if salt is not None and oov_method != "farmhash":
            raise ValueError("IntegerLookup: salt can only be used with oov_method='farmhash'")
        mask_token = None if mask_token is None else int(mask_token)
        oov_token = None if oov_token is None else int(oov_token)
        super().__init__(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                         mask_token=mask_token, oov_token=oov_token, vocabulary=vocabulary,
                         idf_weights=idf_weights, invert=invert, output_mode=output_mode,
                         pad_to_max_tokens=pad_to_max_tokens, sparse=sparse,
                         oov_method=oov_method, salt=salt, name=name, **kwargs)

    def _tokens(self, values, what):
        if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
            return values.astype(np.int64).tolist()
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            if values.size and not np.all(values == np.round(values)):
                bad = values[values != np.round(values)][:5].tolist()
                raise ValueError(f"{self._owner()}: {what} must hold integers, got {bad}")
            return values.astype(np.int64).tolist()
        out = []
        for v in (values.tolist() if isinstance(values, np.ndarray) else values):
            if isinstance(v, bool):
                out.append(int(v))
            elif isinstance(v, (int, np.integer)):
                out.append(int(v))
            elif isinstance(v, (float, np.floating)) and float(v).is_integer():
                out.append(int(v))
            elif isinstance(v, (str, bytes)):  # a CSV's cells: "3", " 3 ", "3.0"
                try:
                    out.append(int(v))
                    continue
                except ValueError:
                    pass
                try:
                    f = float(v)
                except ValueError:
                    f = None
                if f is None or not f.is_integer():
                    raise ValueError(f"{self._owner()}: {what} must hold integers, got the "
                                     f"string {v!r}; use StringLookup for strings")
                out.append(int(f))
            else:
                raise ValueError(f"{self._owner()}: {what} must hold integers, got {v!r}")
        return out

    def _oov_buckets(self, tokens):
        if self.oov_method == "floormod":
            return np.array(tokens, np.int64) % self.num_oov_indices
        return hash_bucket([str(t) for t in tokens], self.num_oov_indices, self.salt)

    def get_config(self):
        config = super().get_config()
        config.update(vocabulary_dtype=self.vocabulary_dtype, oov_method=self.oov_method)
        return config
