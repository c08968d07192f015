"""The exercises that check themselves (faderlib/exercises/) and the teacher's notebooks
(tools/solutions.py, notebooks/solutions/).

For every check: a right answer passes, plausible wrong answers fail (each named by the mistake it
makes), and every kind of placeholder prints "not answered yet" without raising. The exercises on the
algorithm (2.2, 3.2 to 3.4) are answered here as a student's cell would, on the practice states, and
compared with the library's own steps; the given buggy iteration of 3.4 is "not answered yet", and
the number evaluate() reports does not pass the probe of 5.1. Then the tool: its ``--check`` passes on
the committed files and fails on each kind of drift, and a solution notebook differs from its course
notebook only in its exercise cells (checked here independently of the tool). Last, the solution
notebooks run top to bottom at the tiny size from notebooks/solutions/, every check printing PASS (the
course notebooks, run by test_notebooks.py, print "not answered yet").
"""

from __future__ import annotations

import ast
import importlib.util
import random
import shutil
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from faderlib import exercises
from faderlib.exercises import CHECKS, FAIL, PASS, TODO
from faderlib.exercises.checking import checks_called

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
SOURCES = ROOT / "tools" / "exercises"
COURSE = ["01_data_and_attributes", "02_networks_and_losses", "03_training", "04_interpolation_and_sliders",
          "05_evaluation"]

_spec = importlib.util.spec_from_file_location("fader_solutions_tool", ROOT / "tools" / "solutions.py")
tool = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = tool  # dataclasses look their module up
_spec.loader.exec_module(tool)


# ------------------------------------------------------------------------------------- the answers
@pytest.fixture(scope="module")
def ctx(tiny_run_dir, course_dir):
    """What the data-bound checks need: a training split, its rarest attribute, two runs."""
    from faderlib.analysis import rarest_attribute
    from faderlib.data import FaderDataset
    from faderlib.runs import load_run

    run = load_run(tiny_run_dir)
    names = run.model_config.attribute_names
    train = run.dataset("train")
    train = FaderDataset(train.prepared, "train", names)
    rare = rarest_attribute(train.prepared, names)
    labels = train.y[:, names.index(rare)].numpy()
    return {"run": run, "other_run": course_dir.fader, "train": train, "rare": rare, "labels": labels, "names": names,
            "run_dir": tiny_run_dir}


@pytest.fixture(scope="module")
def evaluated(tiny_run_dir):
    """What evaluate() reports for the tiny run (its latent probe is fitted on the training split)."""
    from faderlib.evaluate import evaluate

    return evaluate(tiny_run_dir)


def _decode_pair(run, j, n, alphas=(0.0, 1.0)):
    """Written here as a student would: decode n test images twice from one z (not the check's code)."""
    from faderlib.models import attribute_code

    x, y = run.images(n)
    with torch.no_grad():
        z = run.autoencoder.encode(x)
        outs = []
        for alpha in alphas:
            code = attribute_code(y, run.model_config)
            code[:, 2 * j], code[:, 2 * j + 1] = 1 - alpha, alpha
            outs.append(run.autoencoder.decode(z, code))
        reconstruction = run.autoencoder.decode(z, y)
    return x, y, outs[0], outs[1], reconstruction


def _flip_k(y, k):
    return (y + torch.randint(1, k, y.shape)) % k


def _cross_entropy(logits, y):
    return sum(-torch.log_softmax(logits[:, 2 * j:2 * j + 2], 1).gather(1, y[:, j:j + 1]).mean()
               for j in range(y.shape[1]))


def _balanced(predicted, labels):
    return float(np.mean([float((predicted[labels == c] == c).float().mean()) for c in labels.unique()]))


def _probe(run, attribute, n_fit=2000, split="valid", score_on_fit=False, class_weights=True):
    """A logistic regression of `attribute` on the flattened codes of `split`, by hand."""
    from faderlib.evaluate import encode_split

    j = run.model_config.attribute_names.index(attribute)
    z_fit, y_fit = encode_split(run.autoencoder, run.dataset(split), n_fit)
    z_test, y_test = encode_split(run.autoencoder, run.dataset("test"), 1000)
    mean, std = z_fit.mean(0), z_fit.std(0).clamp(min=1e-6)
    a, b = (z_fit - mean) / std, (z_test - mean) / std
    labels = y_fit[:, j]
    counts = torch.bincount(labels, minlength=2).float()
    weight = counts.sum() / (2 * counts.clamp(min=1)) if class_weights else None
    probe = torch.nn.Linear(a.shape[1], 2)
    torch.nn.init.zeros_(probe.weight)
    torch.nn.init.zeros_(probe.bias)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(probe(a), labels, weight=weight).backward()
        opt.step()
    with torch.no_grad():
        if score_on_fit:
            return _balanced(probe(a).argmax(1), labels)
        return _balanced(probe(b).argmax(1), y_test[:, j])


