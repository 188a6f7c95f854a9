"""Look inside trained ``ff-virtual`` node runs (issue 7): why do some seeds fail?

For each run directory (a node-classification run with ``forward.variant:
ff-virtual``), loads the selected checkpoint and recomputes, from the same
candidate-class passes as prediction (class ``c``'s query edges to every node):

* accuracy on the training, validation and test nodes (the test and validation
  values must equal the run's ``final.json``: a check of the recomputation);
* how many test nodes are predicted as each class, beside the true counts;
* per layer: its own accuracy (argmax of that layer's goodness), the mean
  goodness of the test nodes under each candidate class, and, for attention
  backbones (``gat``, ``gatv2``), the mean attention a real node gives the
  query edge from class node ``c`` (its weight among the node's in-edges).

Prints a markdown table and writes JSON::

    python experiments/forward/inspect_ff_virtual.py /tmp/runs/fgrid/node_cora_random/gat-L2-ff-virtual_s{0,1,2,3,4} \\
        --root ../shared/data --json experiments/results/forward/inspect_ff_virtual/cora_random.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from graphlearn.tasks.node import accuracy
from graphlearn.train import load_run
from graphlearn.train.utils import git_commit

REPO = Path(__file__).resolve().parents[2]
ATTENTION_BACKBONES = ("gat", "gatv2")


def _query_attention(layer: torch.nn.Module, x: torch.Tensor, edge_index: torch.Tensor,
                     num_nodes: int, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's raw output and ``[N]``: each real node's attention on the query edge
    from class node ``N + c``."""
    out, (edges, alpha) = layer(x, edge_index, return_attention_weights=True)
    alpha = alpha.reshape(alpha.size(0), -1).mean(-1)  # mean over heads (one head here)
    query = (edges[0] == num_nodes + c) & (edges[1] < num_nodes)
    weights = x.new_zeros(num_nodes)
    weights[edges[1][query]] = alpha[query]
    return out, weights


def inspect(path: str | Path, root: str | None = None, data: Any = None) -> dict[str, Any]:
    """The numbers above for one run directory, as a JSON-ready dict."""
    run, task, stack = load_run(path, root=root, data=data)
    cfg = run.config()
    if cfg.task != "node" or cfg.forward.variant != "ff-virtual":
        raise ValueError(f"{path}: not a node ff-virtual run (task {cfg.task!r}, "
                         f"variant {cfg.forward.variant!r})")
    graph, objective = task.graph(), task.objective
    y, num_nodes = graph.y, graph.y.size(0)
    num_classes = int(task.num_classes())
    attention = cfg.forward.backbone in ATTENTION_BACKBONES
    with torch.no_grad():
        total, per_layer = objective.class_scores(stack, graph)  # the scores prediction uses
        goodness = torch.stack(per_layer)  # (L, N, C)
        if attention:  # the passes again, layer by layer, reading each layer's attention
            weights = torch.zeros(len(stack.layers), num_nodes, num_classes)
            for c in range(num_classes):
                h, edge_index = objective.class_graph(stack, graph, c)
                for index, layer in enumerate(stack.layers):
                    out, weights[index, :, c] = _query_attention(
                        layer, stack.prepare_input(h), edge_index, num_nodes, c)
                    h = stack.activation(out)
                    # this copy of the stack's layer_forward must give the scores prediction uses
                    if not torch.allclose(objective.layer_scores([h], graph)[:, 0],
                                          goodness[index, :, c], atol=1e-5):
                        raise RuntimeError(f"{path}: the attention pass of layer {index}, "
                                           f"class {c} differs from the stack's own pass")
    masks = {"train": graph.train_mask, "valid": graph.val_mask, "test": graph.test_mask}
    test = masks["test"]
    predicted = total.argmax(-1)
    final = json.loads((Path(path) / "final.json").read_text())
    return {
        "run": str(path),
        "backbone": cfg.forward.backbone,
        "class_members": cfg.forward.class_members,
        "seed": cfg.train.seed,
        "selected_epoch": final.get("selected_epoch"),
        "accuracy": {name: accuracy(total, y, mask) for name, mask in masks.items()},
        "final_json_accuracy": {name: final[name]["accuracy"] for name in ("valid", "test")},
        "test_predicted_per_class": torch.bincount(predicted[test], minlength=num_classes).tolist(),
        "test_true_per_class": torch.bincount(y[test], minlength=num_classes).tolist(),
        "layers": [{
            "accuracy": {name: accuracy(goodness[index], y, mask) for name, mask in masks.items()},
            "test_goodness_per_class": goodness[index][test].mean(0).tolist(),
            "query_attention_per_class": weights[index].mean(0).tolist() if attention else None,
        } for index in range(len(stack.layers))],
    }


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def table(results: list[dict[str, Any]]) -> str:
    header = ("| run | members | train acc | valid acc | test acc "
              "| test predicted / true per class | layer 0 query attention per class |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in results:
        a = r["accuracy"]
        attention = r["layers"][0]["query_attention_per_class"]
        counts = " ".join(f"{p}/{t}" for p, t in zip(r["test_predicted_per_class"],
                                                      r["test_true_per_class"]))
        lines.append(f"| {Path(r['run']).name} | {r['class_members']} | {a['train']:.3f} "
                     f"| {a['valid']:.3f} | {a['test']:.3f} | {counts} "
                     f"| {_fmt(attention) if attention is not None else '—'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="ff-virtual node run directories")
    parser.add_argument("--root", help="data root overriding the runs' data.root")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for path in args.runs:
        result = inspect(path, root=args.root)
        for name, value in result["final_json_accuracy"].items():
            if abs(value - result["accuracy"][name]) > 1e-6:
                print(f"{path}: recomputed {name} accuracy {result['accuracy'][name]:.4f} "
                      f"differs from final.json's {value:.4f}", file=sys.stderr)
                return 1
        results.append(result)
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": ["python", *sys.argv], "git_commit": git_commit(REPO),
                   "runs": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
