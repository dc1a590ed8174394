"""``python -m wdlab ...``: the same command line as ``wdlab``."""

from wdlab.cli import app

if __name__ == "__main__":
    app(prog_name="wdlab")
