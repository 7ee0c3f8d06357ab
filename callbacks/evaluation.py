"""Accuracy and loss at every severity: eval.jsonl, predictions.npz, a table, and the plot."""
import json
import os

import numpy as np
from mindspore.train import Callback

from sharpdro.atomic import atomic_path

from .plots import plot_accuracy_by_severity


def evaluate_by_severity(predict, sets):
    """``predict``: float32 N x C x H x W array -> logits array; ``sets``: {severity: set with
    ``batches()`` of (images, labels)}.

    Returns (result, predictions): result = {"acc": {s: ...}, "loss": {s: ...}, "count":
    {s: ...}, "mean_acc", "worst_acc"}; predictions = {s: (predicted, labels)}.
    """
    acc, loss, count, predictions = {}, {}, {}, {}
    for s, data in sorted(sets.items()):
        preds, labels, nll = [], [], 0.0
        for x, y in data.batches():
            logits = np.asarray(predict(x), np.float64)
            shifted = logits - logits.max(1, keepdims=True)
            log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
            nll -= log_softmax[np.arange(len(y)), y].sum()
            preds.append(logits.argmax(1))
            labels.append(y)
        preds, labels = np.concatenate(preds), np.concatenate(labels)
        count[s] = len(labels)
        acc[s] = float((preds == labels).mean())
        loss[s] = nll / len(labels)
        predictions[s] = (preds.astype(np.int32), labels.astype(np.int32))
    result = {"acc": acc, "loss": loss, "count": count,
              "mean_acc": sum(acc.values()) / len(acc), "worst_acc": min(acc.values())}
    return result, predictions


def network_predictor(network):
    """A ``predict`` for a MindSpore cell (the network or a loaded MindIR GraphCell)."""
    import mindspore as ms

    return lambda x: network(ms.Tensor(x)).asnumpy()


def format_table(result):
    head = "severity | " + " ".join(f"{s:>6}" for s in result["acc"]) + " |   mean  worst"
    row = "accuracy | " + " ".join(f"{100 * a:6.2f}" for a in result["acc"].values())
    return f"{head}\n{row} | {100 * result['mean_acc']:6.2f} {100 * result['worst_acc']:6.2f}"


def markdown_table(result):
    levels = [str(s) for s in result["acc"]]
    values = list(result["acc"].values()) + [result["mean_acc"], result["worst_acc"]]
    return ("| severity | " + " | ".join(levels + ["mean", "worst"]) + " |\n"
            + "|---" * (len(levels) + 3) + "|\n"
            + "| accuracy (%) | " + " | ".join(f"{100 * v:.2f}" for v in values) + " |\n")


def save_predictions(path, predictions_by_split):
    arrays = {}
    for split, predictions in predictions_by_split.items():
        for s, (pred, label) in predictions.items():
            arrays[f"{split}_{s}_pred"], arrays[f"{split}_{s}_label"] = pred, label
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def keep_lines(path, keep):
    """Rewrite a JSON-lines file keeping the records for which ``keep(record)`` holds."""
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records if keep(r))


class SeverityEval(Callback):
    """Every ``every`` epochs and after the last: each split at every severity, appended to
    ``eval.jsonl`` (epoch, split, accuracy and loss per severity, mean, worst), printed as a
    table; the latest predictions in ``predictions.npz``; the validation ``best_metric``
    offered to ``state``; ``plots/accuracy_by_severity.png`` at the end of the run."""

    def __init__(self, network, splits, state, every, run_dir, best_metric="val_worst_acc",
                 resume_epoch=None, print_fn=print):
        super().__init__()
        self.network, self.splits, self.state, self.every = network, splits, state, every
        self.best_metric = best_metric
        self.path = os.path.join(run_dir, "eval.jsonl")
        self.predictions_path = os.path.join(run_dir, "predictions.npz")
        self.plot_path = os.path.join(run_dir, "plots", "accuracy_by_severity.png")
        self.print = print_fn
        if resume_epoch is not None and os.path.isfile(self.path):
            keep_lines(self.path, lambda r: r["epoch"] <= resume_epoch)
        elif os.path.exists(self.path):
            os.remove(self.path)
        self.last = {}

    def on_train_epoch_end(self, run_context):
        args = run_context.original_args()
        epoch = args.cur_epoch_num
        if epoch % self.every and not self.state.is_over(args):
            return
        self.network.set_train(False)
        try:
            predictions = {}
            for split, sets in self.splits.items():
                result, predictions[split] = evaluate_by_severity(network_predictor(self.network), sets)
                self.last[split] = result
                with open(self.path, "a") as f:
                    f.write(json.dumps({"epoch": epoch, "step": self.state.step(args),
                                        "split": split, **result}) + "\n")
                self.print(f"[{split} after epoch {epoch}]\n{format_table(result)}", flush=True)
        finally:
            self.network.set_train(True)
        save_predictions(self.predictions_path, predictions)
        split, metric = self.best_metric.split("_", 1)
        if split in self.last and self.state.offer(self.last[split][metric], epoch):
            self.print(f"new best {self.best_metric} = {100 * self.state.best_value:.2f} "
                       f"at epoch {epoch}", flush=True)

    def on_train_end(self, run_context):
        if self.state.is_over(run_context.original_args()):
            plot_accuracy_by_severity(self.path, self.plot_path)
