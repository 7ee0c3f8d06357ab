"""Distribution-agnostic SharpDRO: the NumPy reference, the group column unused, the
selection of noise images, the fraction, and bad options."""
import numpy as np
import pytest

import mindspore as ms

import reference as ref
from helpers import (G, LR, MOMENTUM, WD, as_dataset, assert_close, batch, check_state,
                     initial_params, make_cell, run)
from sharpdro.algorithms import create_train_step
from sharpdro.config import ConfigError, load_config
from sharpdro.hparams import SCORES
from sharpdro.selection import num_selected, ood_score, select_top


@pytest.mark.parametrize("score,fraction,tilt", [("msp", 0.25, 0.0), ("energy", 0.5, 0.0),
                                                 ("entropy", 0.1, 0.0), ("loss", 0.25, 0.0),
                                                 ("loss", 0.5, 2.0), ("msp", 0.5, 1.0)])
def test_steps_match_numpy_reference(mode, score, fraction, tilt):
    params = initial_params()
    cell = make_cell("sharpdro_agnostic", params, rho=0.05, score=score, fraction=fraction,
                     tilt=tilt)
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(G, 1.0 / G)}
    for i in range(2):
        x, label, group = batch(i)
        loss = run(cell, x, label, group)
        state, info = ref.step("sharpdro_agnostic", state, x, label, group, G, LR, MOMENTUM, WD,
                               rho=0.05, score=score, fraction=fraction, tilt=tilt)
        assert_close(loss.asnumpy(), info["loss"], f"loss, step {i}")
        # the diagnostics every cell keeps, and the selection counted per group
        assert_close(cell.last_group_loss.asnumpy(), info["group_loss"], f"group loss, step {i}")
        np.testing.assert_array_equal(cell.last_group_count.asnumpy(), info["counts"])
        np.testing.assert_array_equal(cell.last_group_selected.asnumpy(),
                                      np.bincount(group, weights=info["selected"], minlength=G))
        assert cell.last_group_selected.asnumpy().sum() == num_selected(len(label), fraction)
        check_state(cell, state)  # weights, momentum; group weights stay uniform


def test_selected_samples_are_the_reference_ones(graph_mode):
    """One group per sample: the per-group selection is the selection mask itself."""
    from helpers import N, TinyNet, NAME_OF
    from sharpdro.optim import create_optimizer

    params = initial_params()
    net = TinyNet()
    for p in net.trainable_params():
        p.set_data(ms.Tensor(params[NAME_OF[p.name]].astype(np.float32)))
    cell = create_train_step("sharpdro_agnostic", net, create_optimizer(net.trainable_params(), LR),
                             N, fraction=0.25)
    cell.set_train()
    x, label, _ = batch(0)
    run(cell, x, label, np.arange(N))
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(N, 1.0 / N)}
    _, info = ref.step("sharpdro_agnostic", state, x, label, np.arange(N), N, LR, MOMENTUM, WD,
                       rho=0.05, score="msp", fraction=0.25)
    np.testing.assert_array_equal(cell.last_group_selected.asnumpy(), info["selected"])


def test_the_group_column_is_never_read(mode):
    """Training on the same batches with the group column shuffled (or all zero) gives
    bit-identical weights and optimizer state."""
    finals = []
    for groups in ("as_is", "shuffled", "zeros"):
        cell = make_cell("sharpdro_agnostic", initial_params(), rho=0.1, fraction=0.3)
        for i in range(3):
            x, label, group = batch(i)
            if groups == "shuffled":
                group = np.random.default_rng(i).permutation(group)
            elif groups == "zeros":
                group = np.zeros_like(group)
            run(cell, x, label, group)
        # the training state; the last_* diagnostics are per-group by definition
        finals.append({p.name: p.asnumpy().copy() for p in cell.get_parameters()
                       if not p.name.startswith(("scratch", "last_"))})
    for other in finals[1:]:
        assert other.keys() == finals[0].keys()
        for name in finals[0]:
            np.testing.assert_array_equal(other[name], finals[0][name], err_msg=name)


def test_scores_and_the_selected_fraction():
    logits = ms.Tensor(np.array([[9.0, 0.0, 0.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0],
                                 [0.5, 0.4, 0.0]], np.float32))
    p = np.exp(logits.asnumpy()) / np.exp(logits.asnumpy()).sum(1, keepdims=True)
    np.testing.assert_allclose(ood_score(logits, "msp").asnumpy(), 1 - p.max(1), atol=1e-5)
    np.testing.assert_allclose(ood_score(logits, "entropy").asnumpy(), -(p * np.log(p)).sum(1), atol=1e-5)
    np.testing.assert_allclose(ood_score(logits, "energy").asnumpy(),
                               -np.log(np.exp(logits.asnumpy()).sum(1)), atol=1e-5)
    for score in SCORES:  # the uniform row is the most uncertain by every score
        assert ood_score(logits, score).asnumpy().argmax() in (1, 3)
    for n, fraction, k in [(100, 0.2, 20), (128, 0.2, 26), (10, 0.01, 1), (7, 1.0, 7), (9, 0.5, 4)]:
        assert num_selected(n, fraction) == k
        scores = ms.Tensor(np.random.default_rng(n).random(n).astype(np.float32))
        mask = select_top(scores, k).asnumpy()
        assert mask.sum() == k and set(np.unique(mask)) <= {0.0, 1.0}
        assert scores.asnumpy()[mask == 1].min() >= scores.asnumpy()[mask == 0].max(initial=-1)


