"""swg-operator: one isolated Secure Web Gateway per customer, declared as a Kubernetes resource."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("swg-operator")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
