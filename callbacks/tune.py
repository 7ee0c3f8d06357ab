"""What tune.py does: every candidate method over the grid of its main option on the
user's data, each a normal train.py run folder under <output_root>/<name>-tune/<method>/
<option>=<value>/ (finished runs skipped, interrupted ones resumed), the pick by validation,
and tuned.yaml, report.md and tune.png beside them.

A method is an algorithm name with optional modifiers: ``+balanced`` (data.sampler
group_balanced) and ``+option=value`` (another of its options fixed). Its grid is the grid
declared beside the Field of its tuned option (sharpdro/hparams.py tuned_option); a method
without one (erm) is one candidate. Selection: each run at the epoch it selected (its
best.ckpt), by worst-group validation accuracy, ties by mean validation accuracy, then the
first; without groups in training and in validation, by overall validation accuracy.

Early stopping (--halving ETA): successive halving on epochs. Every candidate trains to the
first rung (train.until_epoch: the schedule still spans train.epochs), the best 1/ETA by
the same rule resume to the next, and so on to train.epochs; a run resumed past its stop
equals the uninterrupted one, so the survivors' records are what a full sweep would hold.
"""
import collections
import itertools
import math
import os
import time

import numpy as np
import yaml

from sharpdro import config as C
from sharpdro.hparams import tuned_option
from sharpdro.registry import closest

from . import sweep
from .checks import UserError
from .run_folder import RunFolder, selected_epoch, short_path

BALANCED = "+balanced"
WORST, OVERALL = "worst-group validation accuracy", "overall validation accuracy"

# fixed: {dotted config key: value} the method sets besides its algorithm (+ modifiers)
Method = collections.namedtuple("Method", "name algorithm fixed option grid")
Candidate = collections.namedtuple("Candidate", "method value run_dir args")


def algorithms():
    from sharpdro.algorithms import ALGORITHMS

    return ALGORITHMS


def tunable(groups):
    """The algorithms tune.py may try: not the post-hoc ones (they refit another run); with
    ``groups`` none, only those that train without group labels."""
    from sharpdro.algorithms import POST_HOC

    registry = algorithms()
    return [n for n in registry.names() if registry.get(n).kind != POST_HOC
            and (groups != "none" or not registry.get(n).uses_group_labels)]


def default_methods(groups):
    """Without group labels every label-free algorithm. With them erm (the baseline) and the
    algorithms that use the labels, each followed by the variants its class declares
    (``tune_variants``): the label-free ones are left out, since every candidate more is one
    more chance for the validation set's noise to pick (README, "Choose on your validation
    set"); name them in --methods to try them."""
    registry = algorithms()
    names = tunable(groups)
    if groups == "none":
        return names
    names = [n for n in names if n == "erm" or registry.get(n).uses_group_labels]
    # the class's own declaration (jtt's stage 2 is an ERM subclass, and label-free)
    return [n + v for n in names for v in ("", *vars(registry.get(n)).get("tune_variants", ()))]


def parse_modifier(text, modifier, algorithm, groups):
    """One '+...' of a method: 'balanced', or 'option=value' of the algorithm -> (key, value)."""
    from sharpdro.hparams import HPARAMS

    if modifier == BALANCED[1:]:
        if groups == "none":
            raise UserError(f"method {text!r}: {BALANCED} needs group labels and data.groups "
                            "is none")
        return "data.sampler", "group_balanced"
    option, sep, value = modifier.partition("=")
    known = HPARAMS.get(algorithm, {})
    if not sep or option not in known or not value:
        hint = closest(option, [*known, BALANCED[1:]])
        raise UserError(f"method {text!r}: '+{modifier}' is neither +balanced nor "
                        f"+option=value with an option of {algorithm}"
                        + (f"; did you mean '+{hint}'?" if hint else "")
                        + (f" (its options: {', '.join(known)})" if known else ""))
    if option == tuned_option(algorithm)[0]:
        raise UserError(f"method {text!r}: {option} is the option tune.py varies for "
                        f"{algorithm}; fix another one")
    return f"algorithm.{option}", value


