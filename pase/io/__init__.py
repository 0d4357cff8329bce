"""Input/output: audio decoding, Kaldi data directories and Kaldi archives."""

from pase.io.audio import SAMPLE_RATE, audio_info, check_waveform, peak_normalize, read_audio
from pase.io.datadir import (
    DataDir,
    Utterance,
    atomic_write,
    copy_data_dir,
    kaldi_map_lines,
    read_kaldi_map,
    read_segments,
    utt2spk_to_spk2utt,
    write_kaldi_map,
)
from pase.io.errors import AudioError, DataDirError, PaseInputError
from pase.io.kaldi_ark import (ArkScpWriter, apply_cmvn, compute_cmvn_stats, iter_matrix_blocks,
                               write_matrix_ark_scp)
from pase.io.speaker_maps import spk2utt_text_to_utt2spk, utt2spk_text_to_spk2utt
from pase.io.split import split_data_dir
from pase.io.subset import SUBSET_MODES, subset_data_dir
from pase.io.validate import fix_data_dir, validate_data_dir

__all__ = [
    "SAMPLE_RATE",
    "SUBSET_MODES",
    "ArkScpWriter",
    "AudioError",
    "DataDir",
    "DataDirError",
    "PaseInputError",
    "Utterance",
    "apply_cmvn",
    "atomic_write",
    "audio_info",
    "check_waveform",
    "compute_cmvn_stats",
    "copy_data_dir",
    "fix_data_dir",
    "iter_matrix_blocks",
    "kaldi_map_lines",
    "peak_normalize",
    "read_audio",
    "read_kaldi_map",
    "read_segments",
    "spk2utt_text_to_utt2spk",
    "split_data_dir",
    "subset_data_dir",
    "utt2spk_text_to_spk2utt",
    "utt2spk_to_spk2utt",
    "validate_data_dir",
    "write_kaldi_map",
    "write_matrix_ark_scp",
]
