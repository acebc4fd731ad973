"""The plot of per-event latency against the number of plugins (matplotlib)."""

from __future__ import annotations

from collections.abc import Mapping


def matplotlib_unavailable() -> str | None:
    """Why no plot can be drawn here, or ``None`` when matplotlib imports."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib not installed (pip install -e '.[bench]')"
    return None


def plot_sweep(sweep: Mapping[str, Mapping[int, float]], path: str, title: str) -> None:
    """Draw median latency per event (log scale) for each contender and save it.

    ``sweep`` maps a contender name to {number of plugins: median in us}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5), layout="constrained")
    for name, points in sweep.items():
        sizes = sorted(points)
        style = "-o" if name == "rigger_sandbox" else "--s"
        width = 2.5 if name == "rigger_sandbox" else 1.2
        axes.plot(sizes, [points[n] for n in sizes], style, label=name, lw=width)
    sizes = sorted({n for points in sweep.values() for n in points})
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(n) for n in sizes])
    axes.set_yscale("log")
    axes.set_xlabel("plugins handling the event (threaded)")
    axes.set_ylabel("median latency per event (us, log scale)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.savefig(path, dpi=120)
    plt.close(figure)
