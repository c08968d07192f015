"""The checks of notebook 03, training: the lambda_E schedule, the two steps of the algorithm written
by hand (the discriminator's, the autoencoder's), a training iteration whose bug is to be found, and
what a slider changes in a trained run's decodings (exercises 3.1 to 3.5).

The steps are written as statements on a practice state, :func:`step_practice`: small networks E, D
and P, their optimisers and batches, built from a seed of the exercise's own, as a run a few
iterations in leaves them. The student's cell changes that state in place; its check builds the same
state again, takes the library's step on it (:func:`faderlib.train.discriminator_update`,
:func:`faderlib.train.autoencoder_update`: what :class:`~faderlib.train.Trainer` runs), and compares
the networks: parameters, BatchNorm statistics and, where the step must not touch them, gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .checking import (CallError, Failed, Unanswered, as_number, as_run, attribute_index, call_answer, close, exercise,
                       require_answers)

@exercise("3.1", "the lambda_E schedule", "check_03_lambda(my_lambda)", seed=301)
def check_03_lambda(my_lambda):
    """Exercise 3.1: ``my_lambda(step, lambda_max, ramp)``: lambda_E at autoencoder step ``step``
    (0-based) of a linear ramp from 0 to ``lambda_max`` over ``ramp`` steps (ramp > 0), then constant:
    as :func:`faderlib.losses.lambda_e`."""
    from ..losses import lambda_e
    from ..train import RECIPES

    course = RECIPES["course"]
    rng = np.random.default_rng(301)
    cases = [(s, course["lambda_e"], course["lambda_ramp"]) for s in (0, 1, 500, 999, 1000, 1001, 4000)]
    cases += [(int(rng.integers(0, 900_000)), 1e-4, 500_000) for _ in range(3)] + [(0, 1e-4, 500_000),
                                                                               (700_000, 1e-4, 500_000)]
    lam_max, ramp = float(rng.uniform(0.01, 1)), int(rng.integers(10, 100))
    cases += [(s, lam_max, ramp) for s in (0, ramp // 2, ramp - 1, ramp, 3 * ramp)]
    for step, lam, ramp_steps in cases:
        expected = lambda_e(step, lam, ramp_steps)
        found = as_number(call_answer(my_lambda, step, lam, ramp_steps), "lambda_E")
        if not close(found, expected, rel=1e-6, abs_=1e-12):
            if step >= ramp_steps and found > lam:
                hint = "after the ramp lambda_E stays at lambda_max"
            elif close(found, lam * min(step + 1, ramp_steps) / ramp_steps, rel=1e-6, abs_=1e-12):
                hint = "steps count from 0: lambda_E is 0 at step 0"
            else:
                hint = "lambda_E grows linearly, from 0 at step 0 to lambda_max at step ramp"
            raise Failed(f"{found:.6g} at step {step:,} (lambda_max {lam:g}, ramp {ramp_steps:,})",
                         f"{expected:.6g}", hint)
    return (f"right on {len(cases)} steps of 3 schedules: the course's reaches {course['lambda_e']:g} at step "
            f"{course['lambda_ramp']:,}.")


# ----------------------------------------------------------------------------- the practice state of 3.2 to 3.4
#: The seed of each step exercise's practice state.
STEP_SEEDS = {"3.2": 3020, "3.3": 3030, "3.4": 3040}

#: The practice's lambda_E schedule: lambda_E at its step is 0.3 (strong enough for the adversarial
#: term to weigh in one step; the course's recipe reaches 0.02).
PRACTICE_SCHEDULE = {"step": 600, "lambda_e": 0.5, "lambda_ramp": 1000}

#: The practice's gradient clipping: below the norms its small networks' gradients have (about 0.4
#: to 3), so that clipping changes the step (the recipes clip at 5, more than these gradients reach).
PRACTICE_CLIP = 0.2


@dataclass(eq=False)
class StepPractice:
    """What a step exercise starts from (:func:`step_practice`): the networks of a Fader network at
    32 px, E and D (``ae``, an :class:`~faderlib.models.AutoEncoder`) and P (``dis``), their Adam
    optimisers (``opt_ae`` over E and D, ``opt_dis`` over P), ``config`` (their ModelConfig), two
    batches of 8 images in [-1, 1] with their attributes (``x``, ``y``; ``x2``, ``y2``), the step
    ``step`` of a lambda_E schedule (``lambda_e`` after a ramp of ``lambda_ramp`` steps) and the
    norm gradients are clipped at, ``clip_grad_norm`` (:data:`PRACTICE_CLIP`). As a run a few
    iterations in leaves them: Adam has its moments, BatchNorm its statistics, and the parameters
    still hold the gradients of their last backward pass."""

    exercise: str
    config: object
    ae: nn.Module
    dis: nn.Module
    opt_ae: torch.optim.Optimizer
    opt_dis: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor
    x2: torch.Tensor
    y2: torch.Tensor
    step: int
    lambda_e: float
    lambda_ramp: int
    clip_grad_norm: float = PRACTICE_CLIP

    def __repr__(self) -> str:
        return (f"StepPractice(exercise {self.exercise}: E, D and P at {self.config.image_size} px for "
                f"{', '.join(self.config.attribute_names)}; batches x, y and x2, y2 of {len(self.x)} images; "
                f"step {self.step} of a lambda_E schedule to {self.lambda_e:g} over {self.lambda_ramp} steps)")


def practice_config():
    """The small networks of the practice states: 32 px, three binary attributes, P without dropout
    (so that a step draws no random number and two takes of it can be compared)."""
    from ..config import ModelConfig

    return ModelConfig.from_preset("paper", 32, ["Smiling", "Eyeglasses", "Male"], init_fm=8, max_fm=64, hid_dim=64,
                                   lat_dis_dropout=0.0)


def step_practice(exercise: str = "3.2") -> StepPractice:
    """A fresh practice state for exercise ``exercise`` ("3.2", "3.3" or "3.4"), the same at every call
    (built from the exercise's seed; the random generators are left as they were). For 3.2 and 3.4 it is
    the state at the end of an iteration (an autoencoder step was the last); for 3.3, right after a
    discriminator step: the autoencoder's step is next. See :class:`StepPractice`."""
    from ..models import AutoEncoder, LatentDiscriminator
    from ..train import autoencoder_update, discriminator_update

    if exercise not in STEP_SEEDS:
        raise ValueError(f"step_practice({exercise!r}): there is a practice state for the exercises "
                         f"{', '.join(STEP_SEEDS)}")
    seed = STEP_SEEDS[exercise]
    config = practice_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae, dis = AutoEncoder(config), LatentDiscriminator(config)
        opt_ae = torch.optim.Adam(ae.parameters(), lr=5e-4, betas=(0.5, 0.999))
        opt_dis = torch.optim.Adam(dis.parameters(), lr=5e-4, betas=(0.5, 0.999))
        g = torch.Generator().manual_seed(seed)

        def batch():
            x = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
            y = torch.randint(0, 2, (8, 3), generator=g)
            y[:2] = torch.tensor([[0, 0, 0], [1, 1, 1]])  # both values of every attribute
            return x, y

        for _ in range(2):  # two iterations of training: Adam's moments, BatchNorm's statistics, gradients left
            discriminator_update(ae, dis, opt_dis, *batch(), config, PRACTICE_CLIP)
            autoencoder_update(ae, dis, opt_ae, *batch(), config, 0.05, PRACTICE_CLIP)
        if exercise == "3.3":  # the discriminator's step of the iteration was taken: the autoencoder's is next
            discriminator_update(ae, dis, opt_dis, *batch(), config, PRACTICE_CLIP)
        x, y = batch()
        x2, y2 = batch()
    return StepPractice(exercise, config, ae, dis, opt_ae, opt_dis, x, y, x2, y2, **PRACTICE_SCHEDULE)


def practice_lambda(state: StepPractice) -> float:
    """lambda_E at the practice's step (:func:`faderlib.losses.lambda_e`)."""
    from ..losses import lambda_e

    return lambda_e(state.step, state.lambda_e, state.lambda_ramp)


def as_practice(state, number: str) -> StepPractice:
    """The practice state a step check was given, refused when it is not exercise ``number``'s."""
    if not isinstance(state, StepPractice):
        raise CallError(f"state is {type(state).__name__}, not a practice state: make it with "
                        f"state = step_practice({number!r}) at the top of the cell")
    if state.exercise != number:
        raise CallError(f"this practice state was made for exercise {state.exercise}: make exercise {number}'s "
                        f"with step_practice({number!r})")
    return state


# ----------------------------------------------------------------------------- comparing two states
def _networks(state: StepPractice) -> dict[str, nn.Module]:
    return {"E": state.ae.encoder, "D": state.ae.decoder, "P": state.dis}


def _tensors(module: nn.Module, what: str) -> list[torch.Tensor | None]:
    if what == "parameters":
        return [p.detach() for p in module.parameters()]
    if what == "buffers":
        return [b.detach().double() for b in module.buffers()]
    return [None if p.grad is None else p.grad.detach() for p in module.parameters()]


def _gap(a: list, b: list) -> float:
    """The largest difference between two lists of tensors (a missing gradient counts as zeros)."""
    worst = 0.0
    for s, t in zip(a, b):
        if s is None and t is None:
            continue
        s = torch.zeros_like(t) if s is None else s
        t = torch.zeros_like(s) if t is None else t
        worst = max(worst, float((s.double() - t.double()).abs().max()) if s.numel() else 0.0)
    return worst


@dataclass
class _Comparison:
    """How far the student's state is from where it started and from the library's (per network)."""

    moved: dict[str, float]       # parameters: student against the start
    ref_moved: dict[str, float]   # parameters: the library's step against the start
    off: dict[str, float]         # parameters: student against the library's step
    stats: dict[str, float]       # BatchNorm statistics: student against the start
    ref_stats: dict[str, float]   # BatchNorm statistics: the library's step against the start
    stats_off: dict[str, float]   # BatchNorm statistics: student against the library's step

    def right(self, name: str) -> bool:
        return self.off[name] <= 1e-3 * self.ref_moved[name] + 1e-9 and self.stats_off[name] <= 1e-5

    def unchanged(self) -> bool:
        return not any(self.moved.values()) and not any(self.stats.values())


def _compare(student: StepPractice, start: StepPractice, ref: StepPractice) -> _Comparison:
    nets = {k: _networks(s) for k, s in (("student", student), ("start", start), ("ref", ref))}

    def table(a, b, what):
        return {name: _gap(_tensors(nets[a][name], what), _tensors(nets[b][name], what)) for name in nets["start"]}

    return _Comparison(table("student", "start", "parameters"), table("ref", "start", "parameters"),
                       table("student", "ref", "parameters"), table("student", "start", "buffers"),
                       table("ref", "start", "buffers"), table("student", "ref", "buffers"))


def _matches(student: StepPractice, variant: StepPractice, names) -> bool:
    """Whether the student's networks ``names`` are where the mistaken step ``variant`` left them."""
    start = step_practice(student.exercise)
    c = _compare(student, start, variant)
    return all(c.right(name) for name in names)


def _describe_off(c: _Comparison, name: str, what: str) -> str:
    return (f"{what}'s parameters end up to {c.off[name]:.2g} away from where the library's step puts them "
            f"(it moves them by up to {c.ref_moved[name]:.2g})")


NETWORK_NAMES = {"E": "the encoder E", "D": "the decoder D", "P": "the discriminator P"}


# ----------------------------------------------------------------------------- mistaken steps, for the hints
def _discriminator_step_with(state: StepPractice, *, flipped=False, zero_grad=True, dis_train=True, clip=True,
                             ae_train=False) -> StepPractice:
    """The discriminator's step written with one mistake (each keyword one), on ``state`` (changed)."""
    from ..losses import discriminator_loss

    state.ae.train(ae_train)
    state.dis.train(dis_train)
    with torch.no_grad():
        z = state.ae.encode(state.x)
    loss = discriminator_loss(state.dis(z), 1 - state.y if flipped else state.y, state.config)
    return _step_with(state, loss, state.dis, state.opt_dis, zero_grad, clip)


def _autoencoder_step_with(state: StepPractice, lam: float, *, sign=1.0, target="flip", zero_grad=True,
                           ae_train=True, clip=True) -> StepPractice:
    """The autoencoder's step written with one mistake, on ``state`` (changed): ``sign`` -1 subtracts
    the adversarial term, ``target`` "true" scores P against the true y."""
    from ..losses import adversarial_loss, discriminator_loss, reconstruction_loss

    state.ae.train(ae_train)
    state.dis.eval()
    z, x_hat = state.ae(state.x, state.y)
    logits = state.dis(z)
    adv = (adversarial_loss(logits, state.y, state.config) if target == "flip" else
           discriminator_loss(logits, state.y, state.config))
    loss = reconstruction_loss(x_hat, state.x) + sign * lam * adv
    return _step_with(state, loss, state.ae, state.opt_ae, zero_grad, clip)


def _step_with(state: StepPractice, loss, net: nn.Module, opt, zero_grad: bool, clip: bool) -> StepPractice:
    """The end both steps share: clear ``opt``'s gradients (unless the mistake is to forget it),
    backward, clip ``net``'s gradient norm (unless forgotten), step."""
    if zero_grad:
        opt.zero_grad()
    loss.backward()
    if clip:
        nn.utils.clip_grad_norm_(net.parameters(), state.clip_grad_norm)
    opt.step()
    return state


def given_iteration(state: StepPractice) -> StepPractice:
    """What the code exercise 3.4 gives does to ``state`` (changed): one iteration, its bug included."""
    return _iteration_with(state)


def _iteration_with(state: StepPractice, z_detached: bool = False, z2_detached: bool = False) -> StepPractice:
    """The iteration of exercise 3.4, on ``state`` (changed), with z (the discriminator's) or z2 (the
    autoencoder's) detached or not: neither is the given code; z alone, a fix; z2, a wrong fix."""
    from ..losses import adversarial_loss, discriminator_loss, reconstruction_loss

    lam = practice_lambda(state)
    ae, dis = state.ae, state.dis
    state.opt_dis.zero_grad()
    state.opt_ae.zero_grad()
    ae.eval()
    dis.train()
    z = ae.encode(state.x)
    discriminator_loss(dis(z.detach() if z_detached else z), state.y, state.config).backward()
    nn.utils.clip_grad_norm_(dis.parameters(), state.clip_grad_norm)
    state.opt_dis.step()
    ae.train()
    dis.eval()
    z2, x_hat2 = ae(state.x2, state.y2)
    adv = adversarial_loss(dis(z2.detach() if z2_detached else z2), state.y2, state.config)
    (reconstruction_loss(x_hat2, state.x2) + lam * adv).backward()
    nn.utils.clip_grad_norm_(ae.parameters(), state.clip_grad_norm)
    state.opt_ae.step()
    return state


def reference_step(exercise_number: str) -> StepPractice:
    """The practice state of a step exercise after the library's own step(s): for 3.2,
    :func:`faderlib.train.discriminator_update` on (x, y); for 3.3, :func:`faderlib.train.autoencoder_update`
    on (x, y) with lambda_E at the practice's step; for 3.4, the first on (x, y), then the second on (x2, y2)."""
    from ..train import autoencoder_update, discriminator_update

    ref = step_practice(exercise_number)
    if exercise_number in ("3.2", "3.4"):
        discriminator_update(ref.ae, ref.dis, ref.opt_dis, ref.x, ref.y, ref.config, ref.clip_grad_norm)
    if exercise_number == "3.3":
        autoencoder_update(ref.ae, ref.dis, ref.opt_ae, ref.x, ref.y, ref.config, practice_lambda(ref),
                           ref.clip_grad_norm)
    if exercise_number == "3.4":
        autoencoder_update(ref.ae, ref.dis, ref.opt_ae, ref.x2, ref.y2, ref.config, practice_lambda(ref),
                           ref.clip_grad_norm)
    return ref


def _untouched(number: str) -> None:
    raise Unanswered(f"the networks of the practice state are as step_practice({number!r}) made them")


# ----------------------------------------------------------------------------- 3.2, 3.3, 3.4
@exercise("3.2", "the discriminator's step", "check_03_discriminator_step(state)", seed=302)
def check_03_discriminator_step(state):
    """Exercise 3.2: ``state`` (:func:`step_practice` ``("3.2")``) after the student's discriminator step on
    ``state.x``, ``state.y``: P's parameters where :func:`faderlib.train.discriminator_update` puts them, E
    and D unchanged (parameters and BatchNorm statistics), and no gradient sent to E."""
    require_answers(state=state)
    state = as_practice(state, "3.2")
    start, ref = step_practice("3.2"), reference_step("3.2")
    c = _compare(state, start, ref)
    if c.unchanged():
        _untouched("3.2")
    if c.moved["E"] or c.moved["D"]:
        stepped = " and ".join(n for n in "ED" if c.moved[n])
        hint = ("you stepped the wrong optimiser: opt_ae holds E and D, opt_dis holds P" if not c.moved["P"] else
                "only state.opt_dis steps here: did opt_ae.step() run too?")
        raise Failed(f"{stepped}'s parameters moved", "E and D as they were: this step trains P alone", hint)
    if c.stats["E"]:
        raise Failed("the encoder's BatchNorm statistics changed", "E exactly as it was",
                     "encode in eval mode (state.ae.eval()): this step reads E, it does not train it")
    if c.stats["D"]:
        raise Failed("the decoder's BatchNorm statistics changed", "D exactly as it was",
                     "the discriminator's step has no use for D: encode with state.ae.encode(x), in eval mode")
    if not c.moved["P"]:
        raise Failed("P's parameters did not move", "P after one step of state.opt_dis",
                     "after loss.backward(), state.opt_dis.step() applies the gradient")
    if not c.right("P"):
        mistakes = [({"flipped": True}, "P learns the TRUE attributes y; the flipped 1 - y is the encoder's target, "
                                        "in the autoencoder's step"),
                     ({"zero_grad": False}, "the parameters still hold the gradients of the last backward pass: "
                                            "state.opt_dis.zero_grad() before loss.backward()"),
                     ({"dis_train": False}, "P learns in train mode: state.dis.train()"),
                     ({"clip": False}, "clip P's gradient norm at state.clip_grad_norm before the step "
                                       "(torch.nn.utils.clip_grad_norm_)")]
        for kw, hint in mistakes:
            if _matches(state, _discriminator_step_with(step_practice("3.2"), **kw), ["P"]):
                break
        else:
            hint = ("z = E(x) with E in eval mode and without gradient; P in train mode; the loss (1) against the "
                    "true y; zero the gradients, backward, clip at state.clip_grad_norm, then state.opt_dis.step()")
        raise Failed(_describe_off(c, "P", "P"), "P after one step of loss (1) on state.x, state.y, as "
                     "faderlib.train.discriminator_update takes it", hint)
    before = _tensors(start.ae.encoder, "gradients")
    after = _tensors(state.ae.encoder, "gradients")
    if _gap(after, before) and any(g is not None and bool(g.any()) for g in after):
        raise Failed("E's gradients changed: the loss of P reached the encoder",
                     "no gradient to E: this step must not teach the encoder anything",
                     "compute z without gradient: inside torch.no_grad(), or z = state.ae.encode(state.x).detach()")
    return ("your step moves P as the Trainer's does (faderlib.train.discriminator_update), and leaves E and D "
            "untouched.")


@exercise("3.3", "the autoencoder's step", "check_03_autoencoder_step(state)", seed=303)
def check_03_autoencoder_step(state):
    """Exercise 3.3: ``state`` (:func:`step_practice` ``("3.3")``) after the student's autoencoder step on
    ``state.x``, ``state.y`` with lambda_E at ``state.step`` of the practice's schedule: E's and D's
    parameters and statistics where :func:`faderlib.train.autoencoder_update` puts them, P unchanged."""
    from ..losses import lambda_e

    require_answers(state=state)
    state = as_practice(state, "3.3")
    start, ref = step_practice("3.3"), reference_step("3.3")
    c = _compare(state, start, ref)
    if c.unchanged():
        _untouched("3.3")
    if c.moved["P"]:
        ed_moved = c.moved["E"] or c.moved["D"]
        hint = ("only state.opt_ae steps here: did opt_dis.step() run too?" if ed_moved else
                "you stepped the wrong optimiser: opt_dis holds P, opt_ae holds E and D")
        raise Failed("P's parameters moved", "P as it was: this step trains E and D", hint)
    if c.stats["P"]:
        raise Failed("P's BatchNorm statistics changed", "P exactly as it was",
                     "P judges z in eval mode here (state.dis.eval()): this step does not train it")
    if not (c.moved["E"] or c.moved["D"]):
        raise Failed("E and D did not move", "E and D after one step of state.opt_ae",
                     "after loss.backward(), state.opt_ae.step() applies the gradient")
    if c.right("E") and c.right("D"):
        return ("your step moves E and D as the Trainer's does (faderlib.train.autoencoder_update), and leaves P "
                "untouched.")
    lam = practice_lambda(state)
    mistakes = [({"sign": -1.0}, "the sign of the adversarial term, the classic failure: the encoder minimises P's "
                                 "cross-entropy against the flipped target, so the term is added; subtracted, it "
                                 "teaches E to make y easier for P to read"),
                ({"target": "true"}, "the adversarial term scores P against the flipped attributes 1 - y "
                                     "(adversarial_loss), not the true y: this one helps P read y"),
                ({"sign": -1.0, "target": "true"}, "minus P's loss on the true y is gradient reversal, not the "
                                                   "paper's term: the cross-entropy against the flipped 1 - y"),
                ({"lam": 0.0}, "the adversarial term did not reach E: is lambda_E 0, or z detached? z must keep "
                               "its graph here: this is the step where E learns to fool P"),
                ({"lam": state.lambda_e}, "lambda_E at state.step of the ramp (exercise 3.1), not its final value "
                                          "state.lambda_e"),
                ({"lam": lambda_e(state.step + 1, state.lambda_e, state.lambda_ramp)},
                 "lambda_E at state.step itself (steps count from 0)"),
                ({"zero_grad": False}, "the parameters still hold the gradients of the last backward pass: "
                                       "state.opt_ae.zero_grad() before loss.backward()"),
                ({"ae_train": False}, "E and D learn in train mode: state.ae.train()"),
                ({"clip": False}, "clip the gradient norm of E and D at state.clip_grad_norm before the step")]
    for kw, hint in mistakes:
        kw = dict(kw)
        if _matches(state, _autoencoder_step_with(step_practice("3.3"), kw.pop("lam", lam), **kw), ["E", "D"]):
            break
    else:
        hint = ("E and D in train mode, P in eval mode; L = MSE(D(E(x), y), x) + lambda_E * the cross-entropy of "
                "P(E(x)) against 1 - y, with lambda_E at state.step; zero the gradients, backward, clip, "
                "state.opt_ae.step()")
    worst = max("ED", key=lambda n: c.off[n] / max(c.ref_moved[n], 1e-12))
    raise Failed(_describe_off(c, worst, NETWORK_NAMES[worst].split()[-1]), "E and D after one step of loss (3) "
                 "on state.x, state.y, as faderlib.train.autoencoder_update takes it", hint)


@exercise("3.4", "find the bug", "check_03_training_bug(state)", seed=304)
def check_03_training_bug(state):
    """Exercise 3.4: ``state`` (:func:`step_practice` ``("3.4")``) after the student's fixed version of the
    iteration the notebook gives (:func:`given_iteration`): E, D and P where the library's two steps put
    them (:func:`reference_step`). The given code unchanged is "not answered yet"."""
    require_answers(state=state)
    state = as_practice(state, "3.4")
    start, ref = step_practice("3.4"), reference_step("3.4")
    c = _compare(state, start, ref)
    if c.unchanged():
        _untouched("3.4")
    if all(c.right(n) for n in "EDP"):
        return ("fixed: the iteration now moves E, D and P as the Trainer's two steps do. The bug cost nothing "
                "visible in the losses, and yet taught E to help P.")
    if _matches(state, given_iteration(step_practice("3.4")), "EDP"):
        raise Unanswered("the networks are where the given code leaves them: the bug is still there. Which "
                         "networks does each backward pass reach, and which gradients are still there when "
                         "opt_ae steps?")
    if not c.right("P"):
        raise Failed(_describe_off(c, "P", "P"), "P after the discriminator's step, as the given code takes it",
                     "the discriminator's update itself was right: keep its loss, its backward and its step")
    wrong_fixes = (_iteration_with(step_practice("3.4"), z_detached, True) for z_detached in (False, True))
    if any(_matches(state, wrong, "EDP") for wrong in wrong_fixes):
        hint = ("the autoencoder's step was right as given: z2 keeps its graph there, so that E learns to fool P; "
                "the bug is elsewhere")
    else:
        hint = "change as little as you can: the bug is one line, in what reaches E and when"
    worst = max("ED", key=lambda n: c.off[n] / max(c.ref_moved[n], 1e-12))
    raise Failed(_describe_off(c, worst, worst), "E and D after the autoencoder's step, as the library takes it",
                 hint)


def _slider_effect(run, j: int, n: int) -> float:
    from ..models import code_for

    x, y = run.images(n)
    ae = run.autoencoder.eval()
    with torch.no_grad():
        z = ae.encode(x)
        low = ae.decode(z, code_for(run.model_config, y, {j: 0.0}))
        high = ae.decode(z, code_for(run.model_config, y, {j: 1.0}))
    return float((high - low).abs().mean())


@exercise("3.5", "what a slider changes", "check_03_slider_effect(runs.ablation, effect, ATTRIBUTES[0])", seed=305)
def check_03_slider_effect(run, effect, attribute, n: int = 16):
    """Exercise 3.5: ``effect``, the mean absolute change of the pixels (images in [-1, 1], over the
    channels and the first ``n`` test images) when the run's decoder gets ``attribute`` at 0, then
    at 1, the other attributes at each image's values, z = E(x) the same."""
    require_answers(effect=effect)
    run = as_run(run)
    j = attribute_index(run.model_config, attribute)
    if not isinstance(n, int) or n < 1:
        raise CallError(f"n={n!r} must be a positive number of images")
    expected = _slider_effect(run, j, n)
    found = as_number(effect, "effect")
    if not close(found, expected, rel=0.01, abs_=1e-5):
        hint = ("a mean over the pixels, not a sum" if close(found, expected * n * run.model_config.image_size ** 2
                                                               * 3, rel=0.05) else
                "a change either way counts: take the absolute value before the mean" if abs(found) < 0.5 * expected
                else "decode the same z twice, with the attribute at 0 and at 1, and compare the two decodings")
        raise Failed(f"effect = {found:.5f}", f"the mean of |D(z, y with {run.model_config.attribute_names[j]} = 1)"
                     f" - D(z, y with it = 0)| over the first {n} test images", hint)
    return (f"{run.model_config.attribute_names[j]} from 0 to 1 moves the pixels of {run.run_dir.name} by "
            f"{found:.4f} on average (images in [-1, 1]).")
