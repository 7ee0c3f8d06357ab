"""Accuracy and loss at every severity: eval.jsonl, predictions.npz, a table, and the plot."""
import math
import time

import numpy as np
from mindspore.train import Callback
from scipy.special import log_softmax

from sharpdro.atomic import atomic_path
from sharpdro.config import METRICS

from .run_folder import RunFolder


PLURAL = {"severity": "severities", "group": "groups"}


def predict_set(predict, data, max_batches=0):
    """(predicted labels, true labels, summed negative log-likelihood) of one set."""
    preds, labels, nll = [], [], 0.0
    for x, y in data.batches(max_batches):
        logits = np.asarray(predict(x), np.float64)
        nll -= log_softmax(logits, axis=1)[np.arange(len(y)), y].sum()
        preds.append(logits.argmax(1))
        labels.append(y)
    return np.concatenate(preds).astype(np.int32), np.concatenate(labels).astype(np.int32), nll


def summarise(per_set, kind="severity"):
    """{group: (preds, labels, nll)} -> (result, predictions), see evaluate_by_severity."""
    acc, loss, count, predictions = {}, {}, {}, {}
    for s, (preds, labels, nll) in per_set.items():  # the groups' own order
        count[s] = len(labels)
        acc[s] = float((preds == labels).mean())
        loss[s] = float(nll) / len(labels)
        predictions[s] = (preds, labels)
    correct = sum(acc[s] * count[s] for s in acc)
    result = {"acc": acc, "loss": loss, "count": count,
              "mean_acc": sum(acc.values()) / len(acc), "worst_acc": min(acc.values()),
              "overall_acc": correct / max(sum(count.values()), 1), "group_kind": kind}
    return result, predictions


def evaluate_by_severity(predict, sets, max_batches=0, kind="severity"):
    """``predict``: float32 N x C x H x W array -> logits array; ``sets``: {group (a severity
    or a group name): set with ``batches(max_batches)`` of (images, labels)};
    ``max_batches`` > 0 evaluates only the first batches of each set (smoke runs); ``kind``:
    what a group is called in tables ("severity" or "group").

    Returns (result, predictions): result = {"acc": {s: ...}, "loss": {s: ...}, "count":
    {s: ...}, "mean_acc", "worst_acc", "group_kind"}; predictions = {s: (predicted, labels)}.
    """
    return summarise({s: predict_set(predict, data, max_batches) for s, data in sets.items()},
                     kind)


