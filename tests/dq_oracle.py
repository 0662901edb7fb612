"""The paper's released DQ routine in its loop form, the oracle for `dqcl.dq.mmv_bins` (tests and perf)."""

import numpy as np
from scipy.spatial.distance import cdist


def released_routine(features, n_bins, ratio):
    """The paper's released DQ routine in its loop form (float64), kept as the oracle.

    The released code iterates ``list(set(...))``, whose order decides exact ties; here the
    remaining points are sorted, so ties go to the lower index (dqcl's documented rule).
    Away from exact ties the two are the same routine.
    """
    n = features.shape[0]
    all_indices = np.arange(n)
    dist = cdist(features, features, metric="sqeuclidean")
    sizes = [n // n_bins] * n_bins
    for i in range(n % n_bins):
        sizes[i] += 1
    bins, chosen = [], set()
    for b in range(n_bins):
        members = []
        remaining = sorted(set(all_indices) - chosen)
        first = remaining[int(np.argmin(np.sum(dist[remaining], axis=1)))]
        members.append(first)
        chosen.add(first)
        while len(members) < sizes[b]:
            remaining = sorted(set(all_indices) - chosen)
            if not remaining:
                break
            scores = [dist[i, members].mean() - dist[i].mean() for i in remaining]
            best = remaining[int(np.argmax(scores))]
            members.append(best)
            chosen.add(best)
        bins.append(np.array(members, dtype=int))
    coreset = np.unique(np.concatenate([b[: max(1, int(len(b) * ratio))] for b in bins]))
    return bins, coreset
