"""The words and tables of an evaluation: what :func:`faderlib.evaluate.evaluate` returns, read for people.

Tables (pandas, as the notebooks show them): :func:`swap_table` (swap accuracy by direction),
:func:`compare_results` (runs side by side), :func:`invariance_table` (what z says, by two
witnesses). Text: :func:`format_report` (the terminal's table, ``fader evaluate``), and sentences
computed from the numbers, so that none claims what the runs do not show: :func:`ablation_report`,
:func:`direction_report`, :func:`balance_report`. Every function reads the plain dicts of
:func:`faderlib.evaluate.evaluate` and computes nothing from images.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd


def swap_table(result: dict) -> pd.DataFrame:
    """Swap accuracy by direction, one row per attribute: removing (images with the
    attribute, decoded with y = 0), adding (images without it, decoded with y = 1), and the
    classifier's own test accuracy, the ceiling of both."""
    rows = {}
    for name, swap in result["swap_accuracy"].items():
        row = {}
        if set(swap) == {"0", "1"}:
            row["remove (1 -> 0)"], row["add (0 -> 1)"] = swap["0"], swap["1"]
        else:
            row.update({f"-> {k}": v for k, v in swap.items()})
        row["classifier accuracy"] = result["classifier_accuracy"][name]
        rows[name] = row
    table = pd.DataFrame(rows).T.astype(float).round(3)
    table.index.name = "attribute"
    return table


def compare_results(results: Mapping[str, dict]) -> pd.DataFrame:
    """Evaluations (:func:`evaluate`) side by side, as a table that reads at a glance: one row per
    attribute, and for each measure one column per run (the runs of a measure next to each other).

    The measures: the swap accuracy in each direction (``swap: add`` 0 -> 1, ``swap: remove``
    1 -> 0), the counterfactual gain on the whole image and on the pixels the attribute changes
    (``cf gain dB``, synthetic faces), the latent probe's balanced accuracy (what a fresh linear
    classifier reads from z; 0.5: nothing), the latent discriminator's and its plain accuracy
    against the majority rate. The reconstruction PSNR
    (``PSNR dB``) belongs to a run, not to an attribute: it is the first row, ``whole image``.
    """
    measures = [("swap: add", lambda r, n: r.get("swap_accuracy", {}).get(n, {}).get("1")),
                ("swap: remove", lambda r, n: r.get("swap_accuracy", {}).get(n, {}).get("0")),
                ("cf gain dB", lambda r, n: r.get("counterfactual_gain", {}).get(n)),
                ("cf gain dB, changed px", lambda r, n: r.get("counterfactual_gain_masked", {}).get(n)),
                ("probe balanced", lambda r, n: r.get("latent_probe", {}).get(n, {}).get("balanced_accuracy")),
                ("disc. balanced", lambda r, n: r["latent_discriminator"][n].get("balanced_accuracy")),
                ("disc. accuracy", lambda r, n: r["latent_discriminator"][n]["accuracy"]),
                ("majority", lambda r, n: r["latent_discriminator"][n]["majority_rate"])]
    names = list(dict.fromkeys(n for r in results.values() for n in r["latent_discriminator"]))
    columns: dict[tuple[str, str], dict] = {}
    for label, r in results.items():
        columns[("PSNR dB", label)] = {"whole image": r["reconstruction"]["psnr"]}
    for measure, read in measures:
        values = {label: {n: read(r, n) for n in names if n in r["latent_discriminator"]} for label, r in results.items()}
        if all(v is None for d in values.values() for v in d.values()):
            continue  # a measure no run has (no classifier, no ground truth)
        for label, d in values.items():
            columns[(measure, label)] = d
    table = pd.DataFrame(columns, index=["whole image", *names]).astype(float).round(3)
    table.columns.names = ["measure", "run"]
    table.index.name = "attribute"
    return table


