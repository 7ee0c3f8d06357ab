"""Bad algorithm input fails before training, naming the value and the valid range."""
import pytest

from sharpdro.algorithms import create_train_step, create_train_step_from_config
from sharpdro.losses import GroupLoss
from sharpdro.optim import create_optimizer, lr_schedule

from helpers import TinyNet


def parts():
    net = TinyNet()
    return net, create_optimizer(net.trainable_params(), 0.1)


def test_unknown_algorithm_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown algorithm 'sharpdr'.*erm, groupdro, irm, jtt, sam, sharpdro"
                                         r".*did you mean 'sharpdro'"):
        create_train_step("sharpdr", *parts(), 6)


@pytest.mark.parametrize("num_groups", [0, -1])
def test_num_groups(num_groups):
    with pytest.raises(ValueError, match=f"num_groups must be >= 1, got {num_groups}"):
        create_train_step("sharpdro", *parts(), num_groups)
    with pytest.raises(ValueError, match="num_groups"):
        GroupLoss(num_groups)


@pytest.mark.parametrize("option,value", [("rho", -0.1), ("eta", -0.5)])
def test_negative_rho_eta(option, value):
    with pytest.raises(ValueError, match=f"sharpdro.{option}: {value} must be >= 0.0"):
        create_train_step("sharpdro", *parts(), 6, **{option: value})


def test_option_not_taken_by_algorithm():
    with pytest.raises(ValueError, match=r"'erm' takes options \[\], not \['rho'\]"):
        create_train_step("erm", *parts(), 6, rho=0.05)


def test_bad_choices():
    with pytest.raises(ValueError, match="eps_source"):
        create_train_step("sharpdro", *parts(), 6, eps_source="worst")
    with pytest.raises(ValueError, match="absent_groups"):
        create_train_step("groupdro", *parts(), 6, absent_groups="drop")


def test_from_config_selects_options():
    section = {"name": "sam", "rho": 0.1, "eta": 0.3, "adaptive": True, "eps_source": "batch",
               "absent_groups": "zero"}
    cell = create_train_step_from_config(section, *parts(), 6)
    assert cell.rho == 0.1 and cell.adaptive and not hasattr(cell, "eta")  # sam takes no eta


def test_schedules():
    step = lr_schedule(1.0, 10, "step", (0.3, 0.6, 0.8), 0.2)
    assert step == pytest.approx([1, 1, 1, .2, .2, .2, .04, .04, .008, .008])
    cos = lr_schedule(1.0, 4, "cosine")
    assert cos[0] == 1.0 and cos == sorted(cos, reverse=True) and cos[-1] > 0
    with pytest.raises(ValueError, match="schedule"):
        lr_schedule(1.0, 4, "linear")


def test_absurd_step_counts_are_refused_before_the_schedule_is_built():
    """train.epochs 1e9 grew to 3 GB in 24 s building a rate per step (issue 32, item 10)."""
    import time

    from sharpdro.choices import MAX_STEPS
    from sharpdro.config import ConfigError, load_config
    from sharpdro.optim import lr_schedule_from_config

    with pytest.raises(ConfigError, match=r"train.epochs: 1000000000 .*more than 10,000,000 steps"):
        load_config(None, ["--train.epochs", "1000000000"])  # before any data is read
    optim = load_config().optim
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"train.epochs 100000 x 391 steps per epoch = "
                                         r"39,100,000 steps: more than 10,000,000") as e:
        lr_schedule_from_config(optim, 391, 100000)
    assert "\n" not in str(e.value) and time.monotonic() - start < 1
    with pytest.raises(ValueError, match="more than 10,000,000"):
        lr_schedule(0.1, MAX_STEPS + 1)
    assert len(lr_schedule_from_config(optim, 10, 3)) == 30
