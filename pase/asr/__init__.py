"""Hybrid HMM-DNN ASR from pip-installable Kaldi: lang, GMM-HMM, MLP acoustic model, decoding, scoring.

The pinned Kaldi bindings must be imported in this order: kaldi_hmm_gmm first (it was built
against kaldifst 1.7), kaldilm last (importing any of the others after kaldilm can deadlock in
their static initialisation). Importing them here, once, makes every `pase.asr` module safe
whatever it imports itself.
"""
import kaldi_hmm_gmm  # noqa: F401
import kaldifst  # noqa: F401
import kaldi_decoder  # noqa: F401
import kaldilm  # noqa: F401
