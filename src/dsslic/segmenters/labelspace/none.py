"""The label space of the ``none`` segmenter (the paper's noSeg): one class everywhere."""

NAME = "none"
CLASS_NAMES = ("unlabelled",)
COLORS = ((0, 0, 0),)
SOURCES: dict = {}
