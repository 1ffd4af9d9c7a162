"""Methods: the :class:`Method` API and the built-in method plugins (one module per method).

Every built-in registers through the ``drbench.methods`` entry-point group, as third-party plugins do.
"""

from drbench.api import Capabilities, Method, Prediction, Query, TrainView
from drbench.registry import get_method, method_names, register

__all__ = ["Method", "Capabilities", "Prediction", "Query", "TrainView", "register", "get_method", "method_names"]