def _halfway(run, j, how="right"):
    """Written as a student would: test image 0 decoded at alpha 0, 0.5 and 1 from one z."""
    from faderlib.models import code_for

    x, y = run.images(1)
    with torch.no_grad():
        z = run.autoencoder.encode(x)
        low, middle, high = (run.autoencoder.decode(z, code_for(run.model_config, y, {j: a})) for a in (0, 0.5, 1))
        reconstruction = run.autoencoder.decode(z, y)
    if how == "right":
        return float((middle - (low + high) / 2).abs().mean())
    if how == "signed":
        return float((middle - (low + high) / 2).mean())
    if how == "ends":
        return float((high - low).abs().mean())
    return float((middle - reconstruction).abs().mean())


def _decode(state, order="h first", pair="[1 - a, a]"):
    """Exercise 2.2 as a student's cell writes it: the practice decoder, layer by layer."""
    a = state.alpha
    code = torch.stack([1 - a, a] if pair == "[1 - a, a]" else [a, 1 - a], dim=2).flatten(1)
    if pair == "blocks":
        code = torch.cat([1 - a, a], dim=1)
    h = state.z
    with torch.no_grad():
        for layer in state.layers:
            tiled = code[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
            h = layer(torch.cat([h, tiled] if order == "h first" else [tiled, h], dim=1))
    return state, h


def _dis_step(mistake=None):
    """Exercise 3.2 as a student's cell writes it, on a fresh practice state, with one mistake or none."""
    from faderlib.exercises import step_practice
    from faderlib.losses import discriminator_loss

    state = step_practice("3.2")
    state.ae.eval()
    state.dis.train()
    if mistake == "not detached":
        z = state.ae.encode(state.x)
    else:
        with torch.no_grad():
            z = state.ae.encode(state.x)
    y = 1 - state.y if mistake == "flipped targets" else state.y
    loss = discriminator_loss(state.dis(z), y, state.config)
    if mistake != "no zero_grad":
        state.opt_dis.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.dis.parameters(), state.clip_grad_norm)
    (state.opt_ae if mistake == "the wrong optimiser" else state.opt_dis).step()
    return (state,)


def _ae_step(mistake=None):
    """Exercise 3.3 as a student's cell writes it, on a fresh practice state, with one mistake or none."""
    from faderlib.exercises import step_practice
    from faderlib.losses import adversarial_loss, discriminator_loss, lambda_e, reconstruction_loss

    state = step_practice("3.3")
    lam = (state.lambda_e if mistake == "lambda_E without its ramp" else
           lambda_e(state.step, state.lambda_e, state.lambda_ramp))
    state.ae.train()
    state.dis.eval()
    z, x_hat = state.ae(state.x, state.y)
    logits = state.dis(z.detach() if mistake == "z detached" else z)
    adv = (discriminator_loss(logits, state.y, state.config) if mistake == "the true y" else
           adversarial_loss(logits, state.y, state.config))
    rec = ((x_hat - state.x) ** 2).mean()  # reconstruction_loss, written out
    loss = rec - lam * adv if mistake == "the sign error" else rec + lam * adv
    if mistake != "no zero_grad":
        state.opt_ae.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.ae.parameters(), state.clip_grad_norm)
    (state.opt_dis if mistake == "the wrong optimiser" else state.opt_ae).step()
    assert reconstruction_loss(x_hat, state.x).item() == pytest.approx(rec.item())
    return (state,)


def _iteration(fix=None):
    """Exercise 3.4's iteration as the notebook gives it (fix=None), or fixed one way or another."""
    from faderlib.exercises import step_practice
    from faderlib.losses import adversarial_loss, discriminator_loss, lambda_e, reconstruction_loss

    state = step_practice("3.4")
    ae, dis, opt_ae, opt_dis = state.ae, state.dis, state.opt_ae, state.opt_dis
    lam = lambda_e(state.step, state.lambda_e, state.lambda_ramp)
    opt_dis.zero_grad()
    if fix != "zero_grad moved":
        opt_ae.zero_grad()
    ae.eval()
    dis.train()
    if fix in ("no_grad", "both z detached"):
        with torch.no_grad():
            z = ae.encode(state.x)
    else:
        z = ae.encode(state.x)
    loss_dis = discriminator_loss(dis(z), state.y, state.config)
    loss_dis.backward()
    torch.nn.utils.clip_grad_norm_(dis.parameters(), state.clip_grad_norm)
    opt_dis.step()
    ae.train()
    dis.eval()
    z2, x_hat2 = ae(state.x2, state.y2)
    detached = fix in ("the wrong z detached", "both z detached")
    adv = adversarial_loss(dis(z2.detach() if detached else z2), state.y2, state.config)
    loss_ae = reconstruction_loss(x_hat2, state.x2) + lam * adv
    if fix == "zero_grad moved":
        opt_ae.zero_grad()
    if fix == "the wrong zero_grad":  # harmless, and no fix: still the bug
        opt_dis.zero_grad()
    loss_ae.backward()
    torch.nn.utils.clip_grad_norm_(ae.parameters(), state.clip_grad_norm)
    opt_ae.step()
    return (state,)


