"""mmreward: multimodal reward models."""

__version__ = "0.1.0"
