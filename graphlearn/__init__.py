"""graphlearn: link prediction and recommendation on graphs.

Importing the package has no side effects: no threads, no network, no
directories created and no kernels compiled.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
