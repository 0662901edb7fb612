import logging
import warnings

warnings.filterwarnings("ignore")
logging.getLogger("cellpose").setLevel(logging.ERROR)


def report(benchmark, name: str, ratio: float, target: float, detail: str) -> None:
    """Print a speed ratio against its goal and keep it in the benchmark's JSON."""
    verdict = "meets" if ratio >= target else f"MISSES (by {target - ratio:.2f})"
    line = f"[perf] {name}: ratio {ratio:.2f} (goal >= {target}) {verdict}; {detail}"
    print("\n" + line)
    benchmark.extra_info.update({"ratio": ratio, "goal": target, "detail": detail})
