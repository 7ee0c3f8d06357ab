"""Algorithm hyperparameters: one table per algorithm, the single source of their names,
defaults, valid ranges and one-line docs.

The config schema's ``algorithm`` section, its validation, ``create_train_step``'s defaults
and checks, and the README's option table (``python -m sharpdro.hparams``) are all derived
from :data:`HPARAMS`. Adding an algorithm: its cell in ``sharpdro/algorithms/`` and one
entry here (a test checks that the two registries agree). A name shared by several
algorithms is one definition, so it means the same thing and has the same default
everywhere. No MindSpore import: the config layer reads this before MindSpore loads.
"""
from .field import ConfigError, Field

SCORES = ("msp", "energy", "entropy", "loss", "noise")
EPS_SOURCES = ("batch", "weighted")
ABSENT_GROUP_MODES = ("zero", "skip")

RHO = Field(0.05, float, "perturbation radius", low=0.0, grid=(0.02, 0.05, 0.1))
ETA = Field(0.01, float, "group-weight step size (exponentiated gradient)", low=0.0,
            grid=(0.001, 0.01, 0.1))
ADAPTIVE = Field(False, bool, "ASAM: scale the perturbation by |theta|")
EPS_SOURCE = Field("batch", str, "gradient that sets the perturbation: batch-mean loss "
                   "(authors) or the group-weighted loss (one more pass)", choices=EPS_SOURCES)
ABSENT_GROUPS = Field("zero", str, "a group absent from the batch: 'zero' counts it as zero "
                      "loss in the weight update (authors), 'skip' leaves its weight as it was",
                      choices=ABSENT_GROUP_MODES)
ADJUSTMENT = Field(0.0, float, "GroupDRO's generalization adjustment C (Sagawa et al. 2020): "
                   "the group-weight update uses L_g + C / sqrt(n_g), n_g the group's training "
                   "images (0: off)", low=0.0, grid=(1.0, 2.0, 4.0))
IRM_LAMBDA = Field(100.0, float, "IRM: weight of the IRMv1 penalty mean_g D_g^2 after "
                   "anneal_steps (1 before); the loss is divided by max(lambda, 1)", low=0.0,
                   grid=(1.0, 10.0, 100.0))
VREX_LAMBDA = Field(10.0, float, "V-REx: weight of the variance of the group losses after "
                    "anneal_steps (1 before); the loss is divided by max(lambda, 1)", low=0.0,
                    grid=(1.0, 10.0, 100.0))
ANNEAL_STEPS = Field(500, int, "IRM, V-REx: optimizer steps with penalty weight 1 before "
                     "the full weight (counted across resume)", low=0)
SCORE = Field("msp", str, "what picks the worst-case samples: from the pass-1 logits 1 - "
              "max softmax (msp), -logsumexp (energy), softmax entropy; the pass-1 loss "
              "(loss); the image's own noise level (noise: found the severe images of "
              "the noise corruptions, see results/)", choices=SCORES)
SYNC_PERTURBATION = Field(True, bool, "data parallel: every rank perturbs by the epsilon of "
                          "the global batch's gradient (the one-process step); false: each by "
                          "its own slice's (m-sharpness)")
FRACTION = Field(0.2, float, "share of the batch in the worst-case set", low=0.0,
                 low_open=True, high=1.0, grid=(0.1, 0.2, 0.5))
TILT = Field(0.0, float, "weight sample i of the worst-case set by exp(tilt * s_i / mean "
             "s over the set) for a score s >= 0 (0: the plain mean); leans J towards the "
             "most extreme images, as the group weights lean towards the worst group",
             low=0.0)
PASS2_FRACTION = Field(1.0, float, "sharpdro: share k = ceil(f B) of the batch that the "
                      "sharpness pass (pass 2) forwards and backpropagates, drawn by "
                      "pass2_rule (1: the whole batch, SPEC section 3 exactly; 0.2 costs "
                      "about 1.25x ERM's step instead of 2x, 0.5 about 1.5x)",
                      low=0.0, low_open=True, high=1.0)
PASS2_RULES = ("top", "sample", "uniform")
PASS2_RULE = Field("top", str, "sharpdro with pass2_fraction < 1: which k images, and how "
                   "J is estimated from them. 'top': the k of largest weight w_g / n_g in J, "
                   "rescaled to J's total weight (the best on validation); 'sample': k "
                   "draws with probability proportional to that weight (unbiased); "
                   "'uniform': k at random, weighted (unbiased, blind to the groups: ESAM's "
                   "random subset); draws seeded by the run's seed and the step",
                   choices=PASS2_RULES)
PASS2_SELECTED = Field(False, bool, "sharpdro_agnostic: the sharpness pass (pass 2) runs on "
                       "the selected images only (the fraction of the batch J reads) instead "
                       "of the whole batch; its BatchNorm then uses their statistics")

FIRST_EPOCHS = Field(0, int, "jtt, eiil: epochs of the ERM reference model of stage 1 (0: a "
                     "quarter of train.epochs, at least 1; below train.epochs)", low=0,
                     stage=True)
