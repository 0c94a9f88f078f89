"""CamVid's 11 classes (Brostow et al. 2009, the SegNet split) with their usual colours."""

NAME = "camvid11"
CLASS_NAMES = ("sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence", "car", "pedestrian",
               "bicyclist")
COLORS = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
          (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))
#: datasets whose label maps map into this space: source name -> (source class names by id, source -> target)
SOURCES = {
    # CamVid 11 (void = 11) into itself
    "camvid": (list(CLASS_NAMES), {c: c for c in CLASS_NAMES}),
}