def parse_method(text, groups):
    """``text`` ('sharpdro', 'erm+balanced', 'sharpdro+pass2_fraction=0.5') -> Method;
    UserError in one line."""
    name, *modifiers = text.split("+")
    valid = tunable(groups)
    if name not in algorithms().names():
        hint = closest(name, valid)
        raise UserError(f"unknown method {text!r}" + (f"; did you mean {hint!r}?" if hint else "")
                        + f" (valid: {', '.join(valid)}, each optionally with {BALANCED} or "
                        "+option=value)")
    if name not in valid:
        why = ("needs group labels and data.groups is none" if groups == "none"
               else "refits another run's model")
        raise UserError(f"method {text!r} {why}; the candidates: {', '.join(valid)}")
    fixed = dict(parse_modifier(text, m, name, groups) for m in modifiers)
    option, grid = tuned_option(name)
    return Method(text, name, fixed, option, grid)


def middle(values, k):
    """The k middle values of ``values`` (evenly around the centre, the lower side first)."""
    start = (len(values) - k) // 2
    return tuple(values[start:start + k])


def apply_budget(methods, budget):
    """``methods`` with each grid trimmed to its middle values so that all of them take at
    most ``budget`` runs (one value each at least); UserError when that cannot be."""
    empty = [m.name for m in methods if not m.grid]
    if empty:
        raise UserError(f"method {empty[0]!r} has an empty grid (its option's Field declares no "
                        "values): nothing to try")
    total = sum(len(m.grid) for m in methods)
    if budget is None or budget >= total:
        return methods, None
    if budget < len(methods):
        raise UserError(f"--budget {budget} leaves a method with an empty grid: at least "
                        f"{len(methods)} runs (one per method) are needed")
    k = max(k for k in range(1, total + 1)
            if sum(min(k, len(m.grid)) for m in methods) <= budget)
    trimmed = [m._replace(grid=middle(m.grid, min(k, len(m.grid)))) for m in methods]
    runs = sum(len(m.grid) for m in trimmed)
    return trimmed, (f"--budget {budget}: each grid trimmed to its middle {k} value(s), "
                     f"{runs} runs instead of {total}")


def candidates(methods, root, overrides):
    """Every (method, value) as a Candidate with its run folder and train.py arguments."""
    out = []
    for m in methods:
        for value in m.grid:
            args = [*overrides, "--algorithm.name", m.algorithm]
            if m.option is not None:
                args += [f"--algorithm.{m.option}", str(value)]
            args += sweep.fixed_args(m.fixed)
            out.append(Candidate(m, value, os.path.join(root, m.name, sweep.leaf(m.option, value)),
                                 args))
    return out


def validation_groups(cfg):
    """Whether the config's validation images carry groups (more than the one 'all' set);
    UserError when the data has no validation images. Reads the data as a run does (its
    arrays are cached for the runs)."""
    from datasets.build import ALL, prepare_arrays

    try:
        val = prepare_arrays(cfg).val
    except ValueError as err:
        raise UserError(str(err)) from None
    if sum(len(labels) for _, labels in val.values()) == 0:
        raise UserError("no validation set: the data has no validation images to choose on "
                        "(a validation split, or data.val_fraction / data.val_per_class)")
    return list(val) != [ALL]


def criterion(groups, val_has_groups):
    """The selection rule: worst-group validation accuracy, or the overall one when neither
    training nor validation has group labels."""
    return OVERALL if groups == "none" and not val_has_groups else WORST


def reached(folder):
    """The last epoch a finished run evaluated (where it stopped: every stop evaluates)."""
    return max((r["epoch"] for r in folder.eval_records()), default=0)


