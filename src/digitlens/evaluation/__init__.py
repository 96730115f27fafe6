"""How good is a model, and where does it fail: the evaluation studio's library.

Every result is plain data with ``to_dict`` (numbers through :mod:`digitlens._util.jsonsafe`);
figures (``digitlens.view.figures.evaluation``), the CLI (``digitlens evaluate``) and the page's
Evaluation tab draw them.  This package sits beside :mod:`digitlens.explain` and
:mod:`digitlens.lab` in the layers: it imports training, nn, preprocessing, data and _util only.

    confusion.py   the confusion matrix, per-class precision and recall, each cell's digits
    mistakes.py    the wrong answers, most confident first
    calibration.py the reliability diagram and the expected calibration error (ECE)
    robustness.py  accuracy against rotation, scale, shift, stroke thickness, blur, noise and
                   elastic distortion
    embedding.py   the digits' map: PCA (NumPy's SVD) of the last hidden layer, nearest neighbours
    datasets.py    the digits to evaluate on: bundled, mnist, optdigits (scikit-learn), mine
    studio.py      one model on one set: everything above at once (ModelEvaluation)
    words.py       the sentences for the learner
"""

from .calibration import Calibration, calibration
from .confusion import Confusion, confusion
from .datasets import DATA_CHOICES, EvalSet, load_eval_set
from .embedding import DigitMap, build_map, hidden_features, pca
from .mistakes import Mistake, mistakes
from .robustness import KINDS, Robustness, robustness, transform
from .studio import ModelEvaluation, evaluate_model

__all__ = ["Calibration", "calibration", "Confusion", "confusion", "DATA_CHOICES", "EvalSet",
           "load_eval_set", "DigitMap", "build_map", "hidden_features", "pca", "Mistake",
           "mistakes", "KINDS", "Robustness", "robustness", "transform", "ModelEvaluation",
           "evaluate_model"]