class ShardedSets:
    """Data parallel evaluation: rank ``rank`` evaluates its contiguous share of every set;
    ``combine`` gathers the predictions (rank order = set order) and sums the
    log-likelihoods, so every rank ends with the whole set's numbers."""

    def __init__(self, splits, rank, world_size):
        self.rank, self.world = rank, world_size
        self.full = splits
        self.shards = {}
        for split, sets in splits.items():
            self.shards[split] = {}
            for s, d in sets.items():
                self.shards[split][s] = d.shard(rank, world_size)
        if world_size > 1:
            from mindspore import ops

            self.all_gather, self.all_reduce = ops.AllGather(), ops.AllReduce()

    def combine(self, local):
        """{split: {s: (preds, labels, nll)}} of this rank -> the same for the whole sets."""
        if self.world == 1:
            return local
        import mindspore as ms

        keys = [(split, s) for split in sorted(local) for s in local[split]]  # same order on every rank
        nll = self.all_reduce(ms.Tensor(np.array([local[k[0]][k[1]][2] for k in keys],
                                                 np.float64).astype(np.float32))).asnumpy()
        out = {split: {} for split in local}
        for i, (split, s) in enumerate(keys):
            preds, labels, _ = local[split][s]
            width = -(-len(self.full[split][s]) // self.world)  # the longest share
            both = np.full((2, width), -1.0, np.float32)       # -1 pads a shorter share
            both[0, :len(preds)], both[1, :len(labels)] = preds, labels
            gathered = self.all_gather(ms.Tensor(both.reshape(1, 2, width))).asnumpy()
            keep = gathered[:, 1] >= 0
            out[split][s] = (gathered[:, 0][keep].astype(np.int32),
                             gathered[:, 1][keep].astype(np.int32), float(nll[i]))
        return out


def network_predictor(network):
    """A ``predict`` for a MindSpore cell (the network or a loaded MindIR GraphCell)."""
    import mindspore as ms

    return lambda x: network(ms.Tensor(x)).asnumpy()


def format_table(result):
    """Accuracy per group (columns as wide as the group names), mean and worst."""
    kind = result.get("group_kind", "severity")
    names = [str(s) for s in result["acc"]]
    widths = [max(6, len(n)) for n in names]
    first = max(len(kind), len("accuracy"))
    head = (f"{kind:<{first}} | " + " ".join(f"{n:>{w}}" for n, w in zip(names, widths))
            + " |   mean  worst")
    row = (f"{'accuracy':<{first}} | "
           + " ".join(f"{100 * a:{w}.2f}" for a, w in zip(result["acc"].values(), widths))
           + f" | {100 * result['mean_acc']:6.2f} {100 * result['worst_acc']:6.2f}")
    if kind != "severity":  # groups of the data differ in size: the overall accuracy too
        head += "  overall"
        row += f"  {100 * result['overall_acc']:7.2f}"
    return f"{head}\n{row}"


def markdown_table(result):
    kind = result.get("group_kind", "severity")
    levels = [str(s) for s in result["acc"]] + ["mean", "worst"]
    values = list(result["acc"].values()) + [result["mean_acc"], result["worst_acc"]]
    if kind != "severity":
        levels.append("overall")
        values.append(result["overall_acc"])
    return (f"| {kind} | " + " | ".join(levels) + " |\n"
            + "|---" * (len(levels) + 1) + "|\n"
            + "| accuracy (%) | " + " | ".join(f"{100 * v:.2f}" for v in values) + " |\n")


def save_predictions(path, predictions_by_split):
    arrays = {}
    for split, predictions in predictions_by_split.items():
        for s, (pred, label) in predictions.items():
            arrays[f"{split}_{s}_pred"], arrays[f"{split}_{s}_label"] = pred, label
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


class SeverityEval(Callback):
    """Every ``every`` epochs and after the last: each split at every severity, appended to
    ``eval.jsonl`` (epoch, step, split, accuracy and loss per severity, mean, worst), printed
    as a table with the time it took; the latest predictions in ``predictions.npz``; the
    validation ``best_metric`` offered to ``state``. Keeps ``state.eval_seconds`` (estimated from one batch before the
    first evaluation, then measured) for the progress ETA."""

    def __init__(self, network, splits, state, folder, best_metric="val_worst_acc",
                 max_batches=0, print_fn=print, rank=0, world_size=1, kind="severity"):
        """Data parallel (``world_size`` > 1): every rank evaluates its share of each set
        and the results are combined (faster than rank 0 alone: benchmarks/eval_sharding.py,
        numbers in benchmarks/README.md); only rank 0 writes or prints."""
        super().__init__()
        self.sharded = ShardedSets(splits, rank, world_size)
        self.writer = rank == 0
        print_fn = print_fn if self.writer else (lambda *a, **k: None)
        self.network, self.state, self.folder = network, state, folder
        self.splits = self.sharded.shards
        self.best_metric, self.max_batches = best_metric, max_batches
        self.print, self.kind = print_fn, kind
        self.last = {}

    def _predict(self):
        return network_predictor(self.network)

    def num_batches(self):
        return sum(data.num_batches(self.max_batches)
                   for sets in self.splits.values() for data in sets.values())

    def on_train_begin(self, run_context):
        if self.state.eval_seconds is not None:
            return
        # one batch, timed after a warm-up call (graph compilation), times the batch count
        data = next(iter(next(iter(self.splits.values())).values()))
        x, _ = next(data.batches(1))
        self.network.set_train(False)
        try:
            predict = self._predict()
            predict(x)
            start = time.time()
            predict(x)
            self.state.eval_seconds = (time.time() - start) * self.num_batches()
        finally:
            self.network.set_train(True)

    def on_train_epoch_end(self, run_context):
        args = run_context.original_args()
        epoch = args.cur_epoch_num
        if not (self.state.is_eval_epoch(epoch) or self.state.is_over(args)):
            return
        start = time.time()
        images = sum(min(len(d), self.sharded.world * d.batch_size * self.max_batches)
                     if self.max_batches else len(d)
                     for sets in self.sharded.full.values() for d in sets.values())
        self.print(f"evaluating after epoch {epoch}: {', '.join(self.splits)} at "
                   f"{len(next(iter(self.splits.values())))} {PLURAL.get(self.kind, self.kind)}, {images} images "
                   f"(about {self.state.eval_seconds or 0:.0f}s)", flush=True)
        self.network.set_train(False)
        try:
            predict = self._predict()
            local = {split: {s: predict_set(predict, data, self.max_batches)
                             for s, data in sets.items()} for split, sets in self.splits.items()}
        finally:
            self.network.set_train(True)
        predictions, combined = {}, self.sharded.combine(local)
        for split, per_set in combined.items():  # a model whose outputs are not finite
            for s, (_, _, nll) in per_set.items():
                if not math.isfinite(nll):  # is never the best and stops the run
                    raise FloatingPointError(
                        f"evaluation after epoch {epoch}: the {split} loss at "
                        f"{self.kind} {s} is {nll} (the model's outputs are not finite); "
                        "stopped before this epoch was recorded or saved")
        for split, per_set in combined.items():
            self.last[split], predictions[split] = summarise(per_set, self.kind)
            self.print(f"[{split} after epoch {epoch}]\n{format_table(self.last[split])}",
                       flush=True)
        if self.writer:
            for split, result in self.last.items():
                self.folder.append_jsonl(RunFolder.EVAL_LOG, {
                    "epoch": epoch, "step": self.state.step(args), "split": split, **result})
            save_predictions(self.folder.file(RunFolder.PREDICTIONS), predictions)
        spent = time.time() - start
        self.state.eval_seconds, self.state.eval_spent = spent, self.state.eval_spent + spent
        self.print(f"evaluation took {spent:.1f}s", flush=True)
        split, metric = METRICS[self.best_metric]
        if split in self.last and self.state.offer(self.last[split][metric], epoch):
            self.print(f"new best {self.best_metric} = {100 * self.state.best_value:.2f} "
                       f"at epoch {epoch}", flush=True)
