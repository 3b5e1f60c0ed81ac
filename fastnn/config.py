"""Keras' ``keras.config`` names that fastnn supports."""
from .backend import backend, floatx, set_floatx  # noqa: F401
