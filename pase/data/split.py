"""Train/valid split of a data dir that holds out whole speakers.

The original split utterances at random, so valid speakers were also seen in
training; its README meant speakers to be held out, which is what a valid loss
for a speaker-independent encoder needs.
"""

from __future__ import annotations

import numpy as np

from pase.io import DataDir, DataDirError, PaseInputError


def split_by_speaker(
    data: DataDir,
    valid_fraction: float = 0.1,
    *,
    num_valid_speakers: int | None = None,
    min_speakers: int = 2,
    seed: int = 3,
) -> tuple[list[str], list[str]]:
    """Return ``(train_utt_ids, valid_utt_ids)``, each in data-dir order.

    ``num_valid_speakers`` (if given) or ``round(valid_fraction * speakers)`` speakers, picked
    by a shuffle seeded with ``seed``, go to valid. Each side keeps at least ``min_speakers``
    (the fraction is raised to it): Kaldi-style tools split a dir into jobs of whole speakers
    (``utils/split_data.sh N`` needs N of them), and a one-speaker valid loss measures one
    voice. A corpus with fewer than ``2 * min_speakers`` speakers is an error.
    """
    speakers = sorted(set(data.utt2spk.values()), key=lambda s: s.encode("utf-8"))
    if min_speakers < 1:
        raise PaseInputError(f"the fewest speakers per side must be at least 1, got {min_speakers}")
    if len(speakers) < 2 * min_speakers:
        raise DataDirError(
            f"{data.path}: {len(speakers)} speaker(s); a held-out-speaker split keeping at least "
            f"{min_speakers} on each side needs {2 * min_speakers} (lower --min_speakers)"
        )
    most = len(speakers) - min_speakers
    if num_valid_speakers is None:
        if not 0 < valid_fraction < 1:
            raise PaseInputError(f"valid fraction must be in (0, 1), got {valid_fraction}")
        num_valid = min(max(round(valid_fraction * len(speakers)), min_speakers), most)
    elif min_speakers <= num_valid_speakers <= most:
        num_valid = num_valid_speakers
    else:
        raise PaseInputError(
            f"{data.path}: number of valid speakers must be in [{min_speakers}, {most}] "
            f"({len(speakers)} speakers, at least {min_speakers} on each side), "
            f"got {num_valid_speakers}"
        )
    order = np.random.default_rng(seed).permutation(len(speakers))
    valid_speakers = {speakers[k] for k in order[:num_valid]}
    train, valid = [], []
    for utt in data.utterances:
        (valid if utt.speaker in valid_speakers else train).append(utt.utt_id)
    return train, valid


def holdout(utts: list[str], labels: dict[str, str], fraction: float) -> list[str]:
    """Per class, ``round(n * fraction)`` of its utterances spread evenly over them in ``utts``
    order: at least one when the class has two or more (and ``fraction`` > 0), never all of them,
    so every class keeps training data. Deterministic."""
    count: dict[str, int] = {}
    for u in utts:
        count[labels[u]] = count.get(labels[u], 0) + 1
    keep = {}
    for label, n in count.items():
        k = int(n * fraction + 0.5)
        if k < 1 and n > 1 and fraction > 0:
            k = 1
        keep[label] = min(k, n - 1)
    seen: dict[str, int] = {}
    held = []
    for u in utts:
        label = labels[u]
        i = seen.get(label, 0)
        seen[label] = i + 1
        n, k = count[label], keep[label]
        if (i + 1) * k // n > i * k // n:
            held.append(u)
    return held


def split_by_label(
    labels: dict[str, str],
    *,
    test_fraction: float = 0.2,
    dev_fraction: float = 0.1,
    lists: dict[str, list[str] | None] | None = None,
    where: str = "utt2label",
) -> dict[str, list[str]]:
    """Split labelled utterances into ``{"train", "dev", "test"}`` id lists (``labels`` order).

    A set given in ``lists`` is taken as is; test is otherwise ``test_fraction`` of each class,
    dev ``dev_fraction`` of each class of what neither test nor a given train list holds, and
    train the rest. Sets must not overlap, none may be empty, and every label needs training
    examples (a label only in dev or test could never be predicted).
    """
    lists = lists or {}
    utts = list(labels)
    for name, ids in lists.items():
        unknown = [u for u in ids or [] if u not in labels]
        if unknown:
            raise DataDirError(f"{name} list: utterance(s) not in {where}: {', '.join(unknown[:5])}")
    given = {name: set(ids) for name, ids in lists.items() if ids is not None}
    test = given.get("test") or set(holdout(utts, labels, test_fraction))
    taken = test | given.get("train", set())
    dev = given.get("dev") or set(holdout([u for u in utts if u not in taken], labels, dev_fraction))
    train = given.get("train") or {u for u in utts if u not in test and u not in dev}
    sets = {"train": train, "dev": dev, "test": test}
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        both = sorted(sets[a] & sets[b])
        if both:
            raise DataDirError(f"utterances in both the {a} and the {b} set, e.g. {', '.join(both[:5])}")
    for name, ids in sets.items():
        if not ids:
            raise DataDirError(f"the {name} set is empty (check the lists and fractions)")
    untrained = sorted(set(labels.values()) - {labels[u] for u in train})
    if untrained:
        raise DataDirError(f"label(s) without training examples: {', '.join(untrained[:5])} "
                           "(fix the lists or fractions)")
    return {name: [u for u in utts if u in ids] for name, ids in sets.items()}
