"""Pretrained face models that ship inside packages: FaceNet (the hybrid backbones' front-end) run by
OpenCV, and the per-photo embedders (dlib, FaceNet) that serve as distillation teachers and evaluation peers.

Import the submodules: `rnnface.pretrained.facenet`, `rnnface.pretrained.embedders`.
"""
