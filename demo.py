"""PyMAF demo: ``python demo.py --input photo.jpg|folder|video.mp4 --output out/ [--full-image | --bboxes B.json]``.

See ``pymaf/demo/run.py`` for the outputs and the camera, ``python demo.py -h`` for every option.
"""
from pymaf.demo.run import main

if __name__ == "__main__":
    raise SystemExit(main())
