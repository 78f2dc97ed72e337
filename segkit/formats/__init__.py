"""Writers of prediction formats (PNG, Cityscapes, COCO) and the official evaluators."""
