"""The demo (spec §6, done right): frames in (image / folder / video), people boxes (detector, JSON or the
whole frame), tracking, optional One-Euro smoothing, batched regression, shaded overlays and exports.

Entry point: ``demo.py`` -> :func:`pymaf.demo.run.main`. Modules:
``inputs`` (frames, RGB), ``boxes`` (detector / --bboxes JSON / --full-image), ``tracking`` (IoU + Hungarian),
``smoothing`` (One-Euro on rotations and camera), ``crops`` (square box -> 224 crop, ImageNet normalisation),
``export`` (npz per person and frame, official output.pkl layout, OBJ), ``run`` (the pipeline).
"""
