"""Exercises that check themselves: one check per exercise of the course notebooks.

A student writes a few lines at a marked place of a notebook (a ``...`` placeholder beside a
``# YOUR CODE`` comment and a hint), then calls the exercise's check::

    from faderlib.exercises import check_02_cross_entropy
    check_02_cross_entropy(my_cross_entropy)

Each check prints one line (more for a failure) and returns a :class:`Result`:

* ``PASS  exercise 2.3 (...)``: the answer is right;
* ``FAIL  exercise 2.3 (...)``, then what was expected, what was found and a hint: on an input
  of the check's own for a function, described rather than given for a number, so that the
  answer is not given away. An answer that raises fails with the error's message;
* ``TODO  exercise 2.3 (...): not answered yet``: the placeholder is still there (``...`` or
  None, or a function that returns them or raises NotImplementedError).

The exercises on the algorithm itself (2.2, 3.2 to 3.4) are written as statements, not functions (the
notebooks define none), on a *practice* state the cell makes first: :func:`decoder_practice` (a small
decoder's layers and inputs) or :func:`step_practice` (E, D, P, their optimisers and batches, as a run
a few iterations in leaves them), each built from a seed of the exercise's own. The student's code
decodes, or takes a training step, on it; the check builds the same state again, runs the library's
own code on it (:class:`faderlib.models.Decoder`; :func:`faderlib.train.discriminator_update` and
:func:`faderlib.train.autoencoder_update`, which the Trainer runs) and compares: the decoding, or every
network's parameters, BatchNorm statistics and gradients. A state its cell has not changed yet is
"not answered yet".

A check never raises, whatever the answer (a wrong call is reported as a failure too), so the
student notebooks run top to bottom with their placeholders. ``bool(result)`` is True when it
passed; ``result.status`` is ``"PASS"``, ``"FAIL"`` or ``"TODO"``. In a notebook the printed
line is the check's display: the result shows nothing more.

The expected values come from the library (:mod:`faderlib.losses`, :mod:`faderlib.models`,
:mod:`faderlib.train`, :mod:`faderlib.data`, :mod:`faderlib.metrics`, :mod:`faderlib.evaluate`), on inputs the check
draws itself from a fixed seed (a student's function meets inputs it has never seen: a hard-coded
answer cannot pass), or, for a number computed from the notebook's data or run, from the same data
or run. A check runs the student's function with the random generators of torch, numpy and
``random`` set to a seed of its own and restores them afterwards, so a check changes nothing that
follows it.

The checks, one module per notebook (the teacher's answers are in ``notebooks/solutions/``,
written by ``tools/solutions.py`` from ``tools/exercises/``), all importable from here:

* 01, :mod:`.data`: :func:`check_01_constant_guess` (1.1), :func:`check_01_balanced_weights` (1.2);
* 02, :mod:`.networks`: :func:`check_02_extra_attribute` (2.1), :func:`check_02_decoder` (2.2, y in every
  decoder layer, on :func:`decoder_practice`), :func:`check_02_cross_entropy` (2.3),
  :func:`check_02_flip_categorical` (2.4);
* 03, :mod:`.training`: :func:`check_03_lambda` (3.1), :func:`check_03_discriminator_step` (3.2),
  :func:`check_03_autoencoder_step` (3.3), :func:`check_03_training_bug` (3.4, a training iteration's
  bug to find; 3.2 to 3.4 on :func:`step_practice`), :func:`check_03_slider_effect` (3.5);
* 04, :mod:`.sliders`: :func:`check_04_halfway` (4.1), :func:`check_04_changed_pixels` (4.2);
* 05, :mod:`.evaluation`: :func:`check_05_probe` (5.1, a probe on the validation split, which
  :func:`faderlib.evaluate.evaluate` does not use), :func:`check_05_swap_accuracy` (5.2).

What a check is, and the helpers the checks share, are :mod:`.checking`.
"""

from __future__ import annotations

from .checking import CHECKS, FAIL, PASS, TODO, Result
# in the course's order, which is the order the checks enter CHECKS
from .data import check_01_balanced_weights, check_01_constant_guess
from .networks import (DecoderPractice, check_02_cross_entropy, check_02_decoder, check_02_extra_attribute,
                       check_02_flip_categorical, decoder_practice)
from .training import (StepPractice, check_03_autoencoder_step, check_03_discriminator_step, check_03_lambda,
                       check_03_slider_effect, check_03_training_bug, step_practice)
from .sliders import check_04_changed_pixels, check_04_halfway
from .evaluation import check_05_probe, check_05_swap_accuracy

__all__ = ["PASS", "FAIL", "TODO", "Result", "CHECKS", "decoder_practice", "DecoderPractice", "step_practice",
           "StepPractice",
           "check_01_constant_guess", "check_01_balanced_weights",
           "check_02_extra_attribute", "check_02_decoder", "check_02_cross_entropy", "check_02_flip_categorical",
           "check_03_lambda", "check_03_discriminator_step", "check_03_autoencoder_step", "check_03_training_bug",
           "check_03_slider_effect",
           "check_04_halfway", "check_04_changed_pixels",
           "check_05_probe", "check_05_swap_accuracy"]
