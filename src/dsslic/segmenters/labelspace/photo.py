"""General photos: Stanford Background's seven stuff classes under their own names, plus objects."""

NAME = "photo"
CLASS_NAMES = ("sky", "tree", "road", "grass", "water", "building", "mountain", "person", "animal", "vehicle", "other")
COLORS = ((120, 170, 235), (40, 120, 40), (128, 64, 128), (130, 210, 90), (30, 60, 200), (150, 40, 40),
          (140, 110, 80), (235, 60, 150), (230, 160, 20), (20, 20, 110), (230, 230, 120))

_OBJECTS = ("person", "animal", "vehicle", "other")

#: datasets whose label maps map into this space: source name -> (source class names by id, source -> target
#: class, or a tuple of target classes when the source class is one of them, which one is not known)
SOURCES = {
    # Stanford Background (Gould et al. 2009): 0..7, 255 unknown
    "stanford": (["sky", "tree", "road", "grass", "water", "building", "mountain", "foreground"],
                 {**{c: c for c in ("sky", "tree", "road", "grass", "water", "building", "mountain")},
                  "foreground": _OBJECTS}),
    # MSRC-v2 (cleaned labels of Malisiewicz and Efros): 0..22, 255 void
    "msrc": (["building", "grass", "tree", "cow", "horse", "sheep", "sky", "mountain", "aeroplane", "water",
              "face", "car", "bicycle", "flower", "sign", "bird", "book", "chair", "road", "cat", "dog", "body",
              "boat"],
             {"building": "building", "grass": "grass", "tree": "tree", "sky": "sky", "mountain": "mountain",
              "water": "water", "road": "road",
              "cow": "animal", "horse": "animal", "sheep": "animal", "bird": "animal", "cat": "animal", "dog": "animal",
              "face": "person", "body": "person",
              "aeroplane": "vehicle", "car": "vehicle", "bicycle": "vehicle", "boat": "vehicle",
              "flower": "other", "sign": "other", "book": "other", "chair": "other"}),
}