REFERENCE = Field(None, str, "jtt, eiil: a finished ERM run folder of the same data, model "
                  "and seed to use as stage 1 instead of training one (its last checkpoint); "
                  "dfr: the finished run of the same data, model and seed whose best "
                  "checkpoint it refits (required)", nullable=True, stage=True)
UPWEIGHT = Field(20, int, "JTT: how often each image of the error set appears per epoch of "
                 "stage 2 (lambda_up)", low=1, stage=True,
                 grid=(2, 5, 10))
EIIL_STEPS = Field(10000, int, "EIIL: gradient-ascent steps of the environment inference",
                   low=1, stage=True)
EIIL_LR = Field(0.01, float, "EIIL: Adam step size of the environment inference", low=0.0,
                low_open=True, stage=True)
DRAWS = Field(10, int, "dfr: group-balanced draws whose fitted heads are averaged", low=1,
              stage=True)

HPARAMS = {
    "erm": {},
    "groupdro": {"eta": ETA, "absent_groups": ABSENT_GROUPS, "adjustment": ADJUSTMENT},
    "sam": {"rho": RHO, "adaptive": ADAPTIVE, "sync_perturbation": SYNC_PERTURBATION},
    "sharpdro": {"rho": RHO, "eta": ETA, "adaptive": ADAPTIVE, "eps_source": EPS_SOURCE,
                 "absent_groups": ABSENT_GROUPS, "sync_perturbation": SYNC_PERTURBATION,
                 "adjustment": ADJUSTMENT, "pass2_fraction": PASS2_FRACTION,
                 "pass2_rule": PASS2_RULE},
    "irm": {"irm_lambda": IRM_LAMBDA, "anneal_steps": ANNEAL_STEPS},
    "vrex": {"vrex_lambda": VREX_LAMBDA, "anneal_steps": ANNEAL_STEPS},
    "cvar": {"fraction": FRACTION},
    "jtt": {"first_epochs": FIRST_EPOCHS, "upweight": UPWEIGHT, "reference": REFERENCE},
    "eiil": {"first_epochs": FIRST_EPOCHS, "eiil_steps": EIIL_STEPS, "eiil_lr": EIIL_LR,
             "reference": REFERENCE, "eta": ETA, "absent_groups": ABSENT_GROUPS},
    "sharpdro_agnostic": {"rho": RHO, "adaptive": ADAPTIVE, "score": SCORE,
                          "fraction": FRACTION, "tilt": TILT,
                          "sync_perturbation": SYNC_PERTURBATION,
                          "pass2_selected": PASS2_SELECTED},
    "dfr": {"reference": REFERENCE, "draws": DRAWS},
}


def tuned_option(algorithm):
    """(name, grid) of the option tune.py tries for ``algorithm``: the first of its options
    whose Field declares a grid; (None, (None,)) for one without (erm: one candidate)."""
    for name, field in HPARAMS[algorithm].items():
        if field.grid is not None:
            return name, field.grid
    return None, (None,)


def all_hparams():
    """name -> Field over every algorithm (each name has one definition)."""
    out = {}
    for table in HPARAMS.values():
        for name, field in table.items():
            if out.setdefault(name, field) is not field:
                raise AssertionError(f"hyperparameter {name!r} is defined twice")
    return out


def step_options(options):
    """The options of ``options`` (a resolved table) that the train-step cell takes: all but
    the stage options, which the application's stages read."""
    fields = all_hparams()
    return {k: v for k, v in options.items() if not fields[k].stage}


def users(name):
    """The algorithms that take hyperparameter ``name``."""
    return [a for a, table in HPARAMS.items() if name in table]


def resolve(algorithm, given):
    """The algorithm's complete, checked hyperparameters: its defaults updated by ``given``.

    ValueError (a ConfigError) for a name the algorithm does not take or a bad value."""
    if algorithm not in HPARAMS:
        raise ConfigError(f"no hyperparameter table for algorithm {algorithm!r}")
    table = HPARAMS[algorithm]
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise ConfigError(f"algorithm {algorithm!r} takes options {list(table)}, not {unknown}")
    return {name: field.coerce(f"{algorithm}.{name}", given[name]) if name in given else field.default
            for name, field in table.items()}


def of_section(section):
    """The resolved options of a config's ``algorithm`` section (its name and the options of
    every algorithm): those of the named algorithm."""
    name = section["name"]
    return resolve(name, {k: section[k] for k in HPARAMS.get(name, ()) if k in section})


def markdown_table():
    """The README's option table."""
    lines = ["| option | default | valid | used by | what |", "|---|---|---|---|---|"]
    for name, field in all_hparams().items():
        default = str(field.default).lower() if isinstance(field.default, bool) else field.default
        lines.append(f"| `{name}` | `{default}` | {field.describe_range()} | "
                     f"{', '.join(users(name))} | {field.help.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
