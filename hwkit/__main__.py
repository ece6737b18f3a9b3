"""``python -m hwkit`` (and ``torchrun -m hwkit``) runs the CLI."""

from hwkit.cli import main

if __name__ == "__main__":
    main()
