"""Where digits come from: the bundled MNIST subset, full MNIST (IDX files, download), and a
user's own images (:mod:`digitlens.data.images`)."""

from .bundled import ATTRIBUTION, Digits, load_digits, load_raw
from .idx import IDXError, read_idx, write_idx
from .mnist import DownloadError, download_mnist, load_dataset, load_mnist

__all__ = ["ATTRIBUTION", "Digits", "load_digits", "load_raw", "IDXError", "read_idx",
           "write_idx", "DownloadError", "download_mnist", "load_dataset", "load_mnist"]
