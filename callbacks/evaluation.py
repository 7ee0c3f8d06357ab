"""Accuracy and loss at every severity, appended to eval.jsonl."""
import json

from mindspore.train import Callback


def evaluate_by_severity(model, sets):
    """{severity: dataset} -> {"acc": {s: ...}, "loss": {s: ...}, "mean_acc", "worst_acc"}."""
    acc, loss = {}, {}
    for s, data in sorted(sets.items()):
        metrics = model.eval(data, dataset_sink_mode=False)
        acc[s], loss[s] = float(metrics["acc"]), float(metrics["loss"])
    return {"acc": acc, "loss": loss, "mean_acc": sum(acc.values()) / len(acc),
            "worst_acc": min(acc.values())}


def format_table(result):
    head = "severity | " + " ".join(f"{s:>6}" for s in result["acc"]) + " |   mean  worst"
    row = "accuracy | " + " ".join(f"{100 * a:6.2f}" for a in result["acc"].values())
    return f"{head}\n{row} | {100 * result['mean_acc']:6.2f} {100 * result['worst_acc']:6.2f}"


class SeverityEval(Callback):
    """Every ``every`` epochs (and at the end): evaluate each split at every severity."""

    def __init__(self, model, splits, every, path, print_fn=print):
        super().__init__()
        self.model, self.splits, self.every, self.path = model, splits, every, path
        self.print = print_fn
        self.last = {}

    def on_train_epoch_end(self, run_context):
        args = run_context.original_args()
        epoch = args.cur_epoch_num
        if epoch % self.every and epoch != args.epoch_num:
            return
        for split, sets in self.splits.items():
            result = evaluate_by_severity(self.model, sets)
            self.last[split] = result
            with open(self.path, "a") as f:
                f.write(json.dumps({"epoch": epoch, "split": split, **result}) + "\n")
            self.print(f"[{split} after epoch {epoch}]\n{format_table(result)}", flush=True)
