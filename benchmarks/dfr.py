"""Deep Feature Reweighting on a finished run: its feature extractor kept, the last layer
refit on group-balanced draws (sharpdro/dfr.py has the recipe).

    python -m benchmarks.dfr --run runs/<name> [--out RUN_DIR] [--draws 10] [--seed S]

Writes a new run folder (default <run>-dfr) that eval.py and export.py read like any other:
config.yaml and data.json of the source run, checkpoints/best.ckpt (the source's best
weights with the new head), eval.jsonl (validation and test per group), model.mindir, and
dfr.json (the source, the grid's selection-half scores, the pick, the draw size).
The run's data must have groups in its validation set (data.groups severity or given).
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sharpdro.runtime import configure_process  # noqa: E402

configure_process()  # before MindSpore loads
import numpy as np  # noqa: E402

from sharpdro import config as C  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", required=True, help="a finished run folder (its best.ckpt)")
    parser.add_argument("--out", help="the new run folder (default: <run>-dfr)")
    parser.add_argument("--draws", type=int, default=10,
                        help="group-balanced draws averaged in the final head")
    parser.add_argument("--seed", type=int, help="the validation halves and the draws "
                        "(default: the run's seed)")
    parser.add_argument("--export_mindir", default="true", choices=("true", "false"))
    parser.add_argument("--overwrite", action="store_true")
    return parser.parse_args(argv)


def features(network, sets):
    """(features, labels, group index) over the sets {group: EvalSet}, in order."""
    import mindspore as ms

    xs, ys, gs = [], [], []
    for g, data in enumerate(sets.values()):
        for x, y in data.batches():
            xs.append(network(ms.Tensor(x)).asnumpy().astype(np.float64))
            ys.append(y)
            gs.append(np.full(len(y), g))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def check_source(args):
    from callbacks.run_folder import RunFolder

    source = RunFolder(args.run)
    if not source.is_finished():
        raise ValueError(f"{source} is not a finished run (no done marker)")
    ckpt = source.model_checkpoint()
    if ckpt is None:
        raise ValueError(f"{source} has no checkpoint")
    cfg = C.load_config(source.file(source.CONFIG))
    if cfg.data.groups == "none":
        raise ValueError(f"{source} was trained with data.groups none: DFR needs groups in "
                         "the validation set (data.groups severity or given)")
    if args.draws < 1:
        raise ValueError(f"--draws must be >= 1, got {args.draws}")
    out = RunFolder(args.out or f"{str(source).rstrip(os.sep)}-dfr")
    if os.path.abspath(str(out)) == os.path.abspath(str(source)):
        raise ValueError("--out must differ from --run")
    if out.is_finished() and not args.overwrite:
        raise ValueError(f"{out} already holds a finished run; use --overwrite")
    return source, ckpt, cfg, out


def run(args):
    import mindspore as ms

    from callbacks.evaluation import evaluate_by_severity, format_table, network_predictor
    from callbacks.stages import training_logits
    from datasets import build_data
    from sharpdro.checkpoint import STATE_KEY, create_trained_model, read_run_state
    from sharpdro.deploy import export_and_verify
    from sharpdro.dfr import dfr_fit, group_accuracies, split_halves
    from sharpdro.finetune import split_head
    from sharpdro.models import model_head
    from sharpdro.runtime import set_context

    source, ckpt, cfg, out = check_source(args)
    seed = cfg.seed if args.seed is None else args.seed
    set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=seed)
    start = time.time()
    data = build_data(cfg)
    head = model_head(cfg.model.name)
    if head is None:
        raise ValueError(f"model {cfg.model.name} registers no head to refit")
    names = [str(n) for n in data.val]
    train_names = [str(n) for n in data.group_names]
    if names != [str(n) for n in data.test] or set(names) != set(train_names):
        raise ValueError(f"the validation groups {names} are not the training groups "
                         f"{train_names}")
    counts = {n: len(s) for n, s in data.val.items()}
    thin = [f"{n} ({c})" for n, c in counts.items() if c < 2]
    if thin:
        raise ValueError(f"DFR needs at least 2 validation images in every group (one per "
                         f"half); {', '.join(thin)} have fewer")

    net = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
    own_head = split_head(net, head)
    net.set_train(False)
    print(f"dfr: embedding the training and validation images with {ckpt}", flush=True)
    train_x = training_logits(net, data, cfg.train.eval_batch_size)  # the head's input here
    _, train_y, train_g = data.arrays.train
    # training groups index group_names; map them to the validation sets' order
    order = {n: i for i, n in enumerate(names)}
    train_g = np.array([order[train_names[g]] for g in train_g])
    val_x, val_y, val_g = features(net, data.val)
    fit_idx, sel_idx = split_halves(val_g, seed)
    pool = (np.concatenate([train_x, val_x[fit_idx]]), np.concatenate([train_y, val_y[fit_idx]]),
            np.concatenate([train_g, val_g[fit_idx]]))
    result = dfr_fit(pool, (val_x[sel_idx], val_y[sel_idx], val_g[sel_idx]), data.num_classes,
                     seed, draws=args.draws)
    w_own = own_head.weight.asnumpy().astype(np.float64)
    b_own = own_head.bias.asnumpy().astype(np.float64)
    before = min(group_accuracies(val_x[sel_idx] @ w_own.T + b_own, val_y[sel_idx],
                                  val_g[sel_idx]).values())
    after = result.scores[result.picked]
    print(f"dfr: C {result.picked} picked from {json.dumps(result.scores)}; worst-group "
          f"accuracy on the selection half {100 * before:.2f} % (the run's head) -> "
          f"{100 * after:.2f} % (draws of {result.draw_size} images)", flush=True)

    # the source's network with the new head: a checkpoint like any run's
    model = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
    values = {p.name: p for p in model.get_parameters()}
    values[f"{head}.weight"].set_data(ms.Tensor(result.weight.astype(np.float32)))
    values[f"{head}.bias"].set_data(ms.Tensor(result.bias.astype(np.float32)))
    model.set_train(False)
    saved = read_run_state(ckpt)
    out_cfg = C.from_dict(cfg.to_dict())
    out_cfg["run_dir"], out_cfg["name"] = str(out), os.path.basename(str(out).rstrip(os.sep))
    with out.lock("dfr"):
        if args.overwrite:
            out.clear()
        out.create()
        C.save_config(out_cfg, out.file(out.CONFIG))
        out.write_json(out.DATA, data.info())
        with open(out.file(out.CONFIG)) as f:
            state = {"epoch": saved["epoch"], "step": saved["step"], "seed": seed,
                     "config": f.read(), "dfr": True}
        for name in ("best", "last"):
            ms.save_checkpoint(model, out.checkpoint(name),
                               append_dict={STATE_KEY: json.dumps(state)})
        records = []
        for split, sets in (("val", data.val), ("test", data.test)):
            result_split, _ = evaluate_by_severity(network_predictor(model), sets,
                                                   kind=data.arrays.group_kind)
            records.append({"epoch": saved["epoch"], "step": saved["step"], "split": split,
                            **result_split})
            print(f"[{split}, DFR head]\n{format_table(result_split)}")
        with open(out.file(out.EVAL_LOG), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        out.write_json(out.DFR, {
            "source_run": os.path.abspath(str(source)), "source_checkpoint": os.path.abspath(ckpt),
            "seed": seed, "grid": list(result.scores), "selection_worst_acc": result.scores,
            "picked_C": result.picked, "draws": args.draws, "draw_size": result.draw_size,
            "selection_worst_acc_own_head": before,
            "pool": {"training_images": len(train_y), "validation_fit_half": len(fit_idx),
                     "validation_selection_half": len(sel_idx)}})
        if args.export_mindir == "true":
            shape = (data.in_channels, data.image_size, data.image_size)
            path, diff = export_and_verify(model, shape, out.file(out.MODEL)[:-len(".mindir")])
            print(f"exported {path} (largest logit difference after reload {diff:.1e})")
        out.mark_done(f"dfr on {source} in {time.time() - start:.1f}s; C {result.picked}\n")
    print(f"done in {time.time() - start:.1f}s; results in {out}")
    return str(out)


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except (ValueError, C.ConfigError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