def _changed(run, j, how):
    x, _, low, high, reconstruction = _decode_pair(run, j, 1)
    diff = high - low
    if how == "right":
        return int((diff.abs().amax(1) > 0.1).sum())
    if how == "channel values":
        return int((diff.abs() > 0.1).sum())
    if how == "signed":
        return int((diff.amax(1) > 0.1).sum())
    return int(((high - x).abs().amax(1) > 0.1).sum())  # against the original image


def _effect(run_dir, j, how="right"):
    from faderlib.runs import load_run

    run = load_run(run_dir)
    x, _, low, high, reconstruction = _decode_pair(run, j, 16)
    if how == "right":
        return float((high - low).abs().mean())
    if how == "signed":
        return float((high - low).mean())
    return float((reconstruction - x).abs().mean())  # the reconstruction error, not the slider


def _raises(*_):
    raise NotImplementedError


#: For every check: (a right answer, {mistake: a wrong answer}), each as a function of ctx -> the check's
#: arguments, and the positions of the arguments that are answers (placeholders go there).
CASES = {
    "check_01_constant_guess": (
        lambda c: (c["train"], c["rare"], np.bincount(c["labels"]).max() / len(c["labels"]), 0.5),
        {"the rarer value's share": lambda c: (c["train"], c["rare"],
                                               np.bincount(c["labels"]).min() / len(c["labels"]), 0.5),
         "balanced = plain accuracy": lambda c: (c["train"], c["rare"], np.bincount(c["labels"]).max() / len(
             c["labels"]), np.bincount(c["labels"]).max() / len(c["labels"])),
         "a percentage": lambda c: (c["train"], c["rare"], 100 * np.bincount(c["labels"]).max() / len(c["labels"]),
                                    0.5)},
        (2, 3)),
    "check_01_balanced_weights": (
        lambda c: (lambda labels: 1.0 / (np.bincount(labels)[labels] * 2),),
        {"not normalised": lambda c: (lambda labels: 1.0 / np.bincount(labels)[labels],),
         "uniform": lambda c: (lambda labels: np.full(len(labels), 1 / len(labels)),),
         "proportional to the count": lambda c: (lambda labels: np.bincount(labels)[labels] / len(labels) ** 2,),
         "one weight per class": lambda c: (lambda labels: 1.0 / (np.bincount(labels) * 2),)},
        (0,)),
    "check_02_extra_attribute": (
        lambda c: (lambda cfg: 2 * 16 * int(_decoder_inputs(cfg)["output channels"].sum()),),
        {"one channel per attribute": lambda c: (lambda cfg: 16 * int(_decoder_inputs(cfg)["output channels"].sum()),),
         "only the first layer": lambda c: (lambda cfg: 2 * 16 * int(_decoder_inputs(cfg)["output channels"].iloc[0]),),
         "no 4x4 kernel": lambda c: (lambda cfg: 2 * int(_decoder_inputs(cfg)["output channels"].sum()),),
         "a hard-coded 256 px answer": lambda c: (lambda cfg: 31_840,)},
        (0,)),
    "check_02_decoder": (
        lambda c: _decode(exercises.decoder_practice()),
        {"pair swapped": lambda c: _decode(exercises.decoder_practice(), pair="[a, 1 - a]"),
         "blocks not interleaved": lambda c: _decode(exercises.decoder_practice(), pair="blocks"),
         "the code before h": lambda c: _decode(exercises.decoder_practice(), order="code first"),
         "z itself": lambda c: (exercises.decoder_practice(), exercises.decoder_practice().z),
         "a hard-coded decoding": lambda c: (exercises.decoder_practice(), torch.zeros(4, 3, 32, 32))},
        (1,)),
    "check_02_cross_entropy": (
        lambda c: (_cross_entropy,),
        {"averaged over attributes": lambda c: (lambda lg, y: _cross_entropy(lg, y) / y.shape[1],),
         "against 1 - y": lambda c: (lambda lg, y: _cross_entropy(lg, 1 - y),),
         "summed over the batch": lambda c: (lambda lg, y: _cross_entropy(lg, y) * y.shape[0],),
         "the log-probability, not its negative": lambda c: (lambda lg, y: -_cross_entropy(lg, y),)},
        (0,)),
    "check_02_flip_categorical": (
        lambda c: (_flip_k,),
        {"always the next value": lambda c: (lambda y, k: (y + 1) % k,),
         "any value, the true one too": lambda c: (lambda y, k: torch.randint(0, k, y.shape),),
         "the mirror value": lambda c: (lambda y, k: k - 1 - y,),
         "the binary flip": lambda c: (lambda y, k: 1 - y,),
         "biased towards the next value": lambda c: (
             lambda y, k: (y + 1 + (torch.rand(y.shape) < 0.3).long() * (k > 2)) % k,)},
        (0,)),
    "check_03_lambda": (
        lambda c: (lambda s, m, r: m * min(s, r) / r,),
        {"off by one": lambda c: (lambda s, m, r: m * min(s + 1, r) / r,),
         "never capped": lambda c: (lambda s, m, r: m * s / r,),
         "the course's schedule hard-coded": lambda c: (lambda s, m, r: 0.02 * min(s, 1000) / 1000,),
         "constant": lambda c: (lambda s, m, r: m,)},
        (0,)),
    "check_03_discriminator_step": (
        lambda c: _dis_step(),
        {m: (lambda m: lambda c: _dis_step(m))(m) for m in ("not detached", "flipped targets", "no zero_grad",
                                                              "the wrong optimiser")},
        (0,)),
    "check_03_autoencoder_step": (
        lambda c: _ae_step(),
        {m: (lambda m: lambda c: _ae_step(m))(m) for m in ("the sign error", "the true y", "z detached",
                                                             "lambda_E without its ramp", "no zero_grad",
                                                             "the wrong optimiser")},
        (0,)),
    "check_03_training_bug": (
        lambda c: _iteration("no_grad"),
        {m: (lambda m: lambda c: _iteration(m))(m) for m in ("the wrong z detached", "both z detached")},
        (0,)),
    "check_03_slider_effect": (
        lambda c: (c["other_run"], _effect(c["other_run"], 0), "Smiling"),
        {"signed mean": lambda c: (c["other_run"], _effect(c["other_run"], 0, "signed"), "Smiling"),
         "the reconstruction error": lambda c: (c["other_run"], _effect(c["other_run"], 0, "reconstruction"),
                                                "Smiling"),
         "another attribute's effect": lambda c: (c["other_run"], _effect(c["other_run"], 2), "Smiling")},
        (1,)),
    "check_04_halfway": (
        lambda c: (c["run"], _halfway(c["run"], 0), "Smiling"),
        {"signed mean": lambda c: (c["run"], _halfway(c["run"], 0, "signed"), "Smiling"),
         "the two ends' gap": lambda c: (c["run"], _halfway(c["run"], 0, "ends"), "Smiling"),
         "against the reconstruction": lambda c: (c["run"], _halfway(c["run"], 0, "reconstruction"), "Smiling"),
         "another attribute's gap": lambda c: (c["run"], _halfway(c["run"], 2), "Smiling")},
        (1,)),
    "check_04_changed_pixels": (
        lambda c: (c["run"], _changed(c["run"], 0, "right"), "Smiling"),
        {"channel values counted": lambda c: (c["run"], _changed(c["run"], 0, "channel values"), "Smiling"),
         "only changes upwards": lambda c: (c["run"], _changed(c["run"], 0, "signed"), "Smiling"),
         "against the original": lambda c: (c["run"], _changed(c["run"], 0, "original"), "Smiling")},
        (1,)),
    "check_05_swap_accuracy": (
        lambda c: (lambda read, original, t: float((read[original != t] == t).float().mean()),),
        {"images already at the target counted": lambda c: (lambda read, original, t: float((read == t).float()
                                                                                              .mean()),),
         "read == original": lambda c: (lambda read, original, t: float((read[original != t] == original[
             original != t]).float().mean()),)},
        (0,)),
    "check_05_probe": (
        lambda c: (c["run"], "Smiling", _probe(c["run"], "Smiling")),
        {"scored on the codes it was fitted on": lambda c: (c["run"], "Smiling",
                                                            _probe(c["run"], "Smiling", score_on_fit=True)),
         "fitted on the training split": lambda c: (c["run"], "Smiling", _probe(c["run"], "Smiling", split="train"))},
        (2,)),
}


