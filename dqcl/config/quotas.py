"""How many patches a memory budget keeps of each domain, and how many it can replay per step: plain
arithmetic on patch counts, shared by the strategies that keep the memory (`dqcl.train.rehearsal`), the
checks that refuse a budget before a run trains, and the leaderboard that checks a stored run held no more."""

from __future__ import annotations

__all__ = ["keep_count", "quotas", "shares", "supply_problem"]


def keep_count(n: int, rate: float) -> int:
    """How many of n samples a memory at ``rate`` keeps: max(1, int(n * rate)), as the paper's code does."""
    return min(n, max(1, int(n * rate)))


def quotas(size: int, rate: float, sizes: list[int]) -> list[int]:
    """Patches kept of each domain seen so far, given their patch counts.

    A size is shared equally among the domains seen (the first ones get the remainder), as
    Avalanche's experience-balanced buffer does; a domain smaller than its share keeps all of
    itself. A rate keeps ``keep_count(n, rate)`` of each domain."""
    if size <= 0:
        return [keep_count(n, rate) for n in sizes]
    k = len(sizes)
    return [min(n, s) for n, s in zip(sizes, shares(size, k))]


def shares(total: int, k: int) -> list[int]:
    """``total`` split into ``k`` near-equal whole parts, the first ones taking the remainder."""
    return [total // k + (1 if i < total % k else 0) for i in range(k)] if k > 0 else []


def supply_problem(size: int, rate: float, per_step: int, sizes: list[int], per_domain: bool) -> str | None:
    """Why a memory of ``size`` patches (or ``rate`` of each domain) over domains of ``sizes`` training
    patches, in training order, cannot give ``per_step`` memory samples in every step of every later
    experience, or None. Pooled draws (``per_domain`` false: replay by minibatch, ER, DER++) take
    ``per_step`` distinct samples from all of memory; per-domain draws (A-GEM, GEM) take ``shares``
    of ``per_step`` from each earlier domain, at least one from each."""
    for i in range(1, len(sizes)):
        held = quotas(size, rate, sizes[:i])
        if per_domain:
            if per_step < i:
                return (f"{per_step} memory sample(s) per step cannot hold one of each of the {i} earlier domains "
                        f"the experience {i + 1} replays")
            for j, (h, s) in enumerate(zip(held, shares(per_step, i))):
                if h < s:
                    return (f"experience {i + 1} draws {s} memory sample(s) per step of earlier domain {j + 1}, whose "
                            f"memory holds {h} patch(es)")
        elif sum(held) < per_step:
            return f"experience {i + 1} draws {per_step} memory samples per step from a memory of {sum(held)} patch(es)"
    return None
