"""Classification metrics for the five-class tagger: per-class ROC and AUC, accuracy, confusion.

Each class's ROC curve is one-versus-rest on that class's softmax score (the
reference's figures); the AUC is the trapezoidal area, equal to the
Mann-Whitney probability that a jet of the class outscores one of another
class (ties count one half).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from erumlab.science.ising import downsample_curve, roc_auc, roc_curve


def accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=1) == np.asarray(labels)))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int,
                     normalise: bool = True) -> np.ndarray:
    """Rows: true class, columns: predicted class (fractions of each row when normalised)."""
    matrix = np.zeros((classes, classes), dtype=np.float64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predicted)), 1.0)
    if normalise:
        rows = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    return matrix


def per_class_roc(labels: np.ndarray, scores: np.ndarray
                  ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """One-versus-rest (false positive rate, true positive rate, AUC) for every class."""
    labels = np.asarray(labels)
    out = []
    for c in range(scores.shape[1]):
        positive = labels == c
        fpr, tpr = roc_curve(positive, scores[:, c])
        out.append((fpr, tpr, roc_auc(positive, scores[:, c])))
    return out


def summary(labels: np.ndarray, scores: np.ndarray, class_names: list[str] | tuple[str, ...]
            ) -> dict[str, Any]:
    """Accuracy, per-class AUC and the normalised confusion matrix as JSON-ready values."""
    rocs = per_class_roc(labels, scores)
    return {"accuracy": accuracy(labels, scores),
            "auc": {name: auc for name, (_, _, auc) in zip(class_names, rocs, strict=True)},
            "confusion": confusion_matrix(labels, np.argmax(scores, axis=1),
                                          len(class_names)).tolist()}


def zoo_metrics(labels: np.ndarray, scores: np.ndarray,
                class_names: list[str] | tuple[str, ...], what: str) -> list[dict[str, Any]]:
    """The zoo's metric records: accuracy, then each class's AUC with its ROC curve."""
    n = int(len(labels))
    records: list[dict[str, Any]] = [
        {"name": "accuracy", "value": accuracy(labels, scores), "unit": "",
         "description": f"Fraction of {n} held-out test jets whose class (arg-max of the "
                        f"{what} outputs) is correct.", "curve": None}]
    for name, (fpr, tpr, auc) in zip(class_names, per_class_roc(labels, scores), strict=True):
        x, y = downsample_curve(fpr, tpr)
        records.append({
            "name": f"auc_{name}", "value": auc, "unit": "",
            "description": f"Area under the one-versus-rest ROC curve of the {name} score "
                           f"({what}) on the same {n} test jets.",
            "curve": {"kind": "roc", "x": x, "y": y, "x_label": "false positive rate",
                      "y_label": "true positive rate"}})
    return records