def _decoder_inputs(config):
    from faderlib.summary import decoder_inputs

    return decoder_inputs(config)


def test_every_check_is_tested_here():
    assert set(CASES) == set(CHECKS)
    assert all(name.startswith("check_0") for name in CHECKS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_right_answer_passes(name, ctx, capsys):
    right, _, _ = CASES[name]
    result = CHECKS[name](*right(ctx))
    out = capsys.readouterr().out
    assert result.status == PASS and bool(result), out
    assert out.startswith(f"PASS  exercise {result.exercise} ") and out.count("\n") == 1


@pytest.mark.parametrize("name,mistake", [(n, m) for n in sorted(CASES) for m in CASES[n][1]])
def test_a_plausible_wrong_answer_fails(name, mistake, ctx, capsys):
    _, wrong, _ = CASES[name]
    result = CHECKS[name](*wrong[mistake](ctx))
    out = capsys.readouterr().out
    assert result.status == FAIL and not result, f"{mistake!r} was not caught:\n{out}"
    assert out.startswith(f"FAIL  exercise {result.exercise}") and "found:" in out and "Traceback" not in out


def _placeholders(name, ctx):
    """Every kind of unanswered exercise, in the answer's place(s)."""
    right, _, slots = CASES[name]
    args = right(ctx)
    values = [..., None]
    if all(callable(args[i]) and not isinstance(args[i], torch.nn.Module) for i in slots):
        values += [lambda *a: ..., lambda *a: None, _raises]
    for value in values:
        for i in slots:
            yield tuple(value if k == i else a for k, a in enumerate(args))
        yield tuple(value if k in slots else a for k, a in enumerate(args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_placeholder_is_not_answered_yet(name, ctx, capsys):
    for args in _placeholders(name, ctx):
        result = CHECKS[name](*args)
        out = capsys.readouterr().out
        assert result.status == TODO and not result.answered, out
        assert out.startswith(f"TODO  exercise {result.exercise}") and "not answered yet" in out


def test_an_answer_that_raises_fails_with_its_message(capsys):
    result = exercises.check_02_cross_entropy(lambda logits, y: logits.reshape(3, 7))
    out = capsys.readouterr().out
    assert result.status == FAIL and "your function raised RuntimeError: shape '[3, 7]' is invalid" in out
    assert "Traceback" not in out and out.count("\n") == 2


@pytest.mark.parametrize("call,message", [
    (lambda: exercises.check_02_cross_entropy(), "missing a required argument: 'my_cross_entropy'"),
    (lambda: exercises.check_02_cross_entropy(_cross_entropy, 3), "too many positional arguments"),
    (lambda: exercises.check_02_cross_entropy(1 - torch.zeros(2)), "a function (a lambda, or a def)"),
    (lambda: exercises.check_04_halfway("/nowhere/run", 0.1, "Smiling"), "cannot load the run in /nowhere"),
    (lambda: exercises.check_02_decoder(torch.zeros(4), torch.zeros(4, 3, 32, 32)), "state = decoder_practice()"),
    (lambda: exercises.check_03_discriminator_step(torch.zeros(4)), "make it with state = step_practice('3.2')"),
    (lambda: exercises.check_03_autoencoder_step(exercises.step_practice("3.2")),
     "this practice state was made for exercise 3.2: make exercise 3.3's with step_practice('3.3')"),
])
def test_a_wrong_call_fails_and_says_how_to_call(call, message, capsys):
    result = call()
    out = capsys.readouterr().out
    assert result.status == FAIL and message in out and "Traceback" not in out


def test_wrong_attributes_and_images_are_named(ctx, capsys):
    run = ctx["run"]
    assert not exercises.check_04_halfway(run, 0.1, "Smilng")
    assert "attribute='Smilng' is not an attribute of this run (Smiling, Eyeglasses, Male)" in capsys.readouterr().out
    assert not exercises.check_04_changed_pixels(run, 10, "Smiling", index=10**6)
    assert "out of range" in capsys.readouterr().out
    assert not exercises.check_01_constant_guess(ctx["train"], "Smilng", 0.5, 0.5)
    assert "'Smilng' is not a column" in capsys.readouterr().out


def test_a_check_leaves_the_random_generators_as_they_were():
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    exercises.check_02_flip_categorical(_flip_k)  # draws thousands of numbers from torch's generator
    exercises.check_01_balanced_weights(lambda labels: np.random.rand(len(labels)))
    exercises.check_02_decoder(*_decode(exercises.decoder_practice()))  # practice networks built from seeds
    exercises.check_03_autoencoder_step(*_ae_step("the sign error"))
    after = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(after[0], expected[0]) and np.array_equal(after[1], expected[1]) and after[2] == expected[2]


def test_a_check_shows_nothing_more_in_a_notebook():
    result = exercises.check_02_cross_entropy(_cross_entropy)
    assert result._ipython_display_() is None and "PASS" in str(result) and result.passed


def test_the_walker_finds_the_checks_a_cell_calls_in_order():
    source = ("%time x = 1\n!ls\nr = exercises.check_02_flip(f) and check_02_code(check_01_x(g))\n"
              "my_check_02_flip(f), check_2_x(f), print(check_03_lambda)\ncheck_03_lambda(h)")
    assert checks_called(source) == ["check_02_flip", "check_02_code", "check_01_x", "check_03_lambda"]
    with pytest.raises(SyntaxError):
        checks_called("check_02_flip(")


def test_one_module_per_notebook_and_no_private_name_crosses_a_module():
    for name, check in CHECKS.items():
        assert check.__module__ == "faderlib.exercises." + {"01": "data", "02": "networks", "03": "training",
                                                            "04": "sliders", "05": "evaluation"}[name[6:8]], name
    for path in (ROOT / "faderlib" / "exercises").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert not [a.name for a in node.names if a.name.startswith("_")], (path.name, node.module)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id != "self":
                assert not node.attr.startswith("_") or node.attr.startswith("__"), (path.name, node.attr)


# ------------------------------------------------------------------------------------- the algorithm's exercises
def test_the_practice_states_are_the_same_at_every_call_and_draw_nothing():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    a, b = exercises.step_practice("3.3"), exercises.step_practice("3.3")
    c, d = exercises.decoder_practice(), exercises.decoder_practice()
    assert torch.equal(torch.rand(3), expected)
    for x, y in ((a.ae, b.ae), (a.dis, b.dis)):
        assert all(torch.equal(p, q) for p, q in zip(x.state_dict().values(), y.state_dict().values()))
    assert torch.equal(a.x2, b.x2) and torch.equal(c.z, d.z) and torch.equal(c.alpha, d.alpha)
    assert all(p.grad is not None for p in a.ae.parameters())  # the last backward pass left its gradients
    assert "exercise 3.3" in repr(a) and "decoder layers" in repr(c)
    with pytest.raises(ValueError, match="3.2, 3.3, 3.4"):
        exercises.step_practice("3.9")


def test_the_checks_compare_with_the_steps_the_trainer_takes(synthetic_dir, tmp_path, monkeypatch):
    """The library's steps the checks take are the Trainer's own: a Trainer whose module-level step
    functions are replaced by counting wrappers calls them at every iteration."""
    from faderlib import train

    calls = []
    for name in ("discriminator_update", "autoencoder_update"):
        original = getattr(train, name)
        monkeypatch.setattr(train, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    config = train.TrainConfig(data_dir=str(synthetic_dir), attributes=("Smiling",), image_size=32, steps=2,
                               batch_size=4, eval_every=2, eval_images=4, probe_images=0, device="cpu")
    trainer = train.Trainer(config, tmp_path / "run", progress=False)
    trainer.train()
    trainer.close()
    assert calls == ["discriminator_update", "autoencoder_update"] * 2


def test_an_untouched_practice_state_is_not_answered_yet(capsys):
    for number, check in (("3.2", exercises.check_03_discriminator_step), ("3.3", exercises.check_03_autoencoder_step),
                          ("3.4", exercises.check_03_training_bug)):
        result = check(exercises.step_practice(number))
        out = capsys.readouterr().out
        assert result.status == TODO and f"as step_practice('{number}') made them" in out, out


def test_the_given_buggy_iteration_is_not_answered_yet_and_either_fix_passes(capsys):
    for given in (None, "the wrong zero_grad"):
        result = exercises.check_03_training_bug(*_iteration(given))
        out = capsys.readouterr().out
        assert result.status == TODO and "the bug is still there" in out, out
    for fix in ("no_grad", "zero_grad moved"):
        assert exercises.check_03_training_bug(*_iteration(fix)), capsys.readouterr().out
    for wrong in ("the wrong z detached", "both z detached"):
        assert not exercises.check_03_training_bug(*_iteration(wrong))
        assert "the autoencoder's step was right as given" in capsys.readouterr().out


@pytest.mark.parametrize("mistake,hint", [
    ("not detached", "compute z without gradient"),
    ("flipped targets", "P learns the TRUE attributes y"),
    ("no zero_grad", "state.opt_dis.zero_grad()"),
    ("the wrong optimiser", "you stepped the wrong optimiser"),
])
def test_the_discriminator_step_names_the_mistake(mistake, hint, capsys):
    assert not exercises.check_03_discriminator_step(*_dis_step(mistake))
    assert hint in capsys.readouterr().out


@pytest.mark.parametrize("mistake,hint", [
    ("the sign error", "the sign of the adversarial term, the classic failure"),
    ("the true y", "not the true y"),
    ("z detached", "the adversarial term did not reach E"),
    ("lambda_E without its ramp", "not its final value"),
    ("no zero_grad", "state.opt_ae.zero_grad()"),
    ("the wrong optimiser", "you stepped the wrong optimiser"),
])
def test_the_autoencoder_step_names_the_mistake(mistake, hint, capsys):
    assert not exercises.check_03_autoencoder_step(*_ae_step(mistake))
    assert hint in capsys.readouterr().out


def test_the_probe_check_refuses_the_number_evaluate_reports(ctx, evaluated, capsys):
    """5.1 asks for a probe fitted on the validation split, which evaluate() does not use: its number,
    copied as it is or rounded, fails, and says why."""
    copied = evaluated["latent_probe"]["Smiling"]["balanced_accuracy"]
    right = _probe(ctx["run"], "Smiling")
    assert abs(copied - right) > 0.01  # the two probes differ on the tiny run: the test means something
    for value in (copied, round(copied, 2)):
        result = exercises.check_05_probe(ctx["run"], "Smiling", value)
        out = capsys.readouterr().out
        assert result.status == FAIL and "the number evaluate() reports" in out, out
    assert exercises.check_05_probe(ctx["run"], "Smiling", round(right, 3)), capsys.readouterr().out


# ------------------------------------------------------------------------------------- the sources
def _all_sources() -> dict[str, Path]:
    found = {p.stem: p for p in sorted(SOURCES.glob("*.txt"))}
    return found


def test_every_course_notebook_has_two_checked_exercises_or_more():
    sources = _all_sources()
    assert sorted(sources) == COURSE
    used = []
    for name, path in sources.items():
        blocks = tool.parse(path.read_text(), path.name)
        checks = [c for b in blocks if b.kind == "exercise" for c in checks_called(b.source)]
        assert len(set(checks)) >= 2, f"{name}: {checks}"
        assert all(c.startswith(f"check_{name[:2]}_") for c in checks), checks
        used += checks
    assert sorted(set(used)) == sorted(CHECKS)  # every check is asked for by a notebook


def test_the_committed_files_are_up_to_date(capsys):
    assert tool.main(["--check"]) == 0, capsys.readouterr().err


def test_a_solution_differs_from_its_notebook_only_in_the_exercises():
    """Independent of the tool: drop the solutions-only cells, then cell by cell."""
    active = sorted(p.stem for p in SOURCES.glob("*.txt"))
    assert sorted(p.stem for p in SOLUTIONS.glob("*.ipynb")) == active
    for name in active:
        student = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        solution = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
        only = [c for c in solution.cells if "solution-only" in c.metadata.get("tags", [])]
        assert only and all(c.cell_type == "markdown" for c in only)
        kept = [c for c in solution.cells if "solution-only" not in c.metadata.get("tags", [])]
        assert [c.id for c in kept] == [c.id for c in student.cells], name
        assert student.metadata == solution.metadata
        n_exercises = 0
        for a, b in zip(student.cells, kept):
            tags_a, tags_b = a.metadata.get("tags", []), b.metadata.get("tags", [])
            assert a.cell_type == b.cell_type, (name, a.id)
            if "exercise" in tags_a:
                n_exercises += 1
                assert tags_b == ["solution"] and a.cell_type == "code", (name, a.id)
                assert a.source != b.source and ("..." in a.source or "YOUR CODE" in a.source)
            elif "parameters" in tags_a:
                assert tags_a == tags_b
                _same_folders(a.source, b.source)
            else:
                assert (a.source, tags_a) == (b.source, tags_b), f"{name}: cell {a.id} differs"
        assert n_exercises >= 2, name


def _same_folders(student: str, solution: str) -> None:
    """The solution's parameters name the same folders from notebooks/solutions/ as the student's
    from notebooks/ (and the same values otherwise)."""
    def values(source):
        return {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(source).body}

    a, b = values(student), values(solution)
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], str) and a[key].startswith("../"):
            assert (NOTEBOOKS / a[key]).resolve() == (SOLUTIONS / b[key]).resolve(), key
        else:
            assert a[key] == b[key], key


def test_the_solutions_are_committed_clean():
    strip = importlib.util.spec_from_file_location("fader_strip_tool", ROOT / "tools" / "strip_notebooks.py")
    module = importlib.util.module_from_spec(strip)
    strip.loader.exec_module(module)
    paths = sorted(SOLUTIONS.glob("*.ipynb"))
    assert paths and module.main(["--check", *map(str, paths)]) == 0
    for path in paths:  # and the default, every notebook under notebooks/, includes them
        assert path in sorted(module.NOTEBOOKS.rglob("*.ipynb"))


@pytest.fixture
def tree(tmp_path):
    """A copy of the notebooks and the tool's sources, for the tool to change."""
    shutil.copytree(NOTEBOOKS, tmp_path / "notebooks")
    shutil.copytree(ROOT / "tools", tmp_path / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_check_fails_on_every_kind_of_drift(tree, capsys):
    name = sorted(SOURCES.glob("*.txt"))[0].stem
    assert tool.main(["--check", "--root", str(tree)]) == 0
    solution = tree / "notebooks" / "solutions" / f"{name}.ipynb"
    original = solution.read_text()
    solution.write_text(original.replace("check_", "check__", 1))      # a solution edited by hand
    assert tool.main(["--check", "--root", str(tree)]) == 1
    assert f"out of date: notebooks/solutions/{name}.ipynb" in capsys.readouterr().err
    assert tool.main(["--root", str(tree)]) == 0 and solution.read_text() == original  # rewritten as it was

    student = tree / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(student, as_version=4)
    exercise = next(c for c in nb.cells if "exercise" in c.metadata.get("tags", []))
    exercise.source += "\nprint('moved on')"                              # an exercise cell edited in the notebook
    other = next(c for c in nb.cells if c.cell_type == "markdown" and not c.id.startswith("ex-"))
    other.source += "\n\nA new paragraph."                                # and a cell of the lesson
    student.write_text(nbformat.writes(nb) + "\n")
    assert tool.main(["--check", "--root", str(tree)]) == 1
    err = capsys.readouterr().err
    assert f"out of date: notebooks/{name}.ipynb" in err and f"out of date: notebooks/solutions/{name}.ipynb" in err
    assert tool.main(["--root", str(tree)]) == 0
    nb = nbformat.read(student, as_version=4)
    assert "moved on" not in nbformat.writes(nb)  # the source wins for exercise cells
    assert "A new paragraph." in nbformat.writes(nbformat.read(solution, as_version=4))  # the lesson reaches the copy

    (tree / "tools" / "exercises" / f"{name}.txt").unlink()
    assert tool.main(["--check", "--root", str(tree)]) == 1
    assert f"no source: notebooks/solutions/{name}.ipynb" in capsys.readouterr().err


@pytest.mark.parametrize("text,message", [
    ("#%% exercise ex-a after cell-00\nx = ...\ncheck_01_x(x)\n", "has no '#%% solution ex-a' block"),
    ("#%% exercise ex-a after cell-00\nx = 1\ncheck_01_x(x)\n#%% solution ex-a\nx = 1\ncheck_01_x(x)\n",
     "has no placeholder"),
    ("#%% exercise ex-a after nowhere\nx = ...\ncheck_01_x(x)\n#%% solution ex-a\nx = 1\ncheck_01_x(x)\n",
     "placed after 'nowhere', which is not a cell of the notebook"),
    ("#%% exercise ex-a after cell-00\nx = ...\ncheck_01_x(x)\n#%% solution ex-a\nx = 1\ncheck_01_y(x)\n",
     "both must call the same checks"),
    ("#%% exercise ex-a after cell-00\nx = ...\ncheck_01_x(x)\n#%% solution ex-a\ndef f():\n    pass\ncheck_01_x(f)\n",
     "defines f"),
    ("#%% markdown a after cell-00\ntext\n", "must start with 'ex-'"),
    ("#%% exercice ex-a after cell-00\ntext\n", "is not a block header"),
    ("#%% exercise ex-a after cell-00\nx = (...\n", "is not valid Python"),
])
def test_mistakes_in_a_source_are_named(tree, capsys, text, message):
    for path in (tree / "tools" / "exercises").glob("*.txt"):
        path.unlink()
    (tree / "tools" / "exercises" / "01_data_and_attributes.txt").write_text(text)
    assert tool.main(["--check", "--root", str(tree)]) == 2
    assert message in capsys.readouterr().err


def test_every_course_notebook_has_at_least_two_checked_exercises():
    assert sorted(p.stem for p in SOURCES.glob("*.txt")) == sorted(COURSE)
    for name in COURSE:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        assert sum("exercise" in c.metadata.get("tags", []) for c in nb.cells) >= 2, name
        assert "Exercises" in nb.cells[-2].source, name  # the notebook still ends with its exercises (then its summary)


def test_relative_parameters_point_one_folder_further_up():
    source = ('RUN_DIR = "../runs/course"       # a comment\nDEMO_DIR = \'../runs/demo\'  # close\n'
              'DATA_DIR = None                  # kept\nPHOTO = "me.jpg"')
    assert tool.rewrite_paths(source) == ('RUN_DIR = "../../runs/course"    # a comment\n'
                                          "DEMO_DIR = '../../runs/demo'  # close\n"
                                          'DATA_DIR = None                  # kept\nPHOTO = "me.jpg"')


# ------------------------------------------------------------------------------------- running them
def test_the_solution_notebooks_run_and_every_check_passes(synthetic_dir, tmp_path):
    """In course order, from notebooks/solutions/, at the tiny size (test_notebooks.py's settings):
    ``execute`` checks that each check cell printed one PASS per check and nothing else."""
    from test_notebooks import TINY, execute
    from exercise_outputs import statuses

    names = [n for n in COURSE if (SOLUTIONS / f"{n}.ipynb").is_file()]
    assert names
    for name in names:
        nb = execute(name, tmp_path / "out", folder=SOLUTIONS, **TINY, DATA_DIR=str(synthetic_dir),
                     RUN_DIR=str(tmp_path / "course"))
        calls = sum(len(checks_called(c.source)) for c in nb.cells if c.cell_type == "code")
        passed = sum(len(statuses(c)) for c in nb.cells if c.cell_type == "code")
        assert calls >= 2 and passed == calls, name


def test_the_output_check_catches_a_wrong_or_missing_status():
    from exercise_outputs import exercise_output_problems

    def notebook(*printed):
        cell = nbformat.v4.new_code_cell("check_02_flip(f)\ncheck_02_code(g)", id="c")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="".join(printed))]
        return nbformat.v4.new_notebook(cells=[cell])

    todo = "TODO  exercise 2.4 (x): not answered yet\n"
    assert exercise_output_problems(notebook(todo, todo.replace("2.4", "2.2")), "TODO") == []
    assert exercise_output_problems(notebook(todo), "TODO")  # one status line for two checks
    assert exercise_output_problems(notebook(todo, "PASS  exercise 2.2 (y): right\n"), "TODO")
    assert exercise_output_problems(notebook(todo, todo), "PASS")