def format_report(result: dict) -> str:
    """The evaluation as a short table for a terminal."""
    lines = [f"checkpoint {result['checkpoint']} (step {result['step']}), {result['test_images']} test images, "
             f"swap strength {result['swap_strength']:g}",
             f"reconstruction: MSE {result['reconstruction']['mse']:.4f}, PSNR {result['reconstruction']['psnr']:.1f} dB",
             "",
             f"{'attribute':<22}{'disc. acc':>10}{'majority':>10}{'balanced':>10}{'swap->0':>9}{'swap->1':>9}{'clf acc':>9}"
             f"{'cf PSNR':>9}{'cf gain':>9}{'changed':>9}"]
    for name, d in result["latent_discriminator"].items():
        swap = result.get("swap_accuracy", {}).get(name, {})
        clf = result.get("classifier_accuracy", {}).get(name)
        cf = result.get("counterfactual_psnr", {}).get(name)
        gain = result.get("counterfactual_gain", {}).get(name)
        masked = result.get("counterfactual_gain_masked", {}).get(name)

        def f(v, fmt="{:.3f}"):
            return fmt.format(v) if v is not None else "-"

        lines.append(f"{name:<22}{f(d['accuracy']):>10}{f(d['majority_rate']):>10}{f(d['balanced_accuracy']):>10}"
                     f"{f(swap.get('0')):>9}"
                     f"{f(swap.get('1')):>9}{f(clf):>9}{f(cf, '{:.1f}'):>9}{f(gain, '{:+.2f}'):>9}{f(masked, '{:+.2f}'):>9}")
    if "counterfactual_gain" in result:
        lines += ["", "cf PSNR: the edit against the true counterfactual (synthetic faces); cf gain: dB it gained over the",
                  "unedited reconstruction against the same truth, on the whole image and where the attribute changes pixels"]
    return "\n".join(lines)


def swap_values(swaps: dict) -> list[float]:
    """Every swap accuracy of a table ``{attribute: {target value: accuracy or None}}`` (an
    evaluation's ``swap_accuracy``, or one strength of its ``swap_accuracy_at``), the Nones left out."""
    return [v for d in swaps.values() for v in d.values() if v is not None]


def mean_swap_accuracy(result: dict) -> float:
    """The swap accuracy of an evaluation averaged over attributes and target values."""
    values = swap_values(result["swap_accuracy"])
    return sum(values) / len(values)


def ablation_report(result: dict, ablation: dict, label: str = "lambda_E = 0") -> str:
    """What the ablation (``ablation``, trained without the adversary) shows against the Fader network
    (``result``), in sentences computed from the two evaluations: each says what these runs measured,
    so that none claims a contrast the runs do not have (a tiny test run may have none)."""
    r, a = result, ablation
    lines = []
    pr, pa = r["reconstruction"]["psnr"], a["reconstruction"]["psnr"]
    lines.append(f"Reconstruction: {label} {'better' if pa > pr else 'not better'} ({pa:.1f} dB against {pr:.1f} dB).")

    dis_r = {n: d["balanced_accuracy"] for n, d in r["latent_discriminator"].items()}
    dis_a = {n: d["balanced_accuracy"] for n, d in a["latent_discriminator"].items()}
    reads = [n for n in dis_a if dis_a[n] > 0.6]
    lines.append("Discriminator (balanced accuracy, 0.5: blind): "
                 + ", ".join(f"{n} {dis_r[n]:.2f} vs {dis_a[n]:.2f}" for n in dis_r) + "; "
                 + (f"with {label} it reads {', '.join(reads)} from z." if reads else
                    f"with {label} it reads no attribute from z above 0.6 (a short run, or a weak discriminator)."))
    if "swap_accuracy" in r and "swap_accuracy" in a:
        sr, sa = mean_swap_accuracy(r), mean_swap_accuracy(a)
        lines.append(f"Swaps (mean over attributes and directions): {sr:.2f} with the adversary, {sa:.2f} with {label}"
                     + (": the decoder ignores y when z already carries the attributes." if sa < sr - 0.1 else
                        ": no clear contrast in these runs."))
    if "counterfactual_gain" in r and "counterfactual_gain" in a:
        gr, ga = r["counterfactual_gain"], a["counterfactual_gain"]
        lines.append("Counterfactual gain (dB towards the true edited face; 0: no edit): "
                     + ", ".join(f"{n} {gr[n]:+.2f} vs {ga[n]:+.2f}" for n in gr) + ".")
    if "latent_probe" in r and "latent_probe" in a:
        lp, la = r["latent_probe"], a["latent_probe"]
        lines.append("Latent probe (a fresh linear classifier of z, balanced accuracy): "
                     + ", ".join(f"{n} {lp[n]['balanced_accuracy']:.2f} vs {la[n]['balanced_accuracy']:.2f}" for n in lp)
                     + ".")
    return "\n".join(lines)


def invariance_table(result: dict, ablation: dict | None = None) -> pd.DataFrame:
    """What z says about each attribute, by two witnesses: the latent discriminator trained against
    the encoder, and the latent probe fitted afterwards (balanced accuracies, 0.5: nothing to read);
    the probe's floor when the evaluation has it (the same probe on the other attributes of the label
    table: how low the probe can fall for a z that must describe them); with ``ablation`` (the
    lambda_E = 0 run's evaluation), the same for it beside."""
    rows = {}
    for name, d in result["latent_discriminator"].items():
        row = {"majority rate": d["majority_rate"], "discriminator": d["balanced_accuracy"]}
        if "latent_probe" in result:
            row["latent probe"] = result["latent_probe"][name]["balanced_accuracy"]
        if "probe_floor" in result:
            row["probe floor"] = result["probe_floor"][name]["balanced_accuracy"]
        if ablation is not None:
            row["discriminator, lambda_E = 0"] = ablation["latent_discriminator"][name]["balanced_accuracy"]
            if "latent_probe" in ablation:
                row["latent probe, lambda_E = 0"] = ablation["latent_probe"][name]["balanced_accuracy"]
        rows[name] = row
    table = pd.DataFrame(rows).T.astype(float).round(3)
    table.index.name = "attribute"
    return table


