"""Keras 3's structured-data preprocessing layers, in NumPy: StringLookup, IntegerLookup,
CategoryEncoding, Discretization, Hashing, HashedCrossing (see each class)."""
from .base import PreprocessingLayer
from .lookup import IndexLookup, IntegerLookup, StringLookup
from .numeric import CategoryEncoding, Discretization, HashedCrossing, Hashing

__all__ = ["PreprocessingLayer", "IndexLookup", "StringLookup", "IntegerLookup", "CategoryEncoding",
           "Discretization", "Hashing", "HashedCrossing"]
