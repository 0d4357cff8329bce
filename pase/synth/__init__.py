"""Synthetic speech corpora (espeak-ng) in the real LibriSpeech and TIMIT on-disk layouts.

They are the project's built-in demo data and its test data: recipes prepare them exactly as
they would the real corpora. Same arguments and seed -> byte-identical files.
"""
from pase.synth.espeak import (FEMALE_VARIANTS, MALE_VARIANTS, Phone, Speech, Voice,
                               find_library, phonemize, synthesize)
from pase.synth.librispeech import DEFAULT_SUBSETS, LibriSpeaker, make_librispeech
from pase.synth.text import SA_SENTENCES, Sentence, from_text, lexicon, random_sentence
from pase.synth.timit import (CORE_TEST_SPEAKERS, DEV_SPEAKERS, ESPEAK_TO_TIMIT, TIMIT_PHONES,
                              TimitSpeaker, make_timit, timit_alignment)

__all__ = ["CORE_TEST_SPEAKERS", "DEFAULT_SUBSETS", "DEV_SPEAKERS", "ESPEAK_TO_TIMIT",
           "FEMALE_VARIANTS", "LibriSpeaker", "MALE_VARIANTS", "Phone", "SA_SENTENCES", "Sentence",
           "Speech", "TIMIT_PHONES", "TimitSpeaker", "Voice", "find_library", "from_text",
           "lexicon", "make_librispeech", "make_timit", "phonemize", "random_sentence",
           "synthesize", "timit_alignment"]
