"""Networks and network helpers: plain nn.Modules usable without a Trainer.

Semantic networks map float [B, in_channels, H, W] to logits [B, C, H, W] at input resolution.
smp architectures are used as they are (``segmentation_models_pytorch.<Arch>`` in configs);
torchvision's come through `segkit.models.torchvision_segmenter.TorchvisionSegmenter`.
"""
