"""Body model: SMPL layer (`smpl`), joint conventions (`joints`), model files (`model_file`).

Kept import-free on purpose: import the submodules you need.
"""
