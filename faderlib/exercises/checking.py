"""The machinery of the exercise checks: what a check prints and returns, and the helpers that
the checks of every notebook share (the checks themselves: one module per notebook, beside this one).

:func:`exercise` makes a check of a function, its body, and enters it in :data:`CHECKS`. The body
reads the student's answers through :func:`call_answer` (a function, called on inputs of the
check's own), :func:`as_number`, :func:`as_share` and :func:`as_tensor` (a value), and the check's
other arguments through :func:`as_run`, :func:`run_image`, :func:`attribute_index` and
:func:`split_labels`; it raises :class:`Unanswered` (still the placeholder), :class:`Failed` (what
was found, what was expected and a hint) or :class:`CallError` (the check was called wrongly), or
returns the text that follows PASS. The check built around it prints one status line (more for a
failure) and returns a :class:`Result`, never raising, with the random generators of torch, numpy
and ``random`` seeded for the body and given back their state afterwards.

Last, :func:`checks_called`: the checks a cell's code calls, in order. ``tools/solutions.py``
validates the exercise sources with it, and the tests count the status lines an executed notebook
must show with it.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import math
import os
import random
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

PASS, FAIL, TODO = "PASS", "FAIL", "TODO"


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
class Unanswered(Exception):
    """The answer is still the placeholder."""


class Failed(Exception):
    """The answer is wrong: what was found, what was expected, and a hint."""

    def __init__(self, found: str, expected: str | None = None, hint: str | None = None):
        super().__init__(found)
        self.found, self.expected, self.hint = found, expected, hint


class CallError(Exception):
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


def exercise(number: str, title: str, usage: str, seed: int):
    """Make ``body`` a check: it raises Unanswered, Failed or CallError, or returns the PASS text."""

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
            except Unanswered as e:
                extra = f" ({e})" if str(e) else ""
                return _report(number, TODO, f"TODO  {label}: not answered yet{extra}: write your code in place "
                                             "of the ..., then run this cell again")
            except Failed as e:
                lines = [f"FAIL  {label}"]
                if e.expected is not None:
                    lines.append(f"      expected: {e.expected}")
                lines.append(f"      found:    {e.found}")
                if e.hint:
                    lines.append(f"      hint:     {e.hint}")
                return _report(number, FAIL, "\n".join(lines))
            except CallError as e:
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


def call_answer(fn, *args):
    """The student's function applied to ``args``; a placeholder, a missing return or a
    NotImplementedError is 'not answered', another error a failure with its message."""
    if _is_placeholder(fn):
        raise Unanswered()
    if not callable(fn):
        raise Failed(f"{_kind(fn)}", "a function (a lambda, or a def), which the check calls on inputs of its own",
                     "give the function itself, not what it returns")
    try:
        out = fn(*args)
    except NotImplementedError:
        raise Unanswered("your function raises NotImplementedError") from None
    except Exception as e:
        raise Failed(f"your function raised {_error(e)} on {_describe_args(args)}") from None
    if out is Ellipsis:
        raise Unanswered("your function still returns ...")
    if out is None:
        raise Unanswered("your function returns None: if you wrote a def, does it return its result?")
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


def show(t) -> str:
    """A small tensor or array as a list, numbers rounded (whole numbers as integers)."""
    a = np.asarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t)
    if a.dtype.kind == "f":
        a = np.round(a.astype(np.float64), 4) + 0.0
        if np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
    return str(a.tolist())


def require_answers(**answers):
    """Refuse placeholders among named answers (values)."""
    missing = [name for name, v in answers.items() if _is_placeholder(v)]
    if missing:
        raise Unanswered(f"still ...: {', '.join(missing)}" if len(missing) < len(answers) else "")


def as_number(value, name: str) -> float:
    """A number from a Python number, a numpy scalar or a one-element tensor or array."""
    if isinstance(value, (bool, np.bool_)):
        raise Failed(f"{name} = {value!r}, a truth value", f"{name}: a number")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if (value.size if isinstance(value, np.ndarray) else value.numel()) != 1:
            raise Failed(f"{name}: {_kind(value)}", f"{name}: one number")
        value = value.item()
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise Failed(f"{name}: {_kind(value)}", f"{name}: a number") from None
    if not math.isfinite(v):
        raise Failed(f"{name} = {v}", f"{name}: a finite number")
    return v


def as_tensor(value, name: str, shape: tuple[int, ...], dtype=torch.float64) -> torch.Tensor:
    """A tensor of ``shape`` from what a student returned (tensor, array, list)."""
    try:
        t = value.detach().cpu() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    except Exception:
        raise Failed(f"{name}: {_kind(value)}", f"{name}: a tensor of shape {shape}") from None
    if tuple(t.shape) != tuple(shape):
        raise Failed(f"{name}: {_kind(t)}", f"{name}: a tensor of shape {tuple(shape)}")
    if t.is_complex():
        raise Failed(f"{name}: complex numbers", f"{name}: real numbers")
    return t.to(dtype)


def as_share(value, name: str) -> float:
    """A share, a number in [0, 1] (a percentage is named as the mistake it is)."""
    v = as_number(value, name)
    if 1 < v <= 100:
        raise Failed(f"{name} = {v:g}", f"{name}: a share between 0 and 1",
                     "write a share (0.93), not a percentage (93)")
    if not 0 <= v <= 1:
        raise Failed(f"{name} = {v:g}", f"{name}: a share between 0 and 1")
    return v


def close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-6) -> bool:
    """Whether ``a`` is ``b`` within a relative tolerance ``rel`` (or an absolute one, ``abs_``, near 0)."""
    return abs(a - b) <= max(abs_, rel * abs(b))


def as_run(run):
    """A :class:`faderlib.runs.Run` from a run or its folder (a wrong value is the caller's mistake)."""
    from ..runs import Run, load_run

    if isinstance(run, Run):
        return run
    if isinstance(run, (str, os.PathLike)) or hasattr(run, "fader"):
        path = getattr(run, "fader", run)  # a CourseRuns: its Fader network
        try:
            return load_run(path)
        except Exception as e:
            raise CallError(f"cannot load the run in {path} ({_error(e)})") from None
    raise CallError(f"run={_short(run)} is neither a run (load_run(...)) nor a run folder")


def run_image(run, index) -> tuple[torch.Tensor, torch.Tensor]:
    """Test image number ``index`` of a run: x (1, 3, S, S) and y (1, n_attr)."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise CallError(f"index={index!r} must be the number of a test image")
    try:
        return run.images(1, start=index)
    except (IndexError, FileNotFoundError) as e:
        raise CallError(str(e)) from None


def attribute_index(config, attribute) -> int:
    """The position of ``attribute`` (a name, or already a position) among the run's attributes."""
    names = config.attribute_names
    if isinstance(attribute, int) and 0 <= attribute < len(names):
        return attribute
    if attribute in names:
        return names.index(attribute)
    raise CallError(f"attribute={attribute!r} is not an attribute of this run ({', '.join(names)})")


def split_labels(dataset, attribute) -> np.ndarray:
    """The class indices of ``attribute`` over a FaderDataset's split."""
    try:
        table = dataset.prepared.attributes
        rows = dataset.rows
    except AttributeError:
        raise CallError(f"dataset={_short(dataset)} is not a FaderDataset (e.g. train = FaderDataset(data, "
                        "'train', ATTRIBUTES))") from None
    if attribute not in table.columns:
        raise CallError(f"attribute={attribute!r} is not a column of the data set's attribute table")
    return table[attribute].to_numpy(np.int64)[rows]


def binary_config(n: int):
    """A small ModelConfig with ``n`` binary attributes, for the checks' own inputs."""
    from ..config import ModelConfig

    return ModelConfig.from_preset("official", 32, [f"A{i}" for i in range(n)])


# ----------------------------------------------------------------------------- the calls in a cell
#: The name of a check: ``check_NN_...``, NN the notebook.
CHECK_NAME = re.compile(r"^check_\d\d_\w+$")


def without_magics(source: str) -> str:
    """A cell's source without its IPython magics (lines starting with ``%`` or ``!``), for :mod:`ast`."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def checks_called(source: str) -> list[str]:
    """The checks a cell's code calls (``check_NN_...`` names, called by name or as an attribute), in
    the order they appear; its IPython magics left out. Raises SyntaxError for code that is not Python."""
    calls = []
    for node in ast.walk(ast.parse(without_magics(source))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if CHECK_NAME.match(name):
                calls.append((node.lineno, node.col_offset, name))
    return [name for *_, name in sorted(calls)]
