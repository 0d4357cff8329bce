"""Input/output: audio decoding, Kaldi data directories and Kaldi archives."""

from pase.io.audio import SAMPLE_RATE, audio_info, check_waveform, peak_normalize, read_audio
from pase.io.datadir import (
    DataDir,
    Utterance,
    copy_data_dir,
    read_kaldi_map,
    read_segments,
    utt2spk_to_spk2utt,
    write_kaldi_map,
)
from pase.io.errors import AudioError, DataDirError, PaseInputError
from pase.io.kaldi_ark import (ArkScpWriter, apply_cmvn, compute_cmvn_stats, iter_matrix_blocks,
                               write_matrix_ark_scp)

__all__ = [
    "SAMPLE_RATE",
    "ArkScpWriter",
    "AudioError",
    "DataDir",
    "DataDirError",
    "PaseInputError",
    "Utterance",
    "apply_cmvn",
    "audio_info",
    "check_waveform",
    "compute_cmvn_stats",
    "copy_data_dir",
    "iter_matrix_blocks",
    "peak_normalize",
    "read_audio",
    "read_kaldi_map",
    "read_segments",
    "utt2spk_to_spk2utt",
    "write_kaldi_map",
    "write_matrix_ark_scp",
]