class Sweep:
    """The plan of a sweep (every candidate to ``steps[0]``, the best 1/eta of them on to
    each next rung) and its progress: one line per run, the ETA from the seconds per
    epoch of the runs trained so far times the epochs still planned."""

    def __init__(self, config, todo, steps, eta, export):
        self.config, self.todo, self.steps, self.eta, self.export = config, todo, steps, eta, export
        self.alive = [len(todo)]
        for _ in steps[1:]:
            self.alive.append(max(1, math.ceil(self.alive[-1] / eta)))
        self.runs = sum(self.alive)
        self.done, self.trained, self.seconds, self.epochs = 0, 0, 0.0, 0

    def left(self, rung, in_rung):
        """Epochs still planned: ``in_rung`` runs of this rung, then the later rungs."""
        width = [b - a for a, b in zip([0, *self.steps], self.steps)]
        return in_rung * width[rung] + sum(n * w for n, w in
                                           zip(self.alive[rung + 1:], width[rung + 1:]))

    def train(self, rung, group):
        """Bring every candidate of ``group`` to rung ``rung``'s epoch (the last: the end)."""
        final, target = rung == len(self.steps) - 1, self.steps[rung]
        width = target - ([0, *self.steps][rung])  # the epochs this rung trains
        more = ["--train.until_epoch", str(0 if final else target),
                "--train.export_mindir", str(final and self.export).lower()]
        for j, c in enumerate(group, 1):
            cmd = sweep.command(self.config, c.run_dir, c.args, more,
                                done=lambda f: f.is_finished() and reached(f) >= target)
            seconds = 0.0 if cmd is None else sweep.call(cmd, c.run_dir, label(c))
            if cmd is not None:
                self.seconds, self.epochs = self.seconds + seconds, self.epochs + width
                self.trained += 1
            self.done += 1
            eta = (f"ETA {self.seconds / self.epochs * self.left(rung, len(group) - j):.0f}s"
                   if self.epochs else "ETA unknown")
            there = "finished" if final else f"at epoch {target}"
            state = f"skipped ({there})" if cmd is None else f"done in {seconds:.0f}s"
            to = "" if len(self.steps) == 1 else f" to epoch {target}"
            print(f"[{self.done}/{self.runs}] {label(c)}{to}: {state}; "
                  f"{self.runs - self.done} left, {eta}", flush=True)


def halve(plan, rule, best_metric):
    """Successive halving over ``plan``'s rungs (one rung: every candidate to the end);
    the indices of the candidates trained to the end."""
    alive = list(range(len(plan.todo)))
    for rung, epoch in enumerate(plan.steps):
        plan.train(rung, [plan.todo[i] for i in alive])
        if rung == len(plan.steps) - 1:
            return alive
        at = [rung_record(RunFolder(plan.todo[i].run_dir).eval_records(), epoch, best_metric)
              for i in alive]
        kept = [alive[j] for j in keep(at, plan.eta, rule)]
        print(f"epoch {epoch}: {len(kept)} of {len(alive)} go on: "
              + ", ".join(label(plan.todo[i]) for i in kept), flush=True)
        alive = kept


def rungs(epochs, eval_every, eta):
    """The epochs at which successive halving compares the candidates still in: epochs,
    epochs / eta, epochs / eta^2 ... while at least eval_every, each rounded up to an
    evaluation epoch (a multiple of eval_every, so a stopped run evaluates where the
    uninterrupted one does). ``eta`` None: [epochs], no early stop."""
    out, e = {epochs}, float(epochs)
    while eta and e / eta >= eval_every:
        e /= eta
        out.add(min(epochs, math.ceil(e / eval_every) * eval_every))
    return sorted(out)


def rung_record(records, epoch, best_metric):
    """A run's validation record at the epoch it would select if it had stopped after
    ``epoch`` (its records up to there, the rule of its best.ckpt)."""
    upto = [r for r in records if r["epoch"] <= epoch]
    best = selected_epoch(upto, best_metric)
    return next(r for r in upto if r["epoch"] == best and r["split"] == "val")


def keep(records, eta, rule):
    """Indices of the candidates going on from a rung: the best 1/eta (rounded up) of their
    ``records`` under ``rule``, in their order; ties: the first."""
    return sorted(ranked(records, rule)[:max(1, math.ceil(len(records) / eta))])


def ranked(records, rule):
    """Indices of ``records`` best first under ``rule``; ties: the first."""
    return sorted(range(len(records)), key=lambda i: (*score(records[i], rule), -i),
                  reverse=True)


def score(record, rule):
    """The sort key of a candidate's selected validation record under ``rule``."""
    if rule == OVERALL:
        return (record["mean_acc"],)
    return record["worst_acc"], record["mean_acc"]


def choose(rows, rule, among=None):
    """Index of the best row (its 'val' record) under ``rule`` of those ``among`` (default
    all: the ones trained to the end); ties: the first."""
    among = list(range(len(rows)) if among is None else among)
    return among[ranked([rows[i]["val"] for i in among], rule)[0]]


def seconds_per_step(run_dir):
    """The run's train seconds per step (sweep.step_seconds), None when its log cannot time
    it (too short, or resumed)."""
    try:
        return sweep.step_seconds(run_dir, first_process=True)
    except SystemExit:
        return None


