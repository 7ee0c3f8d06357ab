"""eval.py's accuracy mode: accuracy per severity or group on the run's test set, or on
other images (--data) with the run's preprocessing: a table, and <prefix>.json/.md."""
import os
import sys

from .entry import (contract_predictor, contract_set, input_contract, make_parent,
                    model_source, output_prefix, predictor, write_json)


def read_other_data(path, info, cfg):
    """A folder or metadata CSV read with the run's input contract ``info`` ->
    (Split, group names or None); classes are matched by name."""
    from datasets.folders import read_eval_data

    return read_eval_data(path, info["class_names"], info["image_size"], info["channels"],
                          cfg.data.cache_dir, cfg.data.columns, cfg.data.skip_unreadable)


def other_data(args, cfg):
    """eval.py --data: ({group name: EvalSet}, kind, output split name, predict) with the
    run's preprocessing; one set "all" where the data has no groups."""
    info = input_contract(args, cfg)
    split, names = read_other_data(args.data, info, cfg)
    groups = [("all", slice(None))] if names is None else [
        (name, split.groups == g) for g, name in enumerate(names)]
    make_set = contract_set(info, cfg.train.eval_batch_size)
    sets = {name: make_set(split.images[idx], split.labels[idx]) for name, idx in groups}
    print(f"{args.data}: {len(split)} images, {len(sets)} group(s)", flush=True)
    name = os.path.splitext(os.path.basename(os.path.normpath(args.data)))[0]
    return sets, "group", f"data_{name}", contract_predictor(args, cfg, info)


def run_test_sets(args, cfg):
    """The run's test sets: ({severity or group: EvalSet}, kind, "test", predict)."""
    from datasets import build_data

    data = build_data(cfg)
    image_shape = (data.in_channels, data.image_size, data.image_size)
    return (data.test, data.arrays.group_kind, "test",
            predictor(args, cfg, data.num_classes, image_shape))


def write_accuracy(out, result, source, data, kind):
    """<out>.json (the result, with the model file and the data) and <out>.md (the table)."""
    from sharpdro.atomic import atomic_path

    from .evaluation import markdown_table

    what = f"Accuracy on {data}" if data else "Test accuracy"
    write_json(out + ".json", {"source": source, "data": data or "test", **result})
    with atomic_path(out + ".md") as tmp, open(tmp, "w") as f:
        f.write(f"{what} by {kind} ({source})\n\n" + markdown_table(result))
    print(f"written: {out}.json, {out}.md")


def evaluate_accuracy(args, cfg):
    """Accuracy per severity or group, printed as a table and written to the run folder's
    evals/test_<model>.json/.md (or data_<name>_<model> for --data; or --out PREFIX)."""
    from datasets.readers import DatasetNotFoundError

    from .evaluation import evaluate_by_severity, format_table

    try:
        sets, kind, split, predict = other_data(args, cfg) if args.data else run_test_sets(args, cfg)
    except (ValueError, DatasetNotFoundError) as err:
        sys.exit(f"error: {err}")
    result, _ = evaluate_by_severity(predict, sets, kind=kind)
    print(format_table(result))
    source = model_source(args)
    write_accuracy(make_parent(output_prefix(args, source, split)), result, source, args.data, kind)
    return result
