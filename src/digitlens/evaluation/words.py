"""The evaluation studio's sentences for the learner (plain, exact English; numbers filled in)."""

from __future__ import annotations

#: what each robustness change does, in words (the page's and the figure's legend)
KIND_TITLES = {
    "rotation": "Rotation (degrees, + = counter-clockwise)",
    "scale": "Size change (%)",
    "shift": "Shift (pixels down and right)",
    "thickness": "Stroke thickness (− thinner, + thicker; pixels)",
    "blur": "Blur (Gaussian σ, pixels)",
    "noise": "Noise (σ of random speckle)",
    "elastic": "Elastic distortion (typical displacement, pixels)",
}

CONFUSION = ("Each row is the true digit, each column the model's answer: the diagonal counts the "
             "right answers, every other cell one kind of mistake. Click a cell to see its "
             "digits.")
PRECISION_RECALL = ("Precision of a digit: of all the images the model called that digit, the "
                    "share that really were. Recall: of all the real images of that digit, the "
                    "share the model found.")
CALIBRATION = ("The digits are sorted into ten bins by how sure the model was. A bar at the "
               "diagonal means the model was right exactly as often as it said; a bar below it "
               "means it was too sure. The expected calibration error (ECE) is the average gap, "
               "weighted by how many digits each bin holds.")
ROBUSTNESS = ("Every test digit is changed in one way, by more and more, and each model reads the "
              "changed digits again. The models trained on digits that were only a little "
              "rotated, scaled and shifted; where a curve drops, the model has not learned to "
              "ignore that change.")
MAP = ("Each dot is a test digit, placed by the two directions along which the last hidden "
       "layer's values vary most (principal component analysis). Digits the network finds alike "
       "land close together.")


def pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def sure_sentence(cal) -> str:
    """What "99% sure" means for this model, from the digits it was evaluated on."""
    level = pct(cal.sure_level).replace(".0%", "%")
    if cal.sure_count == 0:
        return f"The model was never {level} sure or more on these {cal.n:,} digits."
    wrong = round(cal.sure_count * (1 - cal.sure_accuracy))
    verdict = ("as sure as it should be" if cal.sure_accuracy >= cal.sure_level else
               "more sure than it should be")
    were = "was" if wrong == 1 else "were"
    return (f"When this model says it is at least {level} sure, it is right "
            f"{pct(cal.sure_accuracy)} of the time: {cal.sure_count:,} of the {cal.n:,} digits "
            f"got that sure, and {wrong:,} of them {were} wrong. So it is {verdict} at that "
            f"level.")


def ece_sentence(ece: float) -> str:
    return (f"Expected calibration error: {pct(ece)}. On average over the digits, the model's "
            f"confidence is {100 * ece:.1f} percentage points away from how often it is right.")


def overlap_sentence(a: int, b: int, share: float, n: int) -> str:
    return (f"{pct(share)} of the {n} test {a}s and {b}s have a nearest dot on the map of the "
            f"other digit: that is where the network mixes them up.")
