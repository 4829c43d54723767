"""validate_params: check the whole params.yaml against the schema before any other stage runs.

    python -m stages.validate_params            # dvc.yaml: validate_params, upstream of every stage

DVC tracks only the params keys a stage lists, so an edit to a key no stage lists (a typo such as
``subset.sede`` or ``translate.concurency``) left every stage "up to date"; and DVC runs each stage's
``cmd`` through a shell with params interpolated into it before the stage's own code can check them.
This stage depends on params.yaml as a file, so any edit of it reruns this stage; it interpolates nothing
into its own command; and ``fetch`` and ``llink_data``, the stages upstream of all others, depend on its
stamp, so ``dvc repro`` (of the whole pipeline or any target) stops here with the key named before
another command runs (tests/test_faults.py). ``dvc repro --single-item`` skips upstream stages, this one too.

Reads ``params.yaml``; writes ``metrics/params-valid.json``, whose bytes never change: a valid edit reruns
only the stages whose own params or inputs it changed.
"""

from __future__ import annotations

import argparse
import sys

from stages.lib.errors import exit_stage
from stages.lib.params import ParamsError, load_params
from stages.lib.provenance import write_json

STAMP = "metrics/params-valid.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--stamp", default=STAMP)
    args = parser.parse_args(argv)
    try:
        load_params(args.params)
    except ParamsError as error:
        print(error, file=sys.stderr)  # one line per bad key, each naming it
        return 2
    write_json(args.stamp, {"params": "valid against stages/lib/params.py"})
    return 0


if __name__ == "__main__":
    exit_stage(main)
