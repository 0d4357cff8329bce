"""Hybrid HMM-DNN ASR from pip-installable Kaldi: lang, GMM-HMM, MLP acoustic model, decoding, scoring."""