def test_noise_level_is_immerkaers_estimate():
    """The mean absolute response to Immerkaer's kernel, per image: equal to a NumPy
    convolution, about sigma * 6 * sqrt(2 / pi) on a flat image with Gaussian noise of
    sigma (the kernel's weights have squared norm 36), and near zero on smooth content."""
    from scipy import ndimage

    from sharpdro.selection import noise_level

    rng = np.random.default_rng(0)
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    x = rng.normal(0, 1, (3, 2, 9, 11))
    want = [np.abs(np.stack([ndimage.correlate(img[c], kernel)[1:-1, 1:-1] for c in range(2)])).mean()
            for img in x]
    np.testing.assert_allclose(noise_level(ms.Tensor(x.astype(np.float32))).asnumpy(), want, rtol=1e-5)
    sigmas = np.array([0.0, 0.05, 0.1, 0.2])
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    smooth = 0.3 + 0.2 * np.sin(3 * xx) * yy  # content the kernel should cancel
    images = smooth[None, None] + sigmas[:, None, None, None] * rng.normal(0, 1, (4, 1, 32, 32))
    level = noise_level(ms.Tensor(images.astype(np.float32))).asnumpy()
    assert level[0] < 0.01
    np.testing.assert_allclose(level[1:], sigmas[1:] * 6 * np.sqrt(2 / np.pi), rtol=0.05)


def test_pure_noise_images_are_selected(graph_mode):
    """A model trained on clean images mixed with pure-noise images (random labels: a noise
    image carries no class, like the most severe photon-limited images) is unsure on noise.
    In a test batch of 16 clean and 4 fresh pure-noise images, the 20 % with the highest
    score are exactly the noise images, for every score. (Margins over 3 weight seeds:
    msp clean max 0.02 vs noise min 0.26; entropy 0.11 vs 0.85; energy -4.3 vs -2.1.)

    A model that never saw noise can be confidently wrong on it: trained on clean images
    only, pure noise got logits ~10x larger than clean images and the lowest scores. The
    selection relies on the severe images being in the training mix, as they are under
    the photon-limited protocol."""
    from mindspore.train import Model
    from sharpdro.models import create_model
    from sharpdro.optim import create_optimizer

    def normalise(images):
        return ((images.astype(np.float32) / 255.0 - 0.5) / 0.25).transpose(0, 3, 1, 2)

    def pure_noise(n, seed):
        return normalise(np.random.default_rng(seed).integers(0, 256, (n, 12, 12, 1)))

    templates = np.random.default_rng(42).integers(0, 2, (4, 12, 12, 1)) * 255.0

    def clean(n, seed):  # four high-contrast binary patterns, a little sensor noise
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 4, n)
        noisy = templates[labels] + rng.normal(0, 20, (n, 12, 12, 1))
        return normalise(np.clip(noisy, 0, 255)), labels.astype(np.int32)

    ms.set_seed(0)  # the weights' initialisation must not depend on the tests run before
    rng = np.random.default_rng(0)
    x, y = clean(1200, 1)
    images = np.concatenate([x, pure_noise(400, 2)])
    labels = np.concatenate([y, rng.integers(0, 4, 400)]).astype(np.int32)
    shuffle = rng.permutation(len(labels))
    net = create_model("small_cnn", 4, 1)
    cell = create_train_step("erm", net, create_optimizer(net.trainable_params(), 0.05), 1)
    Model(cell).train(3, as_dataset(images[shuffle], labels[shuffle],
                                    np.zeros(len(labels), np.int32), 32), dataset_sink_mode=False)
    agnostic = create_train_step("sharpdro_agnostic", net,
                                 create_optimizer(net.trainable_params(), 0.0), 1, fraction=0.2)
    net.set_train(False)
    x_test, y_test = clean(16, 3)
    assert (net(ms.Tensor(x_test)).asnumpy().argmax(1) == y_test).mean() > 0.9
    batch_images = np.concatenate([x_test, pure_noise(4, 100)])
    order = rng.permutation(20)
    images = ms.Tensor(batch_images[order])
    logits = net(images)
    # loss needs labels; noise is not about the model (and these "clean" patterns
    # are random binary pixels, noisier to Immerkaer's kernel than uniform noise)
    for score in ("msp", "energy", "entropy"):
        agnostic.score = score
        mask = agnostic.select(agnostic.scores(images, logits, None), 4).asnumpy()
        assert sorted(order[mask == 1]) == [16, 17, 18, 19], score


@pytest.mark.parametrize("options,message", [
    ({"score": "odin"}, "score: 'odin' is not one of"),
    ({"fraction": 0.0}, r"fraction: 0.0 must be > 0.0"),
    ({"fraction": 1.5}, r"fraction: 1.5 must be <= 1.0"),
    ({"score": "energy", "tilt": 1.0}, "tilt needs a score >= 0"),
    ({"tilt": -1.0}, r"tilt: -1.0 must be >= 0.0"),
    ({"eta": 0.1}, "takes options"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        make_cell("sharpdro_agnostic", initial_params(), **options)


def test_bad_config_values():
    with pytest.raises(ConfigError, match="algorithm.score: 'odin' is not one of"):
        load_config(None, {"algorithm.score": "odin"})
    with pytest.raises(ConfigError, match="algorithm.fraction: 0.0 must be > 0.0"):
        load_config(None, {"algorithm.fraction": 0.0})
    with pytest.raises(ConfigError, match="algorithm.fraction: 1.5 must be <= 1.0"):
        load_config(None, {"algorithm.fraction": 1.5})
