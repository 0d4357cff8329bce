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
    seed: int = 3,
) -> tuple[list[str], list[str]]:
    """Return ``(train_utt_ids, valid_utt_ids)``, each in data-dir order.

    ``num_valid_speakers`` (if given) or ``round(valid_fraction * speakers)``
    speakers, picked by a shuffle seeded with ``seed``, go to valid; each side
    keeps at least one speaker.
    """
    speakers = sorted(set(data.utt2spk.values()), key=lambda s: s.encode("utf-8"))
    if len(speakers) < 2:
        raise DataDirError(
            f"{data.path}: {len(speakers)} speaker(s); a speaker-held-out split needs at least 2"
        )
    if num_valid_speakers is None:
        if not 0 < valid_fraction < 1:
            raise PaseInputError(f"valid fraction must be in (0, 1), got {valid_fraction}")
        num_valid = min(max(round(valid_fraction * len(speakers)), 1), len(speakers) - 1)
    elif 1 <= num_valid_speakers < len(speakers):
        num_valid = num_valid_speakers
    else:
        raise PaseInputError(
            f"{data.path}: number of valid speakers must be in [1, {len(speakers) - 1}], "
            f"got {num_valid_speakers}"
        )
    order = np.random.default_rng(seed).permutation(len(speakers))
    valid_speakers = {speakers[k] for k in order[:num_valid]}
    train, valid = [], []
    for utt in data.utterances:
        (valid if utt.speaker in valid_speakers else train).append(utt.utt_id)
    return train, valid
