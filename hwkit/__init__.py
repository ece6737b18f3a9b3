"""hwkit: online handwriting data -> Graves-style generative models -> handwriting.

Importing the package is cheap on purpose (no torch, no h5py): the CLI's
``--help`` and ``--version`` must answer instantly.
"""

__version__ = "0.1.0"