def direction_report(result: dict, threshold: float = 0.05) -> str:
    """One sentence per attribute on its two swap directions, from the run's numbers: which is
    harder and by how much, or that they are within ``threshold`` of each other."""
    lines = []
    for name, swap in result.get("swap_accuracy", {}).items():
        if set(swap) != {"0", "1"} or None in swap.values():
            continue
        remove, add = swap["0"], swap["1"]
        if abs(add - remove) <= threshold:
            lines.append(f"{name}: both directions alike (remove {remove:.3f}, add {add:.3f}).")
        else:
            harder = "adding" if add < remove else "removing"
            lines.append(f"{name}: {harder} is harder here (remove {remove:.3f}, add {add:.3f}: "
                         f"{abs(add - remove):.3f} apart).")
    return "\n".join(lines) or "(no swap accuracy: evaluate with a classifier)"


def balance_report(balanced: dict, other: dict, balance, other_balance) -> str:
    """The two sampling choices compared in sentences computed from their evaluations: the
    reconstruction (a collapse shows there), the swaps of each attribute, the counterfactual gains."""
    a, b = f"balance={balance!r}", f"balance={other_balance!r}"
    pa, pb = balanced["reconstruction"]["psnr"], other["reconstruction"]["psnr"]
    lines = [f"Reconstruction: {a} {pa:.1f} dB, {b} {pb:.1f} dB"
             + (f": {abs(pa - pb):.1f} dB apart, a collapse of the {a if pa < pb else b} run."
                if abs(pa - pb) >= 3 else " (no collapse: less than 3 dB apart).")]
    if "swap_accuracy" in balanced and "swap_accuracy" in other:
        ma, mb = mean_swap_accuracy(balanced), mean_swap_accuracy(other)
        lines.append(f"Swap accuracy (mean): {a} {ma:.3f}, {b} {mb:.3f}"
                     + (" — nearly the same, whatever the reconstruction: the classifier asks only whether the "
                        "attribute is there." if abs(ma - mb) < 0.05 else "."))
    if "counterfactual_gain" in balanced and "counterfactual_gain" in other:
        lines.append("Counterfactual gain (dB): " + ", ".join(
            f"{n} {balanced['counterfactual_gain'][n]:+.2f} vs {other['counterfactual_gain'][n]:+.2f}"
            for n in balanced["counterfactual_gain"]) + ".")
    return "\n".join(lines)


def objective_name(row: dict, none: str = "none") -> str:
    """How a sweep row's objective is named in tables and plots: ``none`` for the lambda_E = 0
    ablation, else its adversary, with the discriminator's learning-rate multiple when not 1
    (``"flip, P's lr x4"``)."""
    if row["lambda_e"] == 0:
        return none
    scale = row.get("dis_lr_scale", 1.0)
    return row["adversary"] + (f", P's lr x{scale:g}" if scale != 1 else "")


def sweep_table(rows) -> pd.DataFrame:
    """The adversary sweep (``benchmarks/sweep_adversary.py``'s rows), one line per objective and
    strength, the seeds averaged: the latent probe per attribute and its mean, the jointly trained
    discriminator (mean over the attributes), the smallest swap accuracy at strength 1, the
    reconstruction PSNR, and the number of seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((objective_name(r, "none (lambda_E = 0)"), r["lambda_e"], r["dis_steps"]), []).append(r)
    table = []
    for (adversary, lam, dis), rs in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1], g[0][2])):
        row = {"adversary": adversary, "lambda_E": lam, "discriminator steps": dis}
        for name in rs[0]["probe"]:
            row[f"probe {name}"] = float(np.mean([r["probe"][name] for r in rs]))
        row["probe (mean)"] = float(np.mean([r["probe_mean"] for r in rs]))
        row["discriminator (mean)"] = float(np.mean([np.mean(list(r["discriminator"].values())) for r in rs]))
        row["min swap"] = float(np.mean([r["min_swap"] for r in rs]))
        row["PSNR dB"] = float(np.mean([r["psnr"] for r in rs]))
        row["seeds"] = len(rs)
        table.append(row)
    return pd.DataFrame(table).set_index(["adversary", "lambda_E", "discriminator steps"]).round(3)
