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
:mod:`faderlib.data`, :mod:`faderlib.evaluate`), on inputs the check draws itself from a fixed
seed (a student's function meets inputs it has never seen: a hard-coded answer cannot pass), or,
for a number computed from the notebook's data or run, from the same data or run. A check runs
the student's function with the random generators of torch, numpy and ``random`` set to a seed
of its own and restores them afterwards, so a check changes nothing that follows it.

The checks, by notebook (the teacher's answers are in ``notebooks/solutions/``, written by
``tools/solutions.py`` from ``tools/exercises/``):

* 01: :func:`check_01_constant_guess`, :func:`check_01_balanced_weights`, :func:`check_01_positives_per_batch`;
* 02: :func:`check_02_extra_attribute`, :func:`check_02_code`, :func:`check_02_cross_entropy`,
  :func:`check_02_flip`, :func:`check_02_flip_categorical`;
* 03: :func:`check_03_lambda`, :func:`check_03_slider_effect`;
* 04: :func:`check_04_code`, :func:`check_04_changed_pixels`;
* 05: :func:`check_05_balanced_accuracy`, :func:`check_05_probe`, :func:`check_05_swap_accuracy`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import random
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

PASS, FAIL, TODO = "PASS", "FAIL", "TODO"

__all__ = ["PASS", "FAIL", "TODO", "Result", "CHECKS",
           "check_01_constant_guess", "check_01_balanced_weights", "check_01_positives_per_batch",
           "check_02_extra_attribute", "check_02_code", "check_02_cross_entropy", "check_02_flip",
           "check_02_flip_categorical", "check_03_lambda", "check_03_slider_effect", "check_04_code",
           "check_04_changed_pixels", "check_05_balanced_accuracy", "check_05_swap_accuracy", "check_05_probe"]


@dataclass(frozen=True)
class Result:
    """What a check found: ``status`` (PASS, FAIL or TODO), the exercise's number and the
    message it printed. True when it passed."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def answered(self) -> bool:
        return self.status != TODO

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """Nothing: the check printed its message already (a cell ending in a check shows it once)."""


#: Every check, by name (tests go through them all).
CHECKS: dict[str, Callable[..., Result]] = {}


# ----------------------------------------------------------------------------- the machinery
class _Unanswered(Exception):
    """The answer is still the placeholder."""


class _Failed(Exception):
    """The answer is wrong: what was found, what was expected, and a hint."""

    def __init__(self, found: str, expected: str | None = None, hint: str | None = None):
        super().__init__(found)
        self.found, self.expected, self.hint = found, expected, hint


class _CallError(Exception):
    """The check itself was called wrongly (not the answer's fault)."""


def _is_placeholder(value) -> bool:
    return value is None or value is Ellipsis


@contextlib.contextmanager
def _own_random_state(seed: int):
    """Seed torch, numpy and ``random`` for the check, and give them back their state after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _exercise(number: str, title: str, usage: str, seed: int):
    """Make ``body`` a check: it raises _Unanswered, _Failed or _CallError, or returns the PASS text."""

    def wrap(body):
        signature = inspect.signature(body)
        label = f"exercise {number} ({title})"

        @functools.wraps(body)
        def check(*args, **kwargs) -> Result:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                return _report(number, FAIL, f"FAIL  {label}: the check was called wrongly ({e}); call it as {usage}")
            try:
                with _own_random_state(seed):
                    text = body(*bound.args, **bound.kwargs)
            except _Unanswered as e:
                extra = f" ({e})" if str(e) else ""
                return _report(number, TODO, f"TODO  {label}: not answered yet{extra}: write your code in place "
                                             "of the ..., then run this cell again")
            except _Failed as e:
                lines = [f"FAIL  {label}"]
                if e.expected is not None:
                    lines.append(f"      expected: {e.expected}")
                lines.append(f"      found:    {e.found}")
                if e.hint:
                    lines.append(f"      hint:     {e.hint}")
                return _report(number, FAIL, "\n".join(lines))
            except _CallError as e:
                return _report(number, FAIL, f"FAIL  {label}: the check was called wrongly: {e}; call it as {usage}")
            except Exception as e:  # an answer of a kind the check did not foresee: a failure, never a crash
                return _report(number, FAIL, f"FAIL  {label}\n      found:    an answer that could not be checked "
                                             f"({_error(e)})\n      hint:     call it as {usage}")
            return _report(number, PASS, f"PASS  {label}: {text}")

        check.exercise = number
        CHECKS[body.__name__] = check
        return check

    return wrap


def _report(number: str, status: str, message: str) -> Result:
    print(message)
    return Result(number, status, message)


def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _call(fn, *args):
    """The student's function applied to ``args``; a placeholder, a missing return or a
    NotImplementedError is 'not answered', another error a failure with its message."""
    if _is_placeholder(fn):
        raise _Unanswered()
    if not callable(fn):
        raise _Failed(f"{_kind(fn)}", "a function (a lambda, or a def), which the check calls on inputs of its own",
                      "give the function itself, not what it returns")
    try:
        out = fn(*args)
    except NotImplementedError:
        raise _Unanswered("your function raises NotImplementedError") from None
    except Exception as e:
        raise _Failed(f"your function raised {_error(e)} on {_describe_args(args)}") from None
    if out is Ellipsis:
        raise _Unanswered("your function still returns ...")
    if out is None:
        raise _Unanswered("your function returns None: if you wrote a def, does it return its result?")
    return out


def _kind(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"{type(value).__name__} {_short(value)}"


def _short(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n - 3] + "..."


def _describe_args(args) -> str:
    return ", ".join(_kind(a) if isinstance(a, (torch.Tensor, np.ndarray)) else _short(a, 40) for a in args)


def _show(t) -> str:
    """A small tensor or array as a list, numbers rounded (whole numbers as integers)."""
    a = np.asarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t)
    if a.dtype.kind == "f":
        a = np.round(a.astype(np.float64), 4) + 0.0
        if np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
    return str(a.tolist())


def _answered(**answers):
    """Refuse placeholders among named answers (values)."""
    missing = [name for name, v in answers.items() if _is_placeholder(v)]
    if missing:
        raise _Unanswered(f"still ...: {', '.join(missing)}" if len(missing) < len(answers) else "")


def _number(value, name: str) -> float:
    """A number from a Python number, a numpy scalar or a one-element tensor or array."""
    if isinstance(value, (bool, np.bool_)):
        raise _Failed(f"{name} = {value!r}, a truth value", f"{name}: a number")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if (value.size if isinstance(value, np.ndarray) else value.numel()) != 1:
            raise _Failed(f"{name}: {_kind(value)}", f"{name}: one number")
        value = value.item()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise _Failed(f"{name}: {_kind(value)}", f"{name}: a number") from None
    if not math.isfinite(v):
        raise _Failed(f"{name} = {v}", f"{name}: a finite number")
    return v


def _tensor(value, name: str, shape: tuple[int, ...], dtype=torch.float64) -> torch.Tensor:
    """A tensor of ``shape`` from what a student returned (tensor, array, list)."""
    try:
        t = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    except Exception:
        raise _Failed(f"{name}: {_kind(value)}", f"{name}: a tensor of shape {shape}") from None
    if tuple(t.shape) != tuple(shape):
        raise _Failed(f"{name}: {_kind(t)}", f"{name}: a tensor of shape {tuple(shape)}")
    if t.is_complex():
        raise _Failed(f"{name}: complex numbers", f"{name}: real numbers")
    return t.to(dtype)


def _share(value, name: str) -> float:
    v = _number(value, name)
    if 1 < v <= 100:
        raise _Failed(f"{name} = {v:g}", f"{name}: a share between 0 and 1",
                      "write a share (0.93), not a percentage (93)")
    if not 0 <= v <= 1:
        raise _Failed(f"{name} = {v:g}", f"{name}: a share between 0 and 1")
    return v


def _close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-6) -> bool:
    return abs(a - b) <= max(abs_, rel * abs(b))


def _run(run):
    """A :class:`faderlib.runs.Run` from a run or its folder (a wrong value is the caller's mistake)."""
    from .runs import Run, load_run

    if isinstance(run, Run):
        return run
    if isinstance(run, (str, os.PathLike)) or hasattr(run, "fader"):
        path = getattr(run, "fader", run)  # a CourseRuns: its Fader network
        try:
            return load_run(path)
        except Exception as e:
            raise _CallError(f"cannot load the run in {path} ({_error(e)})") from None
    raise _CallError(f"run={_short(run)} is neither a run (load_run(...)) nor a run folder")


def _test_image(run, index) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(index, int) or isinstance(index, bool):
        raise _CallError(f"index={index!r} must be the number of a test image")
    try:
        return run.images(1, start=index)
    except (IndexError, FileNotFoundError) as e:
        raise _CallError(str(e)) from None


def _attribute_index(config, attribute) -> int:
    names = config.attribute_names
    if isinstance(attribute, int) and 0 <= attribute < len(names):
        return attribute
    if attribute in names:
        return names.index(attribute)
    raise _CallError(f"attribute={attribute!r} is not an attribute of this run ({', '.join(names)})")


def _labels(dataset, attribute) -> np.ndarray:
    """The class indices of ``attribute`` over a FaderDataset's split."""
    try:
        table = dataset.prepared.attributes
        rows = dataset.rows
    except AttributeError:
        raise _CallError(f"dataset={_short(dataset)} is not a FaderDataset (e.g. train = FaderDataset(data, "
                         "'train', ATTRIBUTES))") from None
    if attribute not in table.columns:
        raise _CallError(f"attribute={attribute!r} is not a column of the data set's attribute table")
    return table[attribute].to_numpy(np.int64)[rows]


def _binary_config(n: int):
    from .config import ModelConfig

    return ModelConfig.from_preset("official", 32, [f"A{i}" for i in range(n)])


# ----------------------------------------------------------------------------- 01: the data
@_exercise("1.1", "the accuracy of a constant answer",
           "check_01_constant_guess(train, rare, accuracy, balanced_accuracy)", seed=101)
def check_01_constant_guess(dataset, attribute, accuracy, balanced_accuracy):
    """Exercise 1.1: a "classifier" that always answers the most frequent value of ``attribute``
    on ``dataset`` (a FaderDataset): its ``accuracy`` and its ``balanced_accuracy`` (shares)."""
    _answered(accuracy=accuracy, balanced_accuracy=balanced_accuracy)
    from .evaluate import balanced_accuracy as library_balanced_accuracy

    labels = _labels(dataset, attribute)
    counts = np.bincount(labels, minlength=2)
    majority = int(counts.argmax())
    expected = float(counts[majority]) / len(labels)
    labels_t = torch.from_numpy(labels)
    expected_balanced = library_balanced_accuracy(torch.full_like(labels_t, majority), labels_t, len(counts))
    acc, bal = _share(accuracy, "accuracy"), _share(balanced_accuracy, "balanced_accuracy")
    tol = 6e-4  # a share rounded to 3 decimals passes
    if abs(acc - expected) > tol:
        hint = ("that is the share of the rarer value: what always answering *it* would score"
                if abs(acc - (1 - expected)) <= tol and len(counts) == 2 else
                "count how many images of the split have the most frequent value")
        raise _Failed(f"accuracy = {acc:.4f}", f"the share of {len(labels)} images whose {attribute} is the answer "
                      "given to all of them (the most frequent value)", hint)
    if abs(bal - expected_balanced) > tol:
        hint = ("that is the plain accuracy again: the balanced accuracy is the mean, over the classes, of the "
                "accuracy within each class" if abs(bal - expected) <= tol else
                "within each class the constant answer is right on every image, or on none")
        raise _Failed(f"balanced_accuracy = {bal:.4f}", "the mean over the classes of the share of each class "
                      "answered right", hint)
    return (f"always answering {attribute} = {majority} is right {acc:.1%} of the time, yet its balanced accuracy "
            f"is {bal:.2f}: it knows nothing.")


@_exercise("1.2", "class-balanced sampling weights", "check_01_balanced_weights(my_weights)", seed=102)
def check_01_balanced_weights(my_weights):
    """Exercise 1.2: ``my_weights(labels)`` for a numpy array of 0/1 labels returns one weight per
    label, as :func:`faderlib.data.balanced_weights` draws them (each class equally often)."""
    from .data import class_balanced_weights

    rng = np.random.default_rng(102)
    cases = [(40, 0.5), (500, 0.065), (300, 0.8), (1000, 0.2)]
    for n, rate in cases:
        labels = (rng.random(n) < rate).astype(np.int64)
        labels[:2] = (0, 1)  # both classes present
        expected = class_balanced_weights(labels)
        found = _call(my_weights, labels.copy())
        w = _tensor(found, "the weights", (n,)).numpy()
        name = f"{n} labels of which {int(labels.sum())} are 1"
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise _Failed(f"for {name}: weights from {w.min():g} to {w.max():g}", "finite weights >= 0")
        if not _close(w.sum(), 1.0, rel=1e-6):
            hint = ("each class has a total weight of 1 now: the two classes must share a total of 1"
                    if _close(w.sum(), 2.0, rel=1e-6) else
                    "a weight is the probability of drawing that image")
            raise _Failed(f"for {name}: weights that sum to {w.sum():.4g}", "weights that sum to 1", hint)
        mass = [float(w[labels == c].sum()) for c in (0, 1)]
        if not all(_close(m, 0.5, rel=1e-6) for m in mass):
            raise _Failed(f"for {name}: class 0 gets {mass[0]:.3f} of the total, class 1 gets {mass[1]:.3f}",
                          "each class gets half of the total, whatever its count",
                          "the fewer images a class has, the more each one must weigh")
        if not np.allclose(w, expected, rtol=1e-6, atol=0):
            raise _Failed(f"for {name}: images of one class with different weights", "the same weight for every "
                          "image of a class")
    return (f"right on {len(cases)} label arrays (from 50 % to 6.5 % of 1s); compare with "
            "faderlib.data.balanced_weights(train, rare).")


@_exercise("1.3", "positive faces per batch", "check_01_positives_per_batch(train, rare, uniform, balanced)",
           seed=103)
def check_01_positives_per_batch(dataset, attribute, uniform, balanced, batch_size: int = 32):
    """Exercise 1.3: the mean number of images with ``attribute`` = 1 in a batch of ``batch_size``
    drawn from ``dataset`` uniformly (``uniform``) and class-balanced on ``attribute`` (``balanced``)."""
    _answered(uniform=uniform, balanced=balanced)
    from .data import balanced_weights

    if not isinstance(batch_size, int) or batch_size < 1:
        raise _CallError(f"batch_size={batch_size!r} must be a positive integer")
    labels = _labels(dataset, attribute)
    expected_uniform = batch_size * float((labels == 1).mean())
    expected_balanced = batch_size * float(balanced_weights(dataset, attribute).numpy()[labels == 1].sum())
    u, b = _number(uniform, "uniform"), _number(balanced, "balanced")

    def near(a, e):
        return abs(a - e) <= max(0.1, 0.03 * e)  # the sampling table's empirical figures pass too

    if not near(u, expected_uniform):
        hint = ("that is a share of the images; the question asks for a count per batch"
                if near(u * batch_size, expected_uniform) else
                "a batch draws every image with the same probability: how many 1s in {batch_size} draws, on average?")
        raise _Failed(f"uniform = {u:g}", f"the mean count of {attribute} = 1 in a batch of {batch_size} drawn "
                      "uniformly", hint.format(batch_size=batch_size))
    if not near(b, expected_balanced):
        hint = ("that is the uniform count: balancing changes the probability of each image"
                if near(b, expected_uniform) else
                "under class-balanced sampling each class gets the same share of the draws")
        raise _Failed(f"balanced = {b:g}", f"the mean count of {attribute} = 1 in a batch of {batch_size} drawn "
                      "class-balanced", hint)
    return (f"about {u:.1f} faces with {attribute} per batch of {batch_size} drawn uniformly, {b:.0f} when "
            "balanced.")


# ----------------------------------------------------------------------------- 02: networks and losses
@_exercise("2.1", "what one more attribute costs the decoder", "check_02_extra_attribute(my_extra)", seed=201)
def check_02_extra_attribute(my_extra):
    """Exercise 2.1: ``my_extra(config)`` returns the number of decoder parameters that one more
    binary attribute adds to the networks of ``config`` (a ModelConfig, convtranspose decoder)."""
    from .config import ModelConfig
    from .models import Decoder, count_parameters

    cases = [("official", 256, ["Male"]), ("paper", 64, ["Smiling", "Eyeglasses", "Male"]),
             ("official", 32, ["Smiling"]), ("paper", 128, ["Male", "Young"])]
    for preset, size, names in cases:
        config = ModelConfig.from_preset(preset, size, names)
        bigger = ModelConfig.from_preset(preset, size, [*names, "Extra"])
        expected = count_parameters(Decoder(bigger)) - count_parameters(Decoder(config))
        found = _number(_call(my_extra, config), "the count")
        if found != expected:
            first = 2 * 16 * (config.img_channels if config.n_layers == 1 else config.channels(config.n_layers - 2))
            if found * 2 == expected:
                hint = "a binary attribute enters the decoder as a pair of channels, [1 - y, y]"
            elif found * 16 == expected:
                hint = "each input channel of a transposed convolution meets a 4x4 kernel per output channel"
            elif found == first:
                hint = "the attribute code is concatenated to the input of every decoder layer, not only the first"
            else:
                hint = "decoder_inputs(config) lists each decoder layer's input and output channels"
            raise _Failed(f"{found:,.0f} for the {preset!r} preset at {size} px with {len(names)} attribute(s)",
                          f"{expected:,} for that configuration", hint)
    return (f"right on {len(cases)} configurations, from 32 to 256 px; at 256 px one more attribute costs the "
            "reference decoder 31,840 parameters.")


@_exercise("2.2", "the attribute code [1 - alpha, alpha]", "check_02_code(my_code)", seed=202)
def check_02_code(my_code):
    """Exercise 2.2: ``my_code(alpha)`` turns a float tensor (B, n) of values alpha, one per binary
    attribute, into the decoder's attribute code (B, 2n), as :func:`faderlib.models.attribute_code`."""
    from .models import attribute_code

    g = torch.Generator().manual_seed(202)
    for n in (1, 3):
        alpha = (torch.rand(4, n, generator=g) * 3 - 1).round(decimals=2)
        expected = attribute_code(alpha, _binary_config(n))
        found = _tensor(_call(my_code, alpha.clone()), "the code", (4, 2 * n))
        if not torch.allclose(found, expected.double(), atol=1e-6):
            a = alpha[:1]
            mine = found[:1]
            pairs = torch.stack([a, 1 - a], 2).flatten(1).double()
            blocks = torch.cat([1 - a, a], 1).double()
            if torch.allclose(mine, pairs, atol=1e-6):
                hint = "each pair starts with the channel 'absent', which is 1 for alpha = 0"
            elif n > 1 and torch.allclose(mine, blocks, atol=1e-6):
                hint = "the channels of one attribute sit side by side: attribute i has channels 2i and 2i + 1"
            else:
                hint = "alpha = 0 gives the pair [1, 0] (absent) and alpha = 1 the pair [0, 1] (present)"
            raise _Failed(f"for alpha = {_show(a)}: {_show(mine)}", _show(expected[:1]), hint)
    return "your code matches attribute_code for 1 and 3 attributes, alpha from -1 to 2."


@_exercise("2.3", "the cross-entropy of equation (1)", "check_02_cross_entropy(my_cross_entropy)", seed=203)
def check_02_cross_entropy(my_cross_entropy):
    """Exercise 2.3: ``my_cross_entropy(logits, y)``: P's loss (1) for logits (B, 2n), one pair per
    binary attribute, against the true classes y (B, n): as :func:`faderlib.losses.discriminator_loss`."""
    from .losses import discriminator_loss

    g = torch.Generator().manual_seed(203)
    b = 16
    for n in (1, 3):
        config = _binary_config(n)
        logits = torch.randn(b, 2 * n, generator=g) * 2
        y = torch.randint(0, 2, (b, n), generator=g)
        expected = float(discriminator_loss(logits, y, config))
        found = _number(_call(my_cross_entropy, logits.clone(), y.clone()), "the loss")
        if not _close(found, expected, rel=1e-4):
            flipped = float(discriminator_loss(logits, 1 - y, config))
            whole = float(-torch.log_softmax(logits, 1).gather(1, 2 * torch.arange(n)[None] + y).sum(1).mean())
            if n > 1 and _close(found * n, expected, rel=1e-4):
                hint = "the paper sums the log-probabilities over the attributes (and averages over the batch)"
            elif _close(found, expected * b, rel=1e-4):
                hint = "average over the images of the batch"
            elif _close(found, -expected, rel=1e-4):
                hint = "a loss to minimise is minus the log-probability"
            elif _close(found, flipped, rel=1e-4):
                hint = "equation (1) scores P against the true y; the flipped 1 - y belongs to equation (3)"
            elif _close(found, whole, rel=1e-4):
                hint = "a softmax per attribute: over its own pair of logits, not over all of them"
            else:
                hint = "-log_softmax of each attribute's pair of logits, taken at the true class"
            raise _Failed(f"{found:.5f} for {n} attribute(s), a batch of {b}", f"{expected:.5f}", hint)
    return "your loss equals discriminator_loss for 1 and 3 attributes."


@_exercise("2.4", "the flipped target of equation (3)", "check_02_flip(my_flip)", seed=204)
def check_02_flip(my_flip):
    """Exercise 2.4: ``my_flip(y)`` returns the target of the adversarial term for binary class
    indices y (B, n): as :func:`faderlib.losses.flip_attributes` (1 - y), leaving y unchanged."""
    from .losses import flip_attributes

    g = torch.Generator().manual_seed(204)
    for n in (1, 3):
        y = torch.randint(0, 2, (8, n), generator=g)
        given = y.clone()
        expected = flip_attributes(y, _binary_config(n))
        found = _tensor(_call(my_flip, given), "the flipped attributes", (8, n))
        if not torch.equal(given, y):
            raise _Failed("your function changed y itself", "a new tensor, y unchanged",
                          "the trainer still needs the true y for the reconstruction: compute a new tensor")
        if not torch.equal(found, expected.double()):
            if torch.equal(found, y.double()):
                hint = "these are the true attributes: P would be pushed to read y, the opposite of hiding it"
            elif not bool(((found == 0) | (found == 1)).all()):
                hint = "the target must stay a class index, 0 or 1"
            else:
                hint = "every attribute of every image must become the other value"
            raise _Failed(f"for y = {_show(y[:2])}: {_show(found[:2])}", _show(expected[:2]), hint)
    return "your flip is 1 - y, and leaves y alone."


@_exercise("2.5", "the flipped target of a K-valued attribute", "check_02_flip_categorical(my_flip_k)", seed=205)
def check_02_flip_categorical(my_flip_k):
    """Exercise 2.5: ``my_flip_k(y, K)`` returns, for class indices y (N,) of an attribute with K
    values, a value different from y drawn uniformly among the K - 1 others, as
    :func:`faderlib.losses.flip_attributes` does for a K-valued attribute (1 - y when K = 2)."""
    g = torch.Generator().manual_seed(205)
    for k, n in ((3, 6000), (5, 10000), (2, 200)):
        y = torch.randint(0, k, (n,), generator=g)
        given = y.clone()
        found = _tensor(_call(my_flip_k, given, k), "the flipped values", (n,))
        where = f"K = {k}"
        if not torch.equal(given, y):
            raise _Failed(f"for {where}: your function changed y itself", "a new tensor, y unchanged")
        if not bool((found == found.round()).all()) or found.min() < 0 or found.max() > k - 1:
            raise _Failed(f"for {where}: values from {found.min():g} to {found.max():g}",
                          f"class indices 0..{k - 1}")
        found = found.long()
        same = int((found == y).sum())
        if same:
            raise _Failed(f"for {where}: {same} of {n} values equal to the true one", "never the true value",
                          "the target is a wrong answer: a value y never has")
        for true in range(k):
            picked = found[y == true]
            counts = torch.bincount(picked, minlength=k).double()
            shares = counts / max(len(picked), 1)
            missing = [v for v in range(k) if v != true and counts[v] == 0]
            if missing:
                raise _Failed(f"for {where}, y = {true}: never {', '.join(map(str, missing))}",
                              f"every other value of the {k} reached", "draw the new value at random among the "
                              f"{k - 1} values that are not y")
            worst = max(abs(float(shares[v]) - 1 / (k - 1)) for v in range(k) if v != true)
            if worst > 0.05:
                raise _Failed(f"for {where}, y = {true}: the other values drawn with shares "
                              f"{_show(shares[[v for v in range(k) if v != true]])}",
                              f"each of the {k - 1} other values about 1/{k - 1} of the time",
                              "the draw must not favour any of the other values")
    return "never the true value, every other value equally often, for K = 2, 3 and 5."


# ----------------------------------------------------------------------------- 03: training
@_exercise("3.1", "the lambda_E schedule", "check_03_lambda(my_lambda)", seed=301)
def check_03_lambda(my_lambda):
    """Exercise 3.1: ``my_lambda(step, lambda_max, ramp)``: lambda_E at autoencoder step ``step``
    (0-based) of a linear ramp from 0 to ``lambda_max`` over ``ramp`` steps (ramp > 0), then constant:
    as :func:`faderlib.losses.lambda_e`."""
    from .losses import lambda_e
    from .train import RECIPES

    course = RECIPES["course"]
    rng = np.random.default_rng(301)
    cases = [(s, course["lambda_e"], course["lambda_ramp"]) for s in (0, 1, 500, 999, 1000, 1001, 4000)]
    cases += [(int(rng.integers(0, 900_000)), 1e-4, 500_000) for _ in range(3)] + [(0, 1e-4, 500_000),
                                                                               (700_000, 1e-4, 500_000)]
    lam_max, ramp = float(rng.uniform(0.01, 1)), int(rng.integers(10, 100))
    cases += [(s, lam_max, ramp) for s in (0, ramp // 2, ramp - 1, ramp, 3 * ramp)]
    for step, lam, ramp_steps in cases:
        expected = lambda_e(step, lam, ramp_steps)
        found = _number(_call(my_lambda, step, lam, ramp_steps), "lambda_E")
        if not _close(found, expected, rel=1e-6, abs_=1e-12):
            if step >= ramp_steps and found > lam:
                hint = "after the ramp lambda_E stays at lambda_max"
            elif _close(found, lam * min(step + 1, ramp_steps) / ramp_steps, rel=1e-6, abs_=1e-12):
                hint = "steps count from 0: lambda_E is 0 at step 0"
            else:
                hint = "lambda_E grows linearly, from 0 at step 0 to lambda_max at step ramp"
            raise _Failed(f"{found:.6g} at step {step:,} (lambda_max {lam:g}, ramp {ramp_steps:,})",
                          f"{expected:.6g}", hint)
    return (f"right on {len(cases)} steps of 3 schedules: the course's reaches {course['lambda_e']:g} at step "
            f"{course['lambda_ramp']:,}.")


def _slider_effect(run, j: int, n: int) -> float:
    from .models import code_for

    x, y = run.images(n)
    ae = run.autoencoder.eval()
    with torch.no_grad():
        z = ae.encode(x)
        low = ae.decode(z, code_for(run.model_config, y, {j: 0.0}))
        high = ae.decode(z, code_for(run.model_config, y, {j: 1.0}))
    return float((high - low).abs().mean())


@_exercise("3.2", "what a slider changes", "check_03_slider_effect(runs.ablation, effect, ATTRIBUTES[0])", seed=302)
def check_03_slider_effect(run, effect, attribute, n: int = 16):
    """Exercise 3.2: ``effect``, the mean absolute change of the pixels (images in [-1, 1], over the
    channels and the first ``n`` test images) when the run's decoder gets ``attribute`` at 0, then
    at 1, the other attributes at each image's values, z = E(x) the same."""
    _answered(effect=effect)
    run = _run(run)
    j = _attribute_index(run.model_config, attribute)
    if not isinstance(n, int) or n < 1:
        raise _CallError(f"n={n!r} must be a positive number of images")
    expected = _slider_effect(run, j, n)
    found = _number(effect, "effect")
    if not _close(found, expected, rel=0.01, abs_=1e-5):
        hint = ("a mean over the pixels, not a sum" if _close(found, expected * n * run.model_config.image_size ** 2
                                                               * 3, rel=0.05) else
                "a change either way counts: take the absolute value before the mean" if abs(found) < 0.5 * expected
                else "decode the same z twice, with the attribute at 0 and at 1, and compare the two decodings")
        raise _Failed(f"effect = {found:.5f}", f"the mean of |D(z, y with {run.model_config.attribute_names[j]} = 1)"
                      f" - D(z, y with it = 0)| over the first {n} test images", hint)
    return (f"{run.model_config.attribute_names[j]} from 0 to 1 moves the pixels of {run.run_dir.name} by "
            f"{found:.4f} on average (images in [-1, 1]).")


# ----------------------------------------------------------------------------- 04: interpolation
@_exercise("4.1", "the decoder's code for alpha = 2", "check_04_code(run, code, names[0])", seed=401)
def check_04_code(run, code, attribute, alpha: float = 2.0, index: int = 0):
    """Exercise 4.1: ``code``, the attribute code (1, n_attr_channels) the decoder gets for test image
    ``index`` of the run with ``attribute`` at ``alpha`` and the others at the image's values, as
    :func:`faderlib.models.code_for` builds it."""
    _answered(code=code)
    from .models import code_for

    run = _run(run)
    config = run.model_config
    j = _attribute_index(config, attribute)
    alpha = _number(alpha, "alpha")
    _, y = _test_image(run, index)
    expected = code_for(config, y, {j: alpha}).double()
    found = _tensor(code, "code", tuple(expected.shape))
    if not torch.allclose(found, expected, atol=1e-6):
        block = config.attribute_blocks[j]
        others = torch.ones(expected.shape[1], dtype=torch.bool)
        others[block] = False
        if torch.allclose(found[:, block], expected[:, block].flip(1), atol=1e-6):
            hint = "the pair is [1 - alpha, alpha]: 'absent' first"
        elif not torch.allclose(found[:, block], expected[:, block], atol=1e-6):
            hint = (f"{config.attribute_names[j]} is attribute {j}: its pair is channels {block.start} and "
                    f"{block.start + 1}")
        elif not bool(found[:, others].abs().sum()):
            hint = "the other attributes keep the image's values, y, as one-hot pairs"
        else:
            hint = "the other attributes keep the image's values: the pair [1 - y_i, y_i] for each"
        raise _Failed(f"code = {_show(found)}", f"the code of test image {index}'s y = {_show(y)} with "
                      f"{config.attribute_names[j]} at alpha = {alpha:g}", hint)
    return (f"{config.attribute_names[j]} at alpha = {alpha:g} is the pair [{1 - alpha:g}, {alpha:g}]; the other "
            "attributes keep the image's values.")


@_exercise("4.2", "the pixels a slider moves", "check_04_changed_pixels(run, count, names[0])", seed=402)
def check_04_changed_pixels(run, count, attribute, index: int = 0, threshold: float = 0.1):
    """Exercise 4.2: ``count``, the number of pixels of test image ``index`` whose colour moves by
    more than ``threshold`` in at least one channel (images in [-1, 1]) when the run's decoder gets
    ``attribute`` at alpha = 0, then at alpha = 1 (the same z, the other attributes at the image's values)."""
    _answered(count=count)
    from .models import code_for

    run = _run(run)
    config = run.model_config
    j = _attribute_index(config, attribute)
    threshold = _number(threshold, "threshold")
    x, y = _test_image(run, index)
    ae = run.autoencoder.eval()
    with torch.no_grad():
        z = ae.encode(x)
        low = ae.decode(z, code_for(config, y, {j: 0.0}))
        high = ae.decode(z, code_for(config, y, {j: 1.0}))
        reconstruction = ae.decode(z, y)
    diff = high - low
    expected = int((diff.abs().amax(1) > threshold).sum())
    found = _number(count, "count")
    if abs(found - expected) > max(2, 0.01 * expected):
        values = int((diff.abs() > threshold).sum())
        signed = int((diff.amax(1) > threshold).sum())
        vs_original = int(((high - x).abs().amax(1) > threshold).sum())
        vs_reconstruction = int(((high - reconstruction).abs().amax(1) > threshold).sum())
        if found == values and values != expected:
            hint = "count pixels, not channel values: a pixel counts once, whichever of its channels moved"
        elif found == signed and signed != expected:
            hint = "a change either way counts: compare absolute values"
        elif found in (vs_original, vs_reconstruction) and found != expected:
            hint = "compare the two decodings (alpha = 0 and alpha = 1), not the image or its reconstruction"
        else:
            hint = "decode the same z twice, then count the pixels where |difference| > threshold in some channel"
        raise _Failed(f"count = {found:g}", f"the pixels of test image {index} ({config.image_size}x"
                      f"{config.image_size}) that move by more than {threshold:g} in some channel", hint)
    share = expected / config.image_size ** 2
    return (f"{config.attribute_names[j]} from 0 to 1 moves {expected} of the {config.image_size ** 2} pixels "
            f"({share:.0%}) of test image {index} by more than {threshold:g}.")


# ----------------------------------------------------------------------------- 05: evaluation
@_exercise("5.1", "balanced accuracy", "check_05_balanced_accuracy(my_balanced_accuracy)", seed=501)
def check_05_balanced_accuracy(my_balanced_accuracy):
    """Exercise 5.1: ``my_balanced_accuracy(predicted, labels)`` for class indices (N,): the mean over
    the classes of the share of each class predicted right, as :func:`faderlib.evaluate.balanced_accuracy`."""
    from .evaluate import balanced_accuracy

    g = torch.Generator().manual_seed(501)
    for k, n, rare in ((2, 400, 0.1), (2, 1000, 0.5), (3, 600, 0.2)):
        labels = torch.where(torch.rand(n, generator=g) < rare, torch.randint(1, k, (n,), generator=g), 0)
        labels[:k] = torch.arange(k)  # every class present
        guess = torch.randint(0, k, (n,), generator=g)
        predicted = torch.where(torch.rand(n, generator=g) < 0.7, labels, guess)
        predicted[torch.rand(n, generator=g) < 0.3] = 0  # a bias towards the frequent class
        expected = balanced_accuracy(predicted, labels, k)
        found = _number(_call(my_balanced_accuracy, predicted.clone(), labels.clone()), "the balanced accuracy")
        if not _close(found, expected, rel=1e-6):
            plain = float((predicted == labels).float().mean())
            precision = float(np.mean([float((labels[predicted == c] == c).float().mean()) for c in range(k)
                                       if (predicted == c).any()]))
            if _close(found, plain, rel=1e-6):
                hint = "that is the plain accuracy: average the accuracy within each true class"
            elif _close(found, precision, rel=1e-6):
                hint = "group the images by their true class (labels), not by the predicted one"
            else:
                hint = "for each class c: the share of the images of class c predicted c; then the mean over c"
            raise _Failed(f"{found:.4f} for {n} images, {k} classes", f"{expected:.4f}", hint)
    return "your balanced accuracy equals the library's for 2 and 3 classes, balanced or not."


@_exercise("5.3", "swap accuracy", "check_05_swap_accuracy(my_swap_accuracy)", seed=502)
def check_05_swap_accuracy(my_swap_accuracy):
    """Exercise 5.3: ``my_swap_accuracy(read, original, target)``: of the images whose ``original``
    value of an attribute differs from ``target``, the share that the classifier, after the edit to
    ``target``, reads as ``target`` (``read``: its classes (N,)); as :func:`faderlib.evaluate.evaluate` counts it."""
    g = torch.Generator().manual_seed(502)
    for n, target, k in ((200, 1, 2), (300, 0, 2), (500, 2, 3)):
        original = torch.randint(0, k, (n,), generator=g)
        read = torch.where(torch.rand(n, generator=g) < 0.6, torch.full((n,), target), torch.randint(0, k, (n,),
                                                                                                   generator=g))
        mask = original != target
        expected = float((read[mask] == target).float().mean())
        found = _number(_call(my_swap_accuracy, read.clone(), original.clone(), target), "the swap accuracy")
        if not _close(found, expected, rel=1e-6):
            everyone = float((read == target).float().mean())
            kept = float((read[mask] == original[mask]).float().mean())
            if _close(found, everyone, rel=1e-6):
                hint = "an image that already has the target value is no swap: leave it out"
            elif _close(found, kept, rel=1e-6):
                hint = "a success is the classifier reading the *target*, not the original value"
            else:
                hint = "among the images whose original value is not the target: the share read as the target"
            raise _Failed(f"{found:.4f} for {n} images, target {target}", f"{expected:.4f}", hint)
    return "your swap accuracy counts what evaluate counts, in both directions and for 3 values."


@_exercise("5.2", "a latent probe by hand", "check_05_probe(run, names[0], probe_accuracy)", seed=503)
def check_05_probe(run, attribute, balanced_accuracy, train_images: int = 2000, test_images: int = 1000,
                   tolerance: float = 0.08):
    """Exercise 5.2: ``balanced_accuracy`` (on test images) of a logistic regression of ``attribute``
    fitted on the flattened codes z of the first ``train_images`` training images and scored on the
    first ``test_images`` test images; within ``tolerance`` of :func:`faderlib.evaluate.latent_probe`'s."""
    _answered(balanced_accuracy=balanced_accuracy)
    from .evaluate import latent_probe

    run = _run(run)
    j = _attribute_index(run.model_config, attribute)
    name = run.model_config.attribute_names[j]
    found = _share(balanced_accuracy, "balanced_accuracy")
    try:
        train, test = run.dataset("train"), run.dataset("test")
    except FileNotFoundError as e:
        raise _CallError(str(e)) from None
    expected = latent_probe(run.autoencoder, train, test, train_images, test_images)[name]["balanced_accuracy"]
    if abs(found - expected) > tolerance:
        if found > expected:
            hint = ("score the probe on test images it was not fitted on: on its own training codes a line "
                    "through thousands of dimensions can be right almost everywhere")
        else:
            hint = ("standardise z with the training codes' mean and deviation, weight each class by the inverse "
                    "of its frequency, and fit long enough (a few hundred full-batch Adam steps)")
        raise _Failed(f"balanced accuracy {found:.3f}", f"within {tolerance:g} of what latent_probe finds on the "
                      "same images", hint)
    verdict = ("z still carries it: the adversary removed what it could read, not all of it" if expected > 0.6 else
               "a line reads little of it from z")
    return (f"your probe reads {name} from z with a balanced accuracy of {found:.3f} (the library's: "
            f"{expected:.3f}): {verdict}.")
