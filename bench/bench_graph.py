"""A residual MLP as a graph against the same layers without skip connections as a
Sequential (issue 14's target: at most 1.1x the Sequential's epoch), in alternating rounds
in one process. The residual MLP: Dense(512) then 4 blocks of Dense(512) -> BatchNorm ->
ReLU -> Dropout(0.1) -> Dense(512), each added back to its input, then Dense(10, softmax);
Adam, batch 128, MNIST-shaped random data.

    python bench/bench_graph.py            # 20,000 rows, 5 rounds
    python bench/bench_graph.py --rows 60000 --rounds 7
"""
import argparse
import json
import statistics
import time

from common import (machine_description, markdown_table, mnist_like, print_header,
                    residual_mlp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    machine = machine_description()
    print_header(machine)
    x, y = mnist_like(args.rows)
    models = {"graph": residual_mlp(), "sequential": residual_mlp(skips=False)}
    for m in models.values():
        m.fit(x[:1024], y[:1024], batch_size=128, verbose=0)  # warm-up: buffers, packing
    ratios = []
    for r in range(args.rounds):
        times = {}
        for name in (("graph", "sequential") if r % 2 == 0 else ("sequential", "graph")):
            t0 = time.perf_counter()
            models[name].fit(x, y, batch_size=128, epochs=1, verbose=0)
            times[name] = time.perf_counter() - t0
        ratios.append(times["graph"] / times["sequential"])
        print(f"round {r + 1}: graph {times['graph']:.2f} s, sequential {times['sequential']:.2f} s, "
              f"ratio {ratios[-1]:.3f}", flush=True)
    result = {"machine": machine, "rows": args.rows,
              "ratio_median": statistics.median(ratios), "ratios": ratios}
    print(json.dumps(result))
    print()
    print(markdown_table(["", "median over rounds", "range", "target"],
                         [["residual graph / plain Sequential epoch",
                           f"{result['ratio_median']:.3f}x",
                           f"{min(ratios):.3f}-{max(ratios):.3f}x", "<= 1.1x"]]))


if __name__ == "__main__":
    main()
