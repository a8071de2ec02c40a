"""Did-you-mean for config words: which known word a mistyped one most likely was.

A word is a likely typo of a known one when their edit distance (insertions, deletions,
substitutions and swaps of two neighbours, compared without regard to case) is small for
the known word's length: 1 up to 4 characters, 2 up to 9, 3 beyond. A word that differs
from a known one only in case is a typo too (OpenWrt's names are case-sensitive).
"""


def distance(a, b):
    """Edit distance with adjacent swaps (optimal string alignment), case-insensitive."""
    a, b = a.lower(), b.lower()
    if a == b:
        return 0
    prev2 = None
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if (i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]):
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[len(b)]


def _limit(known):
    n = len(known)
    return 1 if n <= 4 else 2 if n <= 9 else 3


def closest(word, known):
    """The known word `word` is most likely a typo of, or None. An exact match is no typo."""
    if not word or word in known:
        return None
    best, best_d = None, None
    for k in known:
        d = distance(word, k)
        if d <= _limit(k) and (best_d is None or d < best_d):
            best, best_d = k, d
    return best


def hint(word, known):
    """'; did you mean 'x'?' for a likely typo, else ''."""
    k = closest(word, known)
    return "; did you mean '%s'?" % k if k else ""
