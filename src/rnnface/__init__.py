"""rnnface: face detection, alignment and recognition with recurrent networks.

    import rnnface
    faces = rnnface.detect("photo.jpg")
    result = rnnface.verify("a.jpg", "b.jpg")
    rnnface.enroll("Ada", ["ada1.jpg", "ada2.jpg"])  # into the default gallery
    [face.name for face in rnnface.identify("group.jpg")]
"""

from rnnface.api import align, compare, detect, embed, enroll, identify, load_image, verify
from rnnface.errors import RnnfaceError

__version__ = "0.1.0"

__all__ = ["RnnfaceError", "__version__", "align", "compare", "detect", "embed", "enroll", "identify", "load_image", "verify"]
