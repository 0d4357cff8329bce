"""Downstream utterance classification (speaker id, emotion, language, keywords) on PASE features.

Frozen features (pase-extract --feats_type pase, or the MFCC/fbank baselines), a fine-tuned
encoder, or a frozen one whose layers are mixed by learnt weights; the frame classifier of the
original's speaker-id and emotion scripts, or statistics pooling. Recipe: egs/TEMPLATE/cls1/cls.sh.
"""
from pase.cls.experiment import ClsRun, train_classifier
from pase.cls.features import LABELS, LabelError, class_inventory, load_features, read_classes, read_labels
from pase.cls.model import (POOLINGS, ClassifierError, ClassifierHead, FinetuneClassifier, HeadConfig,
                            build_finetune, load_classifier, save_classifier)
from pase.cls.train import (TrainOptions, fit, score_features, score_waveforms, sentence_decision,
                            train_finetune, train_frozen)

__all__ = [
    "LABELS", "POOLINGS", "ClassifierError", "ClassifierHead", "ClsRun", "FinetuneClassifier", "HeadConfig",
    "LabelError", "TrainOptions", "build_finetune", "class_inventory", "fit",
    "load_classifier", "load_features", "read_classes", "read_labels",
    "save_classifier", "score_features", "score_waveforms", "sentence_decision", "train_classifier",
    "train_finetune", "train_frozen",
]
