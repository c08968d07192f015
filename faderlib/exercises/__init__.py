"""Exercises that check themselves: one check per exercise of the course notebooks.

A student writes a few lines at a marked place of a notebook (a ``...`` placeholder beside a
``# YOUR CODE`` comment and a hint), then calls the exercise's check::

    from faderlib.exercises import check_02_flip
    check_02_flip(my_flip)

Each check prints one line (more for a failure) and returns a :class:`Result`:

* ``PASS  exercise 2.4 (...)``: the answer is right;
* ``FAIL  exercise 2.4 (...)``, then what was expected, what was found and a hint: on an input
  of the check's own for a function, described rather than given for a number, so that the
  answer is not given away. An answer that raises fails with the error's message;
* ``TODO  exercise 2.4 (...): not answered yet``: the placeholder is still there (``...`` or
  None, or a function that returns them or raises NotImplementedError).

A check never raises, whatever the answer (a wrong call is reported as a failure too), so the
student notebooks run top to bottom with their placeholders. ``bool(result)`` is True when it
passed; ``result.status`` is ``"PASS"``, ``"FAIL"`` or ``"TODO"``. In a notebook the printed
line is the check's display: the result shows nothing more.

The expected values come from the library (:mod:`faderlib.losses`, :mod:`faderlib.models`,
:mod:`faderlib.data`, :mod:`faderlib.metrics`, :mod:`faderlib.evaluate`), on inputs the check
draws itself from a fixed seed (a student's function meets inputs it has never seen: a hard-coded
answer cannot pass), or, for a number computed from the notebook's data or run, from the same data
or run. A check runs the student's function with the random generators of torch, numpy and
``random`` set to a seed of its own and restores them afterwards, so a check changes nothing that
follows it.

The checks, one module per notebook (the teacher's answers are in ``notebooks/solutions/``,
written by ``tools/solutions.py`` from ``tools/exercises/``), all importable from here:

* 01, :mod:`.data`: :func:`check_01_constant_guess`, :func:`check_01_balanced_weights`,
  :func:`check_01_positives_per_batch`;
* 02, :mod:`.networks`: :func:`check_02_extra_attribute`, :func:`check_02_code`,
  :func:`check_02_cross_entropy`, :func:`check_02_flip`, :func:`check_02_flip_categorical`;
* 03, :mod:`.training`: :func:`check_03_lambda`, :func:`check_03_slider_effect`;
* 04, :mod:`.sliders`: :func:`check_04_code`, :func:`check_04_changed_pixels`;
* 05, :mod:`.evaluation`: :func:`check_05_balanced_accuracy`, :func:`check_05_probe`,
  :func:`check_05_swap_accuracy`.

What a check is, and the helpers the checks share, are :mod:`.checking`.
"""

from __future__ import annotations

from .checking import CHECKS, FAIL, PASS, TODO, Result
# in the course's order, which is the order the checks enter CHECKS
from .data import check_01_balanced_weights, check_01_constant_guess, check_01_positives_per_batch
from .networks import (check_02_code, check_02_cross_entropy, check_02_extra_attribute, check_02_flip,
                       check_02_flip_categorical)
from .training import check_03_lambda, check_03_slider_effect
from .sliders import check_04_changed_pixels, check_04_code
from .evaluation import check_05_balanced_accuracy, check_05_probe, check_05_swap_accuracy

__all__ = ["PASS", "FAIL", "TODO", "Result", "CHECKS",
           "check_01_constant_guess", "check_01_balanced_weights", "check_01_positives_per_batch",
           "check_02_extra_attribute", "check_02_code", "check_02_cross_entropy", "check_02_flip",
           "check_02_flip_categorical", "check_03_lambda", "check_03_slider_effect", "check_04_code",
           "check_04_changed_pixels", "check_05_balanced_accuracy", "check_05_swap_accuracy", "check_05_probe"]