def collect(todo, epochs):
    """One row per candidate: its selected validation record, the epoch where halving
    stopped it (None: trained to the end) and its step time, relative to the plain erm
    candidate's where there is one."""
    rows = []
    for c in todo:
        end = reached(RunFolder(c.run_dir))
        rows.append({"candidate": c, "val": sweep.selected(c.run_dir)[0],
                     "stopped": end if end < epochs else None,
                     "step": seconds_per_step(c.run_dir)})
    erm = [r["step"] for r in rows if r["candidate"].method.name == "erm"]
    base = erm[0] if erm and erm[0] else None
    for r in rows:
        r["cost"] = r["step"] / base if base and r["step"] is not None else None
    return rows


def inert(rows, best_metric):
    """Methods whose grid values all gave the same validation accuracies, at the last epoch
    all of their runs reached: the option did nothing there (IRM and V-REx before their
    anneal_steps; the runs' logs say so)."""
    out = []  # rows come method by method (candidates())
    for _, group in itertools.groupby(rows, key=lambda r: r["candidate"].method.name):
        group = list(group)
        method = group[0]["candidate"].method
        folders = [RunFolder(r["candidate"].run_dir) for r in group]
        epoch = min(reached(f) for f in folders)
        accs = [rung_record(f.eval_records(), epoch, best_metric)["acc"] for f in folders]
        if len(folders) > 1 and all(a == accs[0] for a in accs):
            out.append(f"every {method.option} of {method.name} gave the same validation "
                       f"accuracies (epoch {epoch}): the option did nothing here; see "
                       f"{short_path(folders[0].path)}.log")
    return out


def standard_error(record, rule):
    """(standard error of the record's score, in points; images it rests on): the worst
    group's accuracy over its images, or the mean over all of them (binomial)."""
    if rule == OVERALL:
        p, n = record["mean_acc"], sum(record["count"].values())
    else:
        group = min(record["acc"], key=record["acc"].get)
        p, n = record["acc"][group], record["count"][group]
    return 100 * math.sqrt(p * (1 - p) / max(n, 1)), n


def noise(rows, best, rule):
    """One line: how many candidates trained to the end (halving's stopped ones are measured
    at another epoch) are within one standard error of the pick, so that the validation set
    cannot tell them apart."""
    top = rows[best]["val"]
    se, n = standard_error(top, rule)
    field = "mean_acc" if rule == OVERALL else "worst_acc"
    close = [label(r["candidate"]) for i, r in enumerate(rows) if i != best
             and not r["stopped"] and 100 * (top[field] - r["val"][field]) <= se]
    where = ("the validation set" if rule == OVERALL else "the worst validation group")
    if not close:
        return (f"no other run trained to the end is within one standard error of the pick "
                f"(+-{se:.1f} points: {where} has {n} images)")
    return (f"{len(close)} other run(s) trained to the end within one standard error of the "
            f"pick (+-{se:.1f} points: {where} has {n} images), which validation cannot tell "
            f"apart from it: {', '.join(close)}")


def write_tuned(run_dir, path):
    """The winning run's config.yaml, run_dir and name cleared (ready for train.py --config
    PATH --seed S); checked by loading it."""
    with open(os.path.join(run_dir, RunFolder.CONFIG)) as f:
        values = yaml.safe_load(f)
    values["name"] = values["run_dir"] = None
    with open(path, "w") as f:
        yaml.safe_dump(values, f, sort_keys=False)
    C.load_config(path)


def label(candidate):
    """'sharpdro rho=0.05', 'erm'."""
    m = candidate.method
    return m.name if m.option is None else f"{m.name} {m.option}={candidate.value}"


