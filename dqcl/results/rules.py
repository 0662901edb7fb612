"""Claims as rules fixed before their runs (`benchmarks/claims/*.toml`), and the one way a rule decides.

A rule file names a claim's deciding contrast, its baseline arm(s), the side of a threshold the claim
is on, the equivalence margin and the fewest seeds a verdict needs. `decide` reads the contrast's
values, one per seed, against it:

- **supported**: the 95 % t-interval lies beyond the threshold on the claim's side (the lower bound
  above it for ``side = "greater"``, the upper bound below it for ``"less"``);
- **contradicted**: the interval lies on the other side, or wholly within ``margin`` of the threshold
  (an effect too small to be the claim's, where a margin is set);
- **undecided**: neither, or fewer seeds than ``min_seeds``; the outcome then says how many seeds the
  observed spread would need for the interval to clear the threshold (or to fit inside the margin).

Beside it, an exact sign-flip p-value of the values' difference from the threshold
(`dqcl.results.compare.sign_flip_p`); a "supported" or "contradicted" that it does not reach at 0.05
is marked "t only". Each rule is shown with the SHA-256 of its file and whether the file, as it is
now, was committed (git) before the first run it reads: if not, the claim is "post hoc".
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .compare import sign_flip_p
from .stats import Summary, summarise

__all__ = ["Rule", "Outcome", "load_rules", "rule_of", "decide", "fixed_before", "seeds_needed", "pattern_outcome"]

SIDES = ("greater", "less", "pattern")


def _rules_folder() -> Path:
    """The shipped rules: ``benchmarks/claims`` (installed as ``dqcl.specs/claims``)."""
    from importlib import resources

    return Path(str(resources.files("dqcl.specs") / "claims"))


@dataclass(frozen=True)
class Rule:
    name: str  # the file's stem
    path: Path
    digest: str  # SHA-256 of the file's bytes
    claim: str
    kind: str
    study: str
    contrast: str
    baseline: tuple[str, ...]
    side: str
    threshold: float
    margin: float
    min_seeds: int
    extra: dict[str, Any] = field(default_factory=dict)  # the kind's own keys (arm, rate, generalist, hypotheses, ...)

    def describe(self) -> str:
        """The rule in words, for the Claims table."""
        read = {"greater": f"lower bound > {self.threshold:g}", "less": f"upper bound < {self.threshold:g}",
                "pattern": "each contrast's interval against its predicted sign"}[self.side]
        margin = f"; equivalence margin ±{self.margin:g}" if self.margin else ""
        return (f"{self.name}.toml (sha256 {self.digest[:12]}): {read} of the 95 % interval{margin}; baseline "
                f"{' / '.join(self.baseline)}; at least {self.min_seeds} seeds")


@lru_cache(maxsize=None)
def load_rules(folder: str | None = None) -> tuple[Rule, ...]:
    """The rules in ``folder`` (default: the shipped ``benchmarks/claims``), by file name."""
    root = Path(folder) if folder else _rules_folder()
    out = []
    for path in sorted(root.glob("*.toml")):
        data = path.read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
        known = {"claim", "kind", "study", "contrast", "baseline", "side", "threshold", "margin", "min_seeds"}
        side = raw["side"]
        if side not in SIDES:
            raise ValueError(f"{path}: side must be one of {', '.join(SIDES)}, got {side!r}")
        out.append(Rule(path.stem, path, hashlib.sha256(data).hexdigest(), raw["claim"], raw["kind"], raw["study"],
                        raw["contrast"], tuple(raw["baseline"]), side, float(raw["threshold"]), float(raw["margin"]),
                        int(raw["min_seeds"]), {k: v for k, v in raw.items() if k not in known}))
    return tuple(out)


def rule_of(kind: str, **extra: Any) -> Rule | None:
    """The shipped rule of ``kind`` whose own keys hold ``extra`` (a replay rule's ``rate``), or None."""
    for rule in load_rules():
        if rule.kind == kind and all(rule.extra.get(k) == v for k, v in extra.items()):
            return rule
    return None


@lru_cache(maxsize=None)
def committed_at(path: str, digest: str) -> float | None:
    """When the file at ``path``, with its present content, was first committed (git's commit time), or
    None: not in a git checkout, or never committed as it is now."""
    p = Path(path)
    try:
        top = subprocess.run(["git", "-C", str(p.parent), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        rel = p.resolve().relative_to(Path(top).resolve()).as_posix()
        log = subprocess.run(["git", "-C", top, "log", "--format=%H %ct", "--", rel], capture_output=True, text=True,
                             timeout=10, check=True).stdout.split("\n")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    first = None
    for line in log:  # newest first: the oldest commit whose content is the present one
        if not line.strip():
            continue
        commit, when = line.split()
        blob = subprocess.run(["git", "-C", top, "show", f"{commit}:{rel}"], capture_output=True, timeout=10).stdout
        if hashlib.sha256(blob).hexdigest() == digest:
            first = float(when)
    return first


def fixed_before(rule: Rule, first_run: float | None) -> str:
    """"fixed before its runs", or "post hoc" (the file, as it is now, was committed after the first run it
    reads, or never), or "no runs yet"."""
    if first_run is None:
        return "no runs yet"
    when = committed_at(str(rule.path), rule.digest)
    if when is None:
        return "post hoc (the rule file, as it is, is not committed)"
    return "fixed before its runs" if when <= first_run else "post hoc (the rule was committed after its first run)"


def seeds_needed(s: Summary, distance: float, cap: int = 1000) -> int | None:
    """The fewest seeds at which a 95 % t-interval of this spread would be narrower on each side than
    ``distance`` (None: ``distance`` <= 0, or more than ``cap``)."""
    from scipy.special import stdtrit

    if distance <= 0 or not math.isfinite(s.std):
        return None
    if s.std == 0:
        return 2
    for n in range(2, cap + 1):
        if float(stdtrit(n - 1, 0.975)) * s.std / math.sqrt(n) < distance:
            return n
    return None


@dataclass(frozen=True)
class Outcome:
    verdict: str  # supported, contradicted, undecided
    summary: Summary | None
    why: str  # what decided it
    p_flip: float  # exact sign-flip p-value of the values against the threshold
    robust: str  # "sign-flip agrees", "t only", or "" where no verdict was reached

    def text(self) -> str:
        return f"**{self.verdict}** ({self.why}; {self.robust})" if self.robust else f"**{self.verdict}** ({self.why})"


def decide(values: dict[int, float], rule: Rule, side: str | None = None, threshold: float | None = None) -> Outcome:
    """The outcome of ``values`` (one per seed) under ``rule`` (``side`` and ``threshold`` override the rule's:
    a pattern rule reads each of its contrasts against a sign)."""
    side = side or rule.side
    thr = rule.threshold if threshold is None else threshold
    s = summarise(values.values())
    if s is None or s.n < 2:
        return Outcome("undecided", s, f"{0 if s is None else s.n} seed(s), fewer than 2", 1.0, "")
    p = sign_flip_p([v - thr for v in values.values()])
    beyond = s.lo > thr if side == "greater" else s.hi < thr
    other = s.hi < thr if side == "greater" else s.lo > thr
    inside = rule.margin > 0 and thr - rule.margin < s.lo and s.hi < thr + rule.margin
    few = s.n < rule.min_seeds
    if few:
        verdict, why = "undecided", f"{s.n} seeds, fewer than the rule's {rule.min_seeds}"
    elif beyond:
        verdict, why = "supported", "the interval clears the threshold on the claim's side"
    elif other:
        verdict, why = "contradicted", "the interval lies on the other side of the threshold"
    elif inside:
        verdict, why = "contradicted", f"the interval lies within ±{rule.margin:g} of the threshold"
    else:
        verdict, why = "undecided", "the interval crosses the threshold"
    if verdict == "undecided":
        gap = abs(s.mean - thr)
        need = min((n for n in (seeds_needed(s, gap), seeds_needed(s, rule.margin - gap) if rule.margin else None) if n),
                   default=None)
        why += f"; at this spread about {need} seeds would decide it" if need else "; no number of seeds at this mean would decide it"
        return Outcome(verdict, s, why, p, f"sign-flip p {p:.2g}")
    return Outcome(verdict, s, why, p, "sign-flip agrees" if p < 0.05 or verdict == "contradicted" and inside
                   else f"t only: sign-flip p {p:.2g}")


def _sign(values: dict[int, float], sign: str, margin: float) -> str:
    """Whether a contrast meets a predicted sign: "met", "violated" or "unclear". "+" (or "-") is met where
    the interval's lower bound is above 0 (its upper bound below 0) and violated where it lies on the other
    side of 0 or wholly within ``margin`` of it; "0" is met where the interval lies wholly within ``margin``
    of 0 and violated where it excludes 0."""
    s = summarise(values.values())
    if s is None or s.n < 2:
        return "unclear"
    within = -margin < s.lo and s.hi < margin
    if sign == "0":
        return "met" if within else "violated" if s.lo > 0 or s.hi < 0 else "unclear"
    up = sign == "+"
    if (s.lo > 0) if up else (s.hi < 0):
        return "met"
    return "violated" if ((s.hi < 0) if up else (s.lo > 0)) or within else "unclear"


def pattern_outcome(contrasts: list[dict[int, float]], rule: Rule) -> dict[str, str]:
    """Each hypothesis of a pattern rule (``hypotheses``: name -> a predicted sign per contrast): supported
    where every contrast meets its sign, contradicted where one violates it, undecided otherwise, and
    undecided below the rule's fewest seeds whatever the contrasts show."""
    n = min((len(c) for c in contrasts), default=0)
    out = {}
    for name, signs in rule.extra["hypotheses"].items():
        seen = [_sign(c, sign, rule.margin) for c, sign in zip(contrasts, signs)]
        if n < rule.min_seeds:  # below its fewest seeds a claim is neither supported nor contradicted
            out[name] = f"undecided ({n} seeds, fewer than {rule.min_seeds})"
        elif "violated" in seen:
            out[name] = "contradicted"
        else:
            out[name] = "supported" if all(x == "met" for x in seen) else "undecided"
    return out
