"""``python -m serkit`` (and ``torchrun -m serkit``) runs the command line."""

from serkit.cli.main import main

if __name__ == "__main__":
    main()