def report_markdown(name, rows, best, rule, command, note, notes=()):
    cost = "step x ERM" if any(r["cost"] is not None for r in rows) else "s / step"
    halved = any(r["stopped"] for r in rows)
    lines = [f"# {name}: tune", "", f"Command: `{command}`", "",
             f"Each run at the epoch it selected (its best.ckpt); the pick by {rule}"
             + (", ties by mean validation accuracy" if rule == WORST else "")
             + ", then the first" + (", of the runs trained to the end" if halved else "")
             + "." + (f" {note}." if note else ""), "",
             f"| method | option | value | val worst (%) | val mean (%) | {cost} | "
             "stopped at epoch | picked |", "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        c, v = r["candidate"], r["val"]
        t = r["cost"] if r["cost"] is not None else r["step"]
        lines.append(f"| {c.method.name} | {c.method.option or '-'} | "
                     f"{'-' if c.method.option is None else c.value} | {100 * v['worst_acc']:.2f} | "
                     f"{100 * v['mean_acc']:.2f} | {'-' if t is None else f'{t:.2f}'} | "
                     f"{r['stopped'] or '-'} | {'**yes**' if i == best else ''} |")
    return "\n".join(lines + ["", f"Picked: {label(rows[best]['candidate'])} "
                              f"({short_path(rows[best]['candidate'].run_dir)}); "
                              f"{noise(rows, best, rule)}.", ""]
                     + [f"Note: {line}." for line in notes] + ([""] if notes else []))


def plot(path, name, rows, best):
    """Worst-group validation accuracy against relative step cost (s / step without an erm
    candidate), one point per candidate, the pick ringed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    relative = any(r["cost"] is not None for r in rows)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, r in enumerate(rows):
        x = r["cost"] if relative else r["step"]
        x = np.nan if x is None else x
        y = 100 * r["val"]["worst_acc"]
        stopped = r["stopped"] is not None  # its accuracy is from an earlier epoch: hollow
        color = f"C{i % 10}"
        ax.scatter([x], [y], s=60 if i == best else 25, edgecolors="k" if i == best else color,
                   facecolors="none" if stopped else color, linewidths=1.0)
        ax.annotate(label(r["candidate"]) + (f" (epoch {r['stopped']})" if stopped else ""),
                    (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("train step time x ERM's" if relative else "train seconds per step")
    ax.set_ylabel("worst-group validation accuracy (%)")
    ax.set_title(f"{name}: tune candidates (ringed: the pick; hollow: stopped early)")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def setup(args, overrides):
    """(cfg, name, root, methods, note, rule) from tune.py's arguments; UserError on bad
    input, before anything is trained."""
    try:
        cfg = C.load_config(args.config, overrides)
    except C.ConfigError as err:
        raise UserError(str(err)) from None
    groups = cfg.data.groups
    texts = args.methods.split(",") if args.methods else default_methods(groups)
    methods = [parse_method(t.strip(), groups) for t in texts if t.strip()]
    if not methods:
        raise UserError("--methods names no method")
    if args.halving not in (0, None) and args.halving < 2:
        raise UserError(f"--halving {args.halving}: give 2 or more (the best 1/ETA of the "
                        "candidates go on at each rung), or 0 to train every one to the end")
    methods, note = apply_budget(methods, args.budget)
    rule = criterion(groups, validation_groups(cfg))
    name = cfg.name or os.path.splitext(os.path.basename(args.config))[0]
    root = os.path.abspath(os.path.join(cfg.output_root, f"{name}-tune"))
    return cfg, name, root, methods, note, rule


def tune(args, overrides, command):
    """The whole sweep: check, train (halving where asked), choose, write; returns the
    outputs' paths."""
    cfg, name, root, methods, note, rule = setup(args, overrides)
    todo = candidates(methods, root, list(overrides))
    steps = rungs(cfg.train.epochs, cfg.train.eval_every, args.halving or None)
    plan = Sweep(os.path.abspath(args.config), todo, steps, args.halving, cfg.train.export_mindir)
    how = (f"successive halving: the best 1/{args.halving} go on at epochs "
           f"{', '.join(map(str, steps[:-1]))} ({plan.runs} train runs)"
           if len(steps) > 1 else "each trained to the end")
    print(f"{len(todo)} candidates in {short_path(root)}, chosen by {rule}; {how}"
          + (f"; {note}" if note else ""), flush=True)
    start = time.time()
    finalists = halve(plan, rule, cfg.train.best_metric)
    spent = (f"trained {plan.trained} runs, {plan.epochs} run-epochs, in "
             f"{time.time() - start:.0f}s")
    rows = collect(todo, cfg.train.epochs)
    best = choose(rows, rule, finalists)
    notes = inert(rows, cfg.train.best_metric)
    tuned, report, figure = (os.path.join(root, f) for f in ("tuned.yaml", "report.md", "tune.png"))
    write_tuned(rows[best]["candidate"].run_dir, tuned)
    with open(report, "w") as f:
        f.write(report_markdown(name, rows, best, rule, command,
                                "; ".join(filter(None, (note, spent))), notes))
    plot(figure, name, rows, best)
    print(f"{spent}; selected by {rule}: {label(rows[best]['candidate'])}", flush=True)
    print(noise(rows, best, rule), flush=True)
    for line in notes:
        print(f"note: {line}", flush=True)
    print(f"written: {', '.join(short_path(p) for p in (tuned, report, figure))}", flush=True)
    return {"tuned": tuned, "report": report, "plot": figure, "pick": rows[best], "rows": rows}
