"""``python -m verify``: the same entry point as the ``verify`` console script."""

from verify.cli import main

if __name__ == "__main__":
    main()
