"""Testing helpers for plugin authors: conformance checks per component kind, and pytest fixtures.

The fixtures come with the ``genrec`` pytest plugin (entry point ``pytest11``); the checks are plain
functions in the spirit of scikit-learn's ``check_estimator``.
"""

from genrec.testing.checks import (
    check_embedder,
    check_fuser,
    check_generator,
    check_quantizer,
    checks_for,
    generator_checks,
    parametrize_with_checks,
    quantizer_checks,
    tiny_dataset,
    tiny_recdata,
)

__all__ = [
    "check_embedder",
    "check_fuser",
    "check_generator",
    "check_quantizer",
    "checks_for",
    "generator_checks",
    "parametrize_with_checks",
    "quantizer_checks",
    "tiny_dataset",
    "tiny_recdata",
]
